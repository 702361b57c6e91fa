package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewaySubmitLongText: an API submission of 400 characters becomes a multi-part message (UDH),
// each part submitted upstream and given its own upstream id.
func TestGatewaySubmitLongText(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, _, _ := startGateway(t, Config{
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	ctx := sessiontest.Ctx(t)
	text := strings.Repeat("0123456789", 40)
	m, err := g.Submit(ctx, Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "+447700900123"}, Text: text, RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 3 || m.Destination != (store.Address{TON: pdu.TONInternational, NPI: pdu.NPIISDN, Addr: "447700900123"}) || m.Source.TON != pdu.TONAlphanumeric {
		t.Fatalf("message: %d parts, destination %+v, source %+v; want 3 parts (153+153+94 GSM characters)", len(m.Parts), m.Destination, m.Source)
	}
	sessiontest.Eventually(t, "every part to be submitted and delivered", func() bool {
		got, err := st.GetMessage(ctx, m.ID)
		return err == nil && got.Status == pdu.DELIVERED
	})
	got, err := st.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var joined strings.Builder
	for i, p := range got.Parts {
		if p.UpstreamID == "" || seen[p.UpstreamID] || p.Status != pdu.DELIVERED || p.ESMClass&0x40 == 0 {
			t.Errorf("part %d: %+v; want its own upstream id, DELIVERED, UDHI", i, p)
		}
		seen[p.UpstreamID] = true
		joined.Write(p.ShortMessage[int(p.ShortMessage[0])+1:])
	}
	if joined.String() != text {
		t.Errorf("the parts carry %q, want the text", joined.String())
	}
	if subs := sim.Submits(); len(subs) != 3 {
		t.Errorf("the upstream saw %d submit_sm, want 3", len(subs))
	}

	for _, tc := range []struct {
		s     Submission
		field string
	}{
		{Submission{Destination: store.Address{Addr: "1"}, Text: "x"}, "account"},
		{Submission{Account: "api", Text: "x"}, "destination"},
		{Submission{Account: "api", Destination: store.Address{Addr: "1"}, Text: "x"}, "source"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}}, "text"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: "x", RegisteredDelivery: 3}, "registered_delivery"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: "x", Validity: time.Now().Add(-time.Hour)}, "validity_period"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: "x", Schedule: time.Now().Add(2 * time.Hour), Validity: time.Now().Add(time.Hour)}, "validity_period"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: strings.Repeat("x", 160*300)}, "text"},
	} {
		_, err := g.Submit(ctx, tc.s)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("Submit(%+v) = %v, want a ValidationError on %s", tc.s.Account, err, tc.field)
		}
	}
}

// TestGatewayForwardsSchedule: a scheduled message, from the API and from a submit_sm with a relative
// schedule_delivery_time, is stored with its schedule and forwarded upstream with an absolute
// schedule_delivery_time, so the SMSC holds it; a schedule within the skew counts as now.
func TestGatewayForwardsSchedule(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	ctx := sessiontest.Ctx(t)
	at := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	m, err := g.Submit(ctx, Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "447700900123"}, Text: "later", Schedule: at})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetMessage(ctx, m.ID); err != nil || !got.Schedule.Equal(at) {
		t.Fatalf("stored schedule %v, %v; want %v", got.Schedule, err, at)
	}
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	sent := time.Now()
	for _, sched := range []string{"000000010000000R", ""} {
		if _, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900456", ScheduleDeliveryTime: sched, ShortMessage: []byte("at " + sched)}); err != nil {
			t.Fatalf("submit_sm with schedule %q: %v", sched, err)
		}
	}
	sessiontest.Eventually(t, "three submit_sm upstream", func() bool { return len(sim.Submits()) == 3 })
	for _, sm := range sim.Submits() {
		got, err := pdu.ParseTime(sm.ScheduleDeliveryTime, time.Now())
		switch string(sm.ShortMessage) {
		case "at 000000010000000R": // one hour from when it was accepted
			if err != nil || got.Before(sent.Add(time.Hour-time.Second)) || got.After(time.Now().Add(time.Hour+time.Second)) {
				t.Errorf("relative schedule forwarded as %q (%v, %v)", sm.ScheduleDeliveryTime, got, err)
			}
		case "at ":
			if sm.ScheduleDeliveryTime != "" {
				t.Errorf("unscheduled submit_sm forwarded with schedule %q", sm.ScheduleDeliveryTime)
			}
		default: // the API message
			if err != nil || !got.Equal(at) {
				t.Errorf("API schedule forwarded as %q (%v, %v), want %v", sm.ScheduleDeliveryTime, got, err, at)
			}
		}
	}
}
