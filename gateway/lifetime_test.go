package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	sredis "github.com/smppgw/smppgw/store/redis"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestPartFailsAfterMaxAttempts: a part the upstream keeps answering with a temporary error, or keeps
// losing, is sent exactly max_attempts times and then fails UNDELIVERABLE, with a receipt to the ESME
// and an event for the API (it was retried for ever).
func TestPartFailsAfterMaxAttempts(t *testing.T) {
	cases := []struct {
		name     string
		status   pdu.CommandStatus
		lose     bool // hold the answer and drop the bind: a lost PDU
		attempts int
	}{
		{"RSYSERR", pdu.ESME_RSYSERR, false, 3},
		{"RX_T_APPN", pdu.ESME_RX_T_APPN, false, 2},
		{"lost", pdu.ESME_ROK, true, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, open func() store.Store) {
				st := open()
				up := startSim(t, "127.0.0.1:0", smscsim.Options{})
				if tc.lose {
					up.Inject(smscsim.Fault{Hold: true, Close: true}) // each one held, the link dropped under it
				} else {
					up.Inject(smscsim.Fault{Status: tc.status})
				}
				upCfg := simUpstream("sim", up.Addr())
				upCfg.MaxAttempts, upCfg.ThrottleDelay = tc.attempts, 10*time.Millisecond
				g, addr, _ := startGateway(t, acmeVia(t, upCfg), st)
				events, cancel := g.Subscribe("acme")
				defer cancel()
				rx := sessiontest.NewRecorder()
				e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
				resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: 1, ShortMessage: []byte("doomed")})
				if err != nil {
					t.Fatal(err)
				}
				id := resp.Body.(*pdu.SubmitSMResp).MessageID
				if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != id || info.State != pdu.UNDELIVERABLE {
					t.Errorf("receipt for %s in state %v, want %s UNDELIVERABLE", info.MessageID, info.State, id)
				}
				select {
				case ev := <-events:
					if ev.MessageID != id || ev.Status != pdu.UNDELIVERABLE {
						t.Errorf("event %+v, want %s UNDELIVERABLE", ev, id)
					}
				case <-time.After(sessiontest.Wait):
					t.Error("no event for the API")
				}
				if m, err := st.GetMessage(sessiontest.Ctx(t), id); err != nil || m.Status != pdu.UNDELIVERABLE {
					t.Errorf("stored message %+v, %v; want UNDELIVERABLE", m, err)
				}
				time.Sleep(100 * time.Millisecond)
				if n := up.Times("doomed"); n != tc.attempts {
					t.Errorf("the upstream saw %d submissions, want exactly max_attempts = %d", n, tc.attempts)
				}
			})
		})
	}
}

// TestPartExpiresAfterMaxAge: a part still queued when it is older than max_age is not sent; it fails
// EXPIRED with a receipt to the ESME.
func TestPartExpiresAfterMaxAge(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := open()
		upAddr := freeAddr(t)
		upCfg := simUpstream("sim", upAddr)
		upCfg.MaxAge = 300 * time.Millisecond
		_, addr, _ := startGateway(t, acmeVia(t, upCfg), st)
		rx := sessiontest.NewRecorder()
		e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
		resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: 1, ShortMessage: []byte("stale")})
		if err != nil {
			t.Fatal(err)
		}
		id := resp.Body.(*pdu.SubmitSMResp).MessageID
		time.Sleep(400 * time.Millisecond) // the upstream is down meanwhile
		up := startSim(t, upAddr, smscsim.Options{})
		if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != id || info.State != pdu.EXPIRED {
			t.Errorf("receipt for %s in state %v, want %s EXPIRED", info.MessageID, info.State, id)
		}
		if m, err := st.GetMessage(sessiontest.Ctx(t), id); err != nil || m.Status != pdu.EXPIRED {
			t.Errorf("stored message %+v, %v; want EXPIRED", m, err)
		}
		if n := up.Times("stale"); n != 0 {
			t.Errorf("the upstream saw the expired part %d times", n)
		}
	})
}

// slowSettleStore slows the writes that settle a submit result and counts the submit queue entries
// acknowledged (durably: Ack returned).
type slowSettleStore struct {
	ackCounter
	delay time.Duration
}

func (s *slowSettleStore) UpdatePart(ctx context.Context, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	time.Sleep(s.delay)
	return s.Store.UpdatePart(ctx, u)
}

func (s *slowSettleStore) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	time.Sleep(s.delay)
	return s.ackCounter.Settle(ctx, l, u)
}

// TestUnsettledPartsBounded: parts the upstream accepted whose outcome is not yet durable are those
// a crash would send twice; however slow the store, there are never more of them than the bind's
// max_unsettled (they queued by the thousand behind the settle pool), and more than the window
// are out, so the window refills while settles wait for their commit. Run with the settles waited
// for and asynchronous (async_test.go), where a part keeps its place among the unsettled until its
// settle's completion comes; every part ends settled with its upstream id, counted once.
func TestUnsettledPartsBounded(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(writesName(async), func(t *testing.T) {
			const window, unsettled, n = 5, 12, 200
			slow := &slowSettleStore{ackCounter: ackCounter{Store: newEmbedded(t)}, delay: 5 * time.Millisecond}
			var st store.Store = slow
			if async {
				st = &asyncSlowSettleStore{slow}
			}
			for i := range n {
				m := storetest.NewMessage(fmt.Sprintf("w%03d", i), "acme", "sim", 1)
				if err := slow.AcceptMessage(sessiontest.Ctx(t), m); err != nil {
					t.Fatal(err)
				}
			}
			var worst atomic.Int64
			up := startSim(t, "127.0.0.1:0", smscsim.Options{OnSubmit: func(up *smscsim.Sim, _ *pdu.SubmitSM) {
				// This submission is sent and not settled, and so is every one before it not acked yet.
				unsettled := int64(up.Count()) - slow.acked.Load()
				for {
					w := worst.Load()
					if unsettled <= w || worst.CompareAndSwap(w, unsettled) {
						break
					}
				}
			}})
			upCfg := simUpstream("sim", up.Addr())
			upCfg.Session.Window = window
			upCfg.MaxUnsettled = unsettled
			g, _, _ := startGateway(t, Config{Upstreams: []ClientConfig{upCfg}}, st)
			if (g.settle.async != nil) != async {
				t.Fatalf("the settler uses asynchronous writes: %v, want %v", g.settle.async != nil, async)
			}
			deadline := time.Now().Add(30 * time.Second)
			for slow.acked.Load() < n && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if a := slow.acked.Load(); a != n {
				t.Fatalf("%d of %d parts settled", a, n)
			}
			if w := worst.Load(); w > unsettled {
				t.Errorf("up to %d parts were sent and not settled durably, want at most max_unsettled (%d)", w, unsettled)
			}
			if w := worst.Load(); w <= window {
				t.Errorf("at most %d parts were out unsettled with settles taking 5ms each, want more than the window (%d): the window did not refill while settles waited", w, window)
			}
			for i := range n {
				m, err := slow.Store.GetMessage(sessiontest.Ctx(t), fmt.Sprintf("w%03d", i))
				if err != nil || m.Parts[0].UpstreamID == "" {
					t.Errorf("message w%03d: %v, want its upstream id recorded", i, err)
				}
			}
			if s := g.stats.submitted.Load(); s != n {
				t.Errorf("%d parts counted submitted, want %d", s, n)
			}
			t.Logf("at most %d parts sent and not settled (window %d, max_unsettled %d)", worst.Load(), window, unsettled)
		})
	}
}

// TestInFlightResentAtOnceAfterRestart: parts in flight when the gateway stopped abruptly (nothing
// given back, nothing recorded lost) are sent again by the next run at once, with a visibility
// time-out of 10 minutes, on both stores. The instance name is left to its default, which must be
// the same across runs for a Redis consumer to find what it held.
func TestInFlightResentAtOnceAfterRestart(t *testing.T) {
	opts := testStoreOptions
	opts.VisibilityTimeout = 10 * time.Minute
	stores := map[string]func(t *testing.T) func() store.Store{
		"embedded": func(t *testing.T) func() store.Store {
			path := filepath.Join(t.TempDir(), "smppgw.db")
			return func() store.Store {
				st, err := embedded.Open(path, opts)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		},
		"redis": func(t *testing.T) func() store.Store {
			addr := redisServer(t)
			return func() store.Store {
				st, err := sredis.Open(sessiontest.Ctx(t), sredis.Config{Addrs: []string{addr}, Options: opts})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		},
	}
	for _, name := range []string{"embedded", "redis"} {
		t.Run(name, func(t *testing.T) {
			open := stores[name](t)
			const n = 3
			up := startSim(t, "127.0.0.1:0", smscsim.Options{})
			up.Inject(smscsim.Fault{Hold: true})
			upCfg := simUpstream("sim", up.Addr())
			upCfg.Session.UnbindTimeout = 50 * time.Millisecond
			cfg := Config{Upstreams: []ClientConfig{upCfg}}

			st1 := open()
			for i := range n {
				m := storetest.NewMessage(fmt.Sprintf("f%d", i), "acme", "sim", 1)
				m.Parts[0].ShortMessage = []byte(m.ID)
				if err := st1.AcceptMessage(sessiontest.Ctx(t), m); err != nil {
					t.Fatal(err)
				}
			}
			_, _, stop1 := startGateway(t, cfg, st1)
			sessiontest.Eventually(t, "the parts in flight", func() bool { return up.Count() == n })
			// The crash, as the store sees it: the store goes first, so nothing the stopping
			// gateway does (give back, lost PDUs) reaches it.
			st1.Close()
			stop1()

			up.Clear()
			st2 := open()
			startGateway(t, cfg, st2)
			sessiontest.Eventually(t, "the parts in flight before to be sent again", func() bool {
				for i := range n {
					if up.Times(fmt.Sprintf("f%d", i)) < 2 {
						return false
					}
				}
				return true
			})
			sessiontest.Eventually(t, "the queue to empty", func() bool {
				l, err := st2.QueueLen(sessiontest.Ctx(t), store.Queue{Kind: store.SubmitQueue, Name: "sim"})
				return err == nil && l == 0
			})
			for i := range n {
				if k := up.Times(fmt.Sprintf("f%d", i)); k != 2 {
					t.Errorf("f%d submitted %d times, want 2 (in flight at the crash, then once more)", i, k)
				}
			}
		})
	}
}
