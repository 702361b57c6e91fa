package gateway

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
)

// TestLongMOReassembled: long MO from an upstream, over real sockets, cut with 8-bit and 16-bit UDH
// and with SAR TLVs, one sent out of order and one with a part sent twice: the account's ESME gets
// every part as it came (a deliver_sm each), and the API's subscriber exactly one MO per long message
// carrying the whole text.
func TestLongMOReassembled(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
		Routing:   RouterConfig{MORoutes: []MORoute{{Prefix: "12345", Account: "acme"}}},
	}, st)
	sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	events, cancel := g.Subscribe("acme")
	defer cancel()
	_, delivered := fiorixESME(t, addr, "acme", "secret")
	ctx := sessiontest.Ctx(t)

	gsm := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8) // 360 GSM characters: 3 parts
	ucs := strings.Repeat("Привет, мир! Долгое сообщение по частям. ", 4)     // UCS-2: 3 parts
	send := func(t *testing.T, parts []*pdu.DeliverSM) {
		t.Helper()
		for i, d := range parts {
			if st, err := sim.SendMO(ctx, d); err != nil || st != pdu.ESME_ROK {
				t.Fatalf("part %d answered %v %v", i+1, st, err)
			}
		}
	}
	split := func(t *testing.T, mode pdu.SplitMode, s string, ref uint16) []*pdu.DeliverSM {
		t.Helper()
		parts, err := pdu.SplitText(&pdu.DeliverSM{SourceAddrTON: 1, SourceAddrNPI: 1, SourceAddr: "447700900555",
			DestinationAddr: "12345"}, mode, s, ref)
		if err != nil || len(parts) < 3 {
			t.Fatalf("split: %d parts, %v", len(parts), err)
		}
		return parts
	}

	total := 0
	for _, tc := range []struct {
		name  string
		text  string
		sent  func(t *testing.T) int // sends the MO, returns the deliver_sm the account should get
		parts int
	}{
		{name: "UDH8", text: gsm, sent: func(t *testing.T) int {
			res, err := sim.SendText(ctx, smscsim.MO{From: "447700900555", To: "12345", Text: gsm, Split: pdu.SplitUDH8})
			if err != nil || res.Parts < 3 {
				t.Fatalf("SendText: %+v %v", res, err)
			}
			return res.Parts
		}},
		{name: "UDH16", text: ucs, sent: func(t *testing.T) int {
			res, err := sim.SendText(ctx, smscsim.MO{From: "447700900555", To: "12345", Text: ucs, Split: pdu.SplitUDH16})
			if err != nil || res.Parts < 3 {
				t.Fatalf("SendText: %+v %v", res, err)
			}
			return res.Parts
		}},
		{name: "SAR", text: gsm, sent: func(t *testing.T) int {
			res, err := sim.SendText(ctx, smscsim.MO{From: "447700900555", To: "12345", Text: gsm, Split: pdu.SplitSAR})
			if err != nil || res.Parts < 3 {
				t.Fatalf("SendText: %+v %v", res, err)
			}
			return res.Parts
		}},
		{name: "UDH8 out of order", text: ucs, sent: func(t *testing.T) int {
			p := split(t, pdu.SplitUDH8, ucs, 201)
			send(t, []*pdu.DeliverSM{p[2], p[0], p[1]})
			return 3
		}},
		{name: "SAR duplicated part", text: gsm, sent: func(t *testing.T) int {
			p := split(t, pdu.SplitSAR, gsm, 40001)
			send(t, []*pdu.DeliverSM{p[0], p[1], p[1], p[2]})
			return 4
		}},
		{name: "UDH16 duplicated and out of order", text: gsm, sent: func(t *testing.T) int {
			p := split(t, pdu.SplitUDH16, gsm, 40002)
			send(t, []*pdu.DeliverSM{p[1], p[2], p[1], p[0], p[2]})
			return 5
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.sent(t)
			total += n
			for i := 0; i < n; i++ {
				nextDeliver(t, delivered)
			}
			select {
			case e := <-events:
				if got := moText(t, e); got != tc.text {
					t.Errorf("MO event text %q, want %q", got, tc.text)
				}
				if e.MO.Source.Addr != "447700900555" || e.MO.Destination.Addr != "12345" || e.Account != "acme" || e.Upstream != "sim" {
					t.Errorf("MO event %+v", e)
				}
			case <-time.After(sessiontest.Wait):
				t.Fatal("no MO event")
			}
			select {
			case e := <-events:
				t.Errorf("a second event %+v for one long MO", e)
			case p := <-delivered:
				t.Errorf("a deliver_sm more than the %d parts sent: %v", n, p)
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
	if stats, err := g.Stats(ctx); err != nil || stats.MOIn != uint64(total) {
		t.Errorf("MOIn = %d (%v), want every part counted", stats.MOIn, err)
	}
}

// moText is an MO event's content as the API reads it: the user data after any UDH, decoded.
func moText(t *testing.T, e Event) string {
	t.Helper()
	if e.Kind != EventMO || e.MO == nil {
		t.Fatalf("event %+v is not an MO", e)
	}
	part, err := pdu.ReadPart(&pdu.DeliverSM{EsmClass: e.MO.ESMClass, DataCoding: e.MO.DataCoding,
		ShortMessage: e.MO.ShortMessage, Options: pdu.Options(e.MO.TLVs)})
	if err != nil {
		t.Fatal(err)
	}
	if part.Mode != 0 {
		t.Errorf("MO event still linked as part %d/%d", part.Seq, part.Total)
	}
	s, err := text.Decode(text.Coding(e.MO.DataCoding), part.Data)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLongMOGivenUp: a long MO whose last part never comes reaches the subscriber, after the
// reassembly time-out, as the parts it had, one event each; nothing is published before.
func TestLongMOGivenUp(t *testing.T) {
	mo := newMORouteTable(nil, nil, zerolog.Nop())
	mo.routes.Store(&[]store.MORoute{{Prefix: "12345", Account: "acme"}})
	r := &fromUpstream{events: newHub(), moRoutes: mo, log: zerolog.Nop()}
	r.initReassembly(pdu.ReassemblerConfig{Timeout: 100 * time.Millisecond})
	events, cancel := r.events.subscribe("acme", false)
	defer cancel()
	parts, err := pdu.SplitText(&pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345"}, pdu.SplitUDH8,
		strings.Repeat("x", 400), 9)
	if err != nil || len(parts) != 3 {
		t.Fatalf("split: %d parts, %v", len(parts), err)
	}
	for _, d := range []*pdu.DeliverSM{parts[2], parts[0]} {
		r.publishMO("sim", "acme", d, &store.Delivery{Account: "acme", Kind: store.DeliveryMO, ESMClass: d.EsmClass,
			DataCoding: d.DataCoding, ShortMessage: d.ShortMessage, CreatedAt: time.Now()})
	}
	select {
	case e := <-events:
		t.Fatalf("event %+v before the time-out", e)
	case <-time.After(50 * time.Millisecond):
	}
	var got []string
	for len(got) < 2 {
		select {
		case e := <-events:
			got = append(got, moText(t, e))
		case <-time.After(sessiontest.Wait):
			t.Fatalf("after the time-out, %d events, want the 2 parts held", len(got))
		}
	}
	if want := []string{strings.Repeat("x", 153), strings.Repeat("x", 400-306)}; !slices.Equal(got, want) {
		t.Errorf("parts published %q, want %q", got, want)
	}
	if n := r.reasm.Pending(); n != 0 {
		t.Errorf("%d messages still pending", n)
	}
}
