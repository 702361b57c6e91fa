package gateway

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// Tasks handed over one after the other run on the worker already started, not a goroutine each;
// at most limit run at once; after close, work runs on its caller and idle workers are gone.
func TestPoolReusesWorkers(t *testing.T) {
	p := newPool(4)
	const n = 1000
	var ran atomic.Int64
	for range n {
		done := make(chan struct{})
		p.do(func() { ran.Add(1); close(done) })
		<-done
	}
	// A worker frees its slot before it waits for the next task, so the next do may find it not
	// yet waiting and start another: a few, not n.
	if s := p.started.Load(); s > 8 {
		t.Errorf("%d tasks run one after the other started %d workers, want a few", n, s)
	}

	var running, peak atomic.Int64
	var wg sync.WaitGroup
	wg.Add(n)
	for range n {
		p.do(func() {
			defer wg.Done()
			r := running.Add(1)
			for {
				m := peak.Load()
				if r <= m || peak.CompareAndSwap(m, r) {
					break
				}
			}
			time.Sleep(10 * time.Microsecond)
			running.Add(-1)
		})
	}
	wg.Wait()
	if m := peak.Load(); m > 4 || m < 1 {
		t.Errorf("%d tasks ran at most %d at once, want 1 to 4", n, m)
	}

	p.close()
	before := p.started.Load()
	inline := false
	p.do(func() { inline = true }) // on this goroutine: no race with the read below
	if !inline || p.started.Load() != before {
		t.Errorf("after close a task ran inline %v, workers started %d -> %d", inline, before, p.started.Load())
	}
	if got := ran.Load(); got != n {
		t.Errorf("%d of %d tasks ran", got, n)
	}
}

// The store calls of one second share one context, which ends storeTimeout to storeTimeout+1s on.
func TestStoreContextShared(t *testing.T) {
	now := time.Now()
	a, b := storeContext(), storeContext()
	if a != b {
		t.Error("two store calls in a row got two contexts")
	}
	d, ok := a.Deadline()
	if !ok || d.Before(now.Add(storeTimeout)) || d.After(time.Now().Add(storeTimeout+time.Second)) {
		t.Errorf("deadline %v from %v, want storeTimeout to storeTimeout+1s on", d.Sub(now), now)
	}
}

// Turning a submit_sm into the message to store copies what it keeps in two allocations (the
// strings, the octets), and picking its upstream allocates nothing; it took seven before (message,
// parts, three strings, the short message, the route list).
func TestFillFromSubmitSMAllocations(t *testing.T) {
	r := newStorePath(RouterConfig{}, nil, knownUpstreams{"up": true})
	r.routeTable.routes.Store(&[]store.Route{{Name: "all", Upstreams: []string{"up"}}})
	sm := submit("447700900123")
	sm.ServiceType = "CMT"
	sm.Options = pdu.Options{0x02, 0x04, 0x00, 0x02, 0x00, 0x01}
	now := time.Now()
	var m store.Message
	var parts [1]store.Part
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.fillFromSubmitSM(&m, parts[:], "acme", sm, now, []byte("1234567890123456")); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("fillFromSubmitSM allocates %v times, want 2", allocs)
	}
	// Copies, not aliases, each with its own capacity.
	if m.Source.Addr != "12345" || m.Destination.Addr != "447700900123" || m.ServiceType != "CMT" ||
		string(m.Parts[0].ShortMessage) != "hello" || string(m.Parts[0].TLVs) != string(sm.Options) ||
		cap(m.Parts[0].ShortMessage) != len("hello") || m.ID != "1234567890123456" {
		t.Errorf("message %+v part %+v", m, m.Parts[0])
	}
	sm.ShortMessage[0] = 'j'
	if string(m.Parts[0].ShortMessage) != "hello" {
		t.Error("the stored short message aliases the PDU's")
	}
}

// The message path's allocations per message, counted over n messages through a gateway on a store
// that keeps its queue in memory (memQueueStore, so the store's own are not counted): accepted only,
// and accepted, forwarded and settled. Everything in this process is counted, the ESME's and the
// upstream's ends included (an ESME's submit_sm_resp, the upstream's submit_sm, the fake store's
// part and history: 4 of the forwarded message's). Before the pool kept its workers and a message's
// parts were allocated together, these were 18 and 31; then 8 and 14; now, with the id in the
// allocation of the message's strings and no closure per part sent, 7 and 12 (BenchmarkAccept,
// BenchmarkForward).
func TestMessagePathAllocations(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name    string
		forward bool
		max     float64
	}{{"accept", false, 9}, {"forward", true, 15}} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemQueueStore(newEmbedded(t))
			var s *session.Session
			if tc.forward {
				s = forwardGateway(t, 100, st)
			} else {
				s = acceptGateway(t, st)
			}
			ctx := sessiontest.Ctx(t)
			sm := submit("447700900123")
			var failed atomic.Int64
			run := func(n int) {
				t.Helper()
				before := st.acked.Load()
				sendAsync(t, ctx, s, sm, n, &failed)
				for tc.forward && st.acked.Load() < before+int64(n) && ctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
			}
			run(n) // workers started, buffers and pools warm
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			run(n)
			runtime.ReadMemStats(&m1)
			if f := failed.Load(); f > 0 {
				t.Fatalf("%d of %d submissions failed", f, 2*n)
			}
			if tc.forward && st.acked.Load() != 2*n {
				t.Fatalf("%d of %d parts settled", st.acked.Load(), 2*n)
			}
			per := float64(m1.Mallocs-m0.Mallocs) / n
			t.Logf("%.1f allocations a message", per)
			if per > tc.max {
				t.Errorf("%.1f allocations a message, want at most %v", per, tc.max)
			}
		})
	}
}

// Idle workers exit once idle for a whole round of the reaper, and a task after that starts a new
// one; workers still busy or used again in time are kept.
func TestPoolIdleWorkersExit(t *testing.T) {
	p := newPool(4)
	p.idleAfter = 20 * time.Millisecond
	defer p.close()
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Add(3)
	for range 3 {
		p.do(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	if s := p.started.Load(); s != 3 {
		t.Fatalf("3 tasks at once started %d workers, want 3", s)
	}
	idle := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.idle)
	}
	deadline := time.Now().Add(5 * time.Second)
	for idle() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := idle(); n != 0 {
		t.Fatalf("%d workers still idle after 5 s, want 0", n)
	}
	done := make(chan struct{})
	p.do(func() { close(done) })
	<-done
	if s := p.started.Load(); s != 4 {
		t.Errorf("a task after the idle workers exited started %d workers in all, want 4", s)
	}
}
