package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// viaAB is a gateway whose every submission routes to upstream A, failing over to B.
func viaAB(t *testing.T, a, b *smscsim.Sim, rc RouterConfig) Config {
	rc.Routes = []Route{{Upstream: "A"}, {Upstream: "B"}}
	if b == nil {
		rc.Routes = rc.Routes[:1]
	}
	cfg := Config{Accounts: []Account{testAccount(t, "acme", "secret")}, Routing: rc,
		Upstreams: []ClientConfig{simUpstream("A", a.Addr())}}
	if b != nil {
		cfg.Upstreams = append(cfg.Upstreams, simUpstream("B", b.Addr()))
	}
	return cfg
}

func awaitUp(t *testing.T, g *Gateway, names ...string) {
	t.Helper()
	for _, n := range names {
		sessiontest.Eventually(t, n+" bound", func() bool { _, up := g.ups.upstreamState(n); return up })
	}
}

// submitN sends n submit_sm asking for receipts and returns their ids.
func submitN(t *testing.T, e *session.Session, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: fmt.Sprintf("4477%06d", i),
			RegisteredDelivery: 1, ShortMessage: []byte("hi")})
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		ids[i] = resp.Body.(*pdu.SubmitSMResp).MessageID
	}
	return ids
}

// receiptStates waits for n receipts at the ESME, checks no more come, and counts their states.
func receiptStates(t *testing.T, rx *sessiontest.Recorder, n int) map[pdu.MessageState]int {
	t.Helper()
	states := map[pdu.MessageState]int{}
	for _, info := range awaitReceipts(t, rx, n) {
		states[info.State]++
	}
	time.Sleep(100 * time.Millisecond) // a receipt too many would show up by now
	if got := len(rx.Requests()); got != n {
		t.Errorf("%d deliver_sm at the ESME, want %d", got, n)
	}
	return states
}

// TestFailoverOfQueuedParts: parts queued for A (held in its window, claimed ahead, or in the store's
// queue) when A dies and refuses to come back move to B after failover_after, and are delivered there.
func TestFailoverOfQueuedParts(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		const n = 30
		a := startSim(t, "127.0.0.1:0", smscsim.Options{})
		b := startSim(t, "127.0.0.1:0", smscsim.Options{})
		a.Inject(smscsim.Fault{Hold: true}) // A takes the submissions and never answers
		st := open()
		g, addr, _ := startGateway(t, viaAB(t, a, b, RouterConfig{FailoverAfter: 300 * time.Millisecond}), st)
		awaitUp(t, g, "A", "B")
		rx := sessiontest.NewRecorder()
		e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
		ids := submitN(t, e, n)
		for _, id := range ids {
			m, err := st.GetMessage(sessiontest.Ctx(t), id)
			if err != nil || m.Upstream != "A" {
				t.Fatalf("message %s routed to %v (%v), want A", id, m, err)
			}
		}
		sessiontest.Eventually(t, "A to hold submissions", func() bool { return a.Count() > 0 })
		a.Close() // the link drops under the held ones, and A takes no bind again
		sessiontest.Eventually(t, fmt.Sprintf("%d submissions at B", n), func() bool { return b.Count() >= n })
		states := receiptStates(t, rx, n)
		if b.Count() != n || states[pdu.DELIVERED] != n {
			t.Errorf("B saw %d submit_sm, receipts %v; want %d, all DELIVRD", b.Count(), states, n)
		}
		for _, id := range ids {
			m, err := st.GetMessage(sessiontest.Ctx(t), id)
			if err != nil || m.Parts[0].Upstream != "B" || m.Status != pdu.DELIVERED {
				t.Errorf("message %s: %+v (%v), want delivered through B", id, m, err)
			}
		}
		t.Logf("A held %d submit_sm before it died; B took all %d", a.Count(), b.Count())
	})
}

// TestFailoverPausedUpstream: parts queued for a paused A move to B once the pause outlasts
// failover_after; with failover disabled they stay queued for A.
func TestFailoverPausedUpstream(t *testing.T) {
	for _, after := range []time.Duration{200 * time.Millisecond, -1} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			const n = 10
			a := startSim(t, "127.0.0.1:0", smscsim.Options{})
			b := startSim(t, "127.0.0.1:0", smscsim.Options{})
			b.RefuseBinds(pdu.ESME_RBINDFAIL) // B down while the messages are routed: they go to A's queue
			st := newEmbedded(t)
			g, addr, _ := startGateway(t, viaAB(t, a, b, RouterConfig{FailoverAfter: after}), st)
			awaitUp(t, g, "A")
			if err := g.SetUpstreamPaused("A", true); err != nil {
				t.Fatal(err)
			}
			rx := sessiontest.NewRecorder()
			e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
			submitN(t, e, n)
			b.RefuseBinds(pdu.ESME_ROK)
			awaitUp(t, g, "B")
			if after < 0 {
				time.Sleep(time.Second)
				if b.Count() != 0 {
					t.Fatalf("failover disabled, yet B saw %d submit_sm", b.Count())
				}
				return
			}
			states := receiptStates(t, rx, n)
			if b.Count() != n || a.Count() != 0 || states[pdu.DELIVERED] != n {
				t.Errorf("A saw %d, B %d submit_sm, receipts %v; want 0, %d, all DELIVRD", a.Count(), b.Count(), states, n)
			}
		})
	}
}

// TestRerouteOnRefusal: A refuses everything with ESME_RINVDSTADR; each message goes on to B and is
// delivered. With only A in the route, they fail with REJECTD receipts, as before.
func TestRerouteOnRefusal(t *testing.T) {
	for _, withB := range []bool{true, false} {
		t.Run(fmt.Sprintf("withB=%v", withB), func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func() store.Store) {
				const n = 20
				a := startSim(t, "127.0.0.1:0", smscsim.Options{})
				a.Inject(smscsim.Fault{Status: pdu.ESME_RINVDSTADR})
				var b *smscsim.Sim
				if withB {
					b = startSim(t, "127.0.0.1:0", smscsim.Options{})
				}
				st := open()
				cfg := viaAB(t, a, b, RouterConfig{FailoverAfter: -1})
				g, addr, _ := startGateway(t, cfg, st)
				awaitUp(t, g, "A")
				if withB {
					awaitUp(t, g, "B")
				}
				rx := sessiontest.NewRecorder()
				e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
				ids := submitN(t, e, n)
				states := receiptStates(t, rx, n)
				if a.Count() != n {
					t.Errorf("A saw %d submit_sm, want %d", a.Count(), n)
				}
				want := pdu.REJECTED
				if withB {
					want = pdu.DELIVERED
					if b.Count() != n || states[pdu.DELIVERED] != n {
						t.Errorf("B saw %d submit_sm, receipts %v; want %d, all DELIVRD", b.Count(), states, n)
					}
				} else if states[pdu.REJECTED] != n {
					t.Errorf("receipts %v, want %d REJECTD", states, n)
				}
				for _, id := range ids {
					m, err := st.GetMessage(sessiontest.Ctx(t), id)
					if err != nil || m.Status != want {
						t.Errorf("message %s: %+v (%v), want %v", id, m, err, want)
					}
				}
			})
		})
	}
}

func TestRerouteOnConfig(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  []pdu.CommandStatus
		bad   bool
	}{
		{nil, []pdu.CommandStatus{pdu.ESME_RINVDSTADR}, false},
		{[]string{"none"}, nil, false},
		{[]string{"rinvdstadr", "0x400"}, []pdu.CommandStatus{pdu.ESME_RINVDSTADR, 0x400}, false},
		{[]string{"ESME_RTHROTTLED"}, nil, true},
		{[]string{"ESME_NOPE"}, nil, true},
	} {
		got, err := rerouteStatuses(tc.names)
		if (err != nil) != tc.bad || len(got) != len(tc.want) {
			t.Errorf("%v: %v, %v; want %v (error %v)", tc.names, got, err, tc.want, tc.bad)
		}
		for _, st := range tc.want {
			if !got[st] {
				t.Errorf("%v: %v missing", tc.names, st)
			}
		}
	}
	if err := (RouterConfig{RerouteOn: []string{"bogus"}}).Validate(nil); err == nil {
		t.Error("reroute_on [bogus] validated")
	}
}
