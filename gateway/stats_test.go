package gateway

import (
	"math"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewayStatsAfterTraffic: N submit_sm over a real socket, each answered upstream with a
// receipt that comes back to the ESME; then M more while the upstream is paused. The gateway's
// stats and the ESME session's counters read what happened, number for number.
func TestGatewayStatsAfterTraffic(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) { statsAfterTraffic(t, open()) })
}

func statsAfterTraffic(t *testing.T, st0 store.Store) {
	const n, m = 5, 3
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st0)
	sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	rec := sessiontest.NewRecorder()
	esme := sessiontest.BindESME(t, addr, rec, session.Config{}, session.BindTransceiver, "acme", "secret")
	ctx := sessiontest.Ctx(t)
	for i := range n {
		sm := submit("447700900123")
		sm.RegisteredDelivery = 1
		if _, err := esme.Send(ctx, sm); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	awaitReceipts(t, rec, n)

	st, err := g.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	perMinute := func(rate float64) float64 { return math.Round(rate * rateSpan) }
	if st.Accepted != n || st.Submitted != n || st.ReceiptsIn != n || st.MOIn != 0 || st.MessagesByStatus[pdu.DELIVERED] != n || st.Pending != 0 {
		t.Errorf("totals (by status %v): accepted %d, submitted %d, receipts %d, MO %d, delivered %d, pending %d; want %d, %d, %d, 0, %d, 0",
			st.MessagesByStatus, st.Accepted, st.Submitted, st.ReceiptsIn, st.MOIn, st.MessagesByStatus[pdu.DELIVERED], st.Pending, n, n, n, n)
	}
	if perMinute(st.AcceptRate) != n || perMinute(st.SubmitRate) != n || perMinute(st.ReceiptRate) != n || st.MORate != 0 {
		t.Errorf("rates per second: accepted %v, submitted %v, receipts %v, MO %v; want %d/60 each but MO", st.AcceptRate, st.SubmitRate, st.ReceiptRate, st.MORate, n)
	}

	sessions := g.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("%d sessions", len(sessions))
	}
	si := sessions[0]
	// In: bind, n submit_sm, n deliver_sm_resp. Out: bind_resp, n submit_sm_resp, n deliver_sm.
	if si.SubmitSMIn != n || si.DeliverSMOut != n || si.SubmitSMErrors != 0 || si.DeliverSMErrors != 0 ||
		si.RequestsIn != n+1 || si.ResponsesOut != n+1 || si.RequestsOut != n || si.ResponseErrorsOut != 0 {
		t.Errorf("session counters: %+v", si)
	}
	sessiontest.Eventually(t, "the ESME's deliver_sm_resp read", func() bool {
		si, _ = g.Session(si.ID)
		return si.ResponsesIn == n
	})
	if si.InterfaceVersion != 0x34 || si.LastActivity.IsZero() || si.BoundAt.IsZero() || si.LastActivity.Before(si.BoundAt) || si.TLS {
		t.Errorf("session: interface_version %#x, bound %v, last activity %v, TLS %v", si.InterfaceVersion, si.BoundAt, si.LastActivity, si.TLS)
	}
	if si.PDUsIn != si.RequestsIn+si.ResponsesIn || si.PDUsOut != si.RequestsOut+si.ResponsesOut {
		t.Errorf("PDUs in %d, out %d do not add up: %+v", si.PDUsIn, si.PDUsOut, si)
	}

	// Paused, the upstream takes nothing: the next m parts wait in its queue.
	if err := g.SetUpstreamPaused("sim", true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(claimWait + 200*time.Millisecond) // a claim already waiting when the pause came returns empty
	for i := range m {
		if _, err := esme.Send(ctx, submit("447700900123")); err != nil {
			t.Fatalf("submit while paused %d: %v", i, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	st, err = g.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.UpstreamQueues) != 1 || len(st.DeliveryQueues) != 1 {
		t.Fatalf("queues: upstream %+v, delivery %+v; want sim and acme", st.UpstreamQueues, st.DeliveryQueues)
	}
	if q := st.UpstreamQueues[0]; q.Name != "sim" || q.Len != m || q.Claimed != 0 || q.OldestAge <= 0 || q.OldestAge > time.Minute {
		t.Errorf("upstream queue %+v, want sim with %d entries, none claimed, a positive age", q, m)
	}
	if q := st.DeliveryQueues[0]; q.Name != "acme" || q.Len != 0 || q.OldestAge != 0 {
		t.Errorf("delivery queue %+v, want acme, empty", q)
	}
	if st.Accepted != n+m || st.Pending != m || perMinute(st.AcceptRate) != n+m || perMinute(st.SubmitRate) != n {
		t.Errorf("after the paused submissions: accepted %d, pending %d, rates %v %v", st.Accepted, st.Pending, st.AcceptRate, st.SubmitRate)
	}
}

// TestRateWindow: a rate counts the events of the last 60 seconds over 60 and forgets older ones.
func TestRateWindow(t *testing.T) {
	var w rateWindow
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 30 {
		w.add(t0.Add(time.Duration(i) * time.Second)) // one a second for 30 s
	}
	w.add(t0.Add(29 * time.Second))
	if got := w.rate(t0.Add(29 * time.Second)); got != 31.0/60 {
		t.Errorf("rate after 31 events in 30 s: %v, want 31/60", got)
	}
	if got := w.rate(t0.Add(70 * time.Second)); got != 20.0/60 {
		t.Errorf("rate 70 s on (the 20 events of seconds 11..29 left): %v, want 20/60", got)
	}
	w.add(t0.Add(100 * time.Second)) // reuses the slot of second 40, left from an earlier minute
	if got := w.rate(t0.Add(100 * time.Second)); got != 1.0/60 {
		t.Errorf("rate after a minute of silence and one event: %v, want 1/60", got)
	}
}

// TestGatewayUpstreamLastErrorClearedOnBind: an upstream that could not be reached reports why; once
// it binds, its last error is gone.
func TestGatewayUpstreamLastErrorClearedOnBind(t *testing.T) {
	upAddr := freeAddr(t)
	g, _, _ := startGateway(t, Config{
		Upstreams: []ClientConfig{simUpstream("sim", upAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, newEmbedded(t))
	sessiontest.Eventually(t, "the failed dial reported", func() bool { return g.Upstreams()[0].Status.LastError != "" })
	startSim(t, upAddr, smscsim.Options{})
	sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	if st := g.Upstreams()[0].Status; st.LastError != "" {
		t.Errorf("bound upstream still reports last error %q", st.LastError)
	}
}
