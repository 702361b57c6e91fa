package gateway

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/cputime"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// BenchmarkRoundTrip measures submit_sm -> submit_sm_resp round trips through one bind over loopback,
// client and server (acceptSink, the trivial responder) in this process, at several window sizes.
// "async" keeps the window full from one goroutine with SendAsync; "send" runs one goroutine per window
// slot, each calling Send.
func BenchmarkRoundTrip(b *testing.B) {
	for _, w := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("async/window=%d", w), func(b *testing.B) { benchRoundTrip(b, w, false) })
	}
	for _, w := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("send/window=%d", w), func(b *testing.B) { benchRoundTrip(b, w, true) })
	}
}

func benchRoundTrip(b *testing.B, window int, blocking bool) {
	cfg := session.Config{Window: window, InboundLimit: window, EnquireLink: -1}
	_, addr := startServer(b, ServerConfig{Session: cfg}, &acceptSink{}, testAccount(b, "bench", "pw"))
	s := sessiontest.BindESME(b, addr, nil, cfg, session.BindTransmitter, "bench", "pw")
	sm := submit("447700900123")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var failed atomic.Int64
	b.ReportAllocs()
	resetTimer(b)
	start := time.Now()
	if blocking {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range window {
			wg.Go(func() {
				for next.Add(1) <= int64(b.N) {
					if _, err := s.Send(ctx, sm); err != nil {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
	} else {
		sendAllAsync(b, ctx, s, sm, &failed)
	}
	reportRate(b, start, &failed, "submit_sm/s")
}

// sendAllAsync sends sm b.N times with SendAsync and waits for every answer; failed counts those
// that are not ESME_ROK.
func sendAllAsync(b *testing.B, ctx context.Context, s *session.Session, sm pdu.Body, failed *atomic.Int64) {
	sendAsync(b, ctx, s, sm, b.N, failed)
}

// sendAsync sends sm n times with SendAsync and waits for every answer; failed counts those that are
// not ESME_ROK.
func sendAsync(tb testing.TB, ctx context.Context, s *session.Session, sm pdu.Body, n int, failed *atomic.Int64) {
	var wg sync.WaitGroup
	wg.Add(n)
	done := func(r session.Response, err error) {
		if err != nil || r.Status != pdu.ESME_ROK {
			failed.Add(1)
		}
		wg.Done()
	}
	for range n {
		if err := s.SendAsync(ctx, sm, done); err != nil {
			tb.Fatal(err)
		}
	}
	wg.Wait()
}

// reportRate stops the timer and reports b.N per second since start, in unit, and the process's CPU
// time per operation since the timer was last reset (cpu-us/op: both ends of every connection, all
// in this process); any failure fails b.
func reportRate(b *testing.B, start time.Time, failed *atomic.Int64, unit string) {
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64((cputime.Process()-benchCPU).Microseconds())/float64(b.N), "cpu-us/op")
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d submissions failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), unit)
}

// BenchmarkAccept measures accepted submit_sm per second through the Server with the embedded store:
// an ESME keeps a window of 100 in flight, each submit_sm is validated, routed and written with
// store.AcceptMessage (fsync per group commit) before its submit_sm_resp. The upstream is down, so
// the parts stay queued and only the accept path is measured.
func BenchmarkAccept(b *testing.B) {
	b.Run("store=embedded", func(b *testing.B) { benchAccept(b, newEmbedded(b)) })
	// The gateway's own share: the same path over a store that keeps the queue in a slice.
	b.Run("store=memory", func(b *testing.B) { benchAccept(b, newMemQueueStore(newEmbedded(b))) })
}

func benchAccept(b *testing.B, st store.Store) {
	s := acceptGateway(b, st)
	sm := submit("447700900123")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var failed atomic.Int64
	b.ReportAllocs()
	resetTimer(b)
	start := time.Now()
	sendAllAsync(b, ctx, s, sm, &failed)
	reportRate(b, start, &failed, "msgs/s")
}

// acceptGateway starts a gateway on st whose one upstream is down and returns an ESME bound to it
// with a window of 100.
func acceptGateway(tb testing.TB, st store.Store) *session.Session {
	const window = 100
	cfg := session.Config{Window: window, InboundLimit: window, EnquireLink: -1}
	_, addr, _ := startGateway(tb, Config{
		Server:    ServerConfig{Session: cfg},
		Accounts:  []Account{testAccount(tb, "bench", "pw")},
		Upstreams: []ClientConfig{simUpstream("down", freeAddr(tb))},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "down"}}},
	}, st)
	return sessiontest.BindESME(tb, addr, nil, cfg, session.BindTransmitter, "bench", "pw")
}

// BenchmarkForward measures the sustained path end to end on the embedded store: an ESME keeps a
// window of 100 submit_sm in flight to the gateway, which accepts each durably, sends it upstream
// (acceptSink, over loopback, with the upstream window given) and settles the answer (id map, ack).
// The figure is messages per second accepted, forwarded and settled.
func BenchmarkForward(b *testing.B) {
	for _, w := range []int{10, 100} {
		b.Run(fmt.Sprintf("store=embedded/upstream_window=%d", w), func(b *testing.B) {
			st := &asyncAckCounter{ackCounter: ackCounter{Store: newEmbedded(b)}}
			benchForward(b, w, st, &st.acked)
		})
	}
	// The gateway's own share: the same path over a store that keeps the queue in a slice.
	b.Run("store=memory/upstream_window=100", func(b *testing.B) {
		st := newMemQueueStore(newEmbedded(b))
		benchForward(b, 100, st, &st.acked)
	})
}

func benchForward(b *testing.B, upWindow int, st store.Store, acked *atomic.Int64) {
	s := forwardGateway(b, upWindow, st)
	sm := submit("447700900123")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var failed atomic.Int64
	done := func(r session.Response, err error) {
		if err != nil || r.Status != pdu.ESME_ROK {
			failed.Add(1)
		}
	}
	b.ReportAllocs()
	resetTimer(b)
	start := time.Now()
	for range b.N {
		if err := s.SendAsync(ctx, sm, done); err != nil {
			b.Fatal(err)
		}
	}
	for acked.Load() < int64(b.N) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	reportRate(b, start, &failed, "msgs/s")
}

// forwardGateway starts a gateway on st that forwards to an acceptSink upstream (over loopback,
// with the upstream window given) and returns an ESME bound to it with a window of 100.
func forwardGateway(tb testing.TB, upWindow int, st store.Store) *session.Session {
	const window = 100
	cfg := session.Config{Window: window, InboundLimit: window, EnquireLink: -1}
	_, upAddr := startServer(tb, ServerConfig{Session: session.Config{InboundLimit: upWindow, EnquireLink: -1}}, &acceptSink{}, testAccount(tb, "gwup", "uppw"))
	up := simUpstream("sink", upAddr)
	up.Session = session.Config{Window: upWindow, EnquireLink: -1}
	_, addr, _ := startGateway(tb, Config{
		Server:    ServerConfig{Session: cfg},
		Accounts:  []Account{testAccount(tb, "bench", "pw")},
		Upstreams: []ClientConfig{up},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sink"}}},
	}, st)
	return sessiontest.BindESME(tb, addr, nil, cfg, session.BindTransmitter, "bench", "pw")
}

// memQueueStore is the embedded store (accounts, routes, everything off the message path) with the
// message path kept in memory: AcceptMessage queues the parts in a slice, ClaimParts takes them and
// Settle counts them, no message kept. It lets the benchmarks measure the gateway's own CPU and
// allocations without the store's.
type memQueueStore struct {
	store.Store
	mu    sync.Mutex
	queue []*store.PartTask
	wake  chan struct{}
	acked atomic.Int64
}

func newMemQueueStore(st store.Store) *memQueueStore {
	return &memQueueStore{Store: st, wake: make(chan struct{}, 1)}
}

func (s *memQueueStore) AcceptMessage(_ context.Context, m *store.Message) error {
	store.PrepareAccept(m, time.Now())
	s.mu.Lock()
	for i := range m.Parts {
		t := store.NewPartTask(m, i)
		t.Lease = store.Lease{Queue: store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}}
		s.queue = append(s.queue, t)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

func (s *memQueueStore) ClaimParts(ctx context.Context, _, _ string, max int, wait time.Duration) ([]*store.PartTask, error) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		s.mu.Lock()
		if n := min(max, len(s.queue)); n > 0 {
			out := append([]*store.PartTask(nil), s.queue[:n]...)
			s.queue = s.queue[n:]
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-t.C:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *memQueueStore) Settle(_ context.Context, l store.Lease, _ store.PartUpdate) (*store.Message, []store.Receipt, error) {
	if l.Queue.Kind == store.SubmitQueue {
		s.acked.Add(1)
	}
	return nil, nil, nil
}

// benchCPU is the process's CPU time when the running benchmark last reset its timer (resetTimer).
var benchCPU time.Duration

func resetTimer(b *testing.B) {
	b.ResetTimer()
	benchCPU = cputime.Process()
}

// asyncAckCounter is ackCounter for a store with asynchronous writes, which it keeps: the settles
// of the message path are counted as they complete.
type asyncAckCounter struct {
	ackCounter
}

func (s *asyncAckCounter) Unwrap() store.Store { return s.Store }

func (s *asyncAckCounter) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	s.Store.(store.AsyncWrites).AcceptMessageAsync(ctx, m, c)
}

func (s *asyncAckCounter) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	a := ackings.Get().(*acking)
	a.s, a.c, a.submit = s, c, l.Queue.Kind == store.SubmitQueue
	s.Store.(store.AsyncWrites).SettleAsync(ctx, l, u, a)
}

// acking is a settle being counted; reused, so that counting allocates nothing.
type acking struct {
	s      *asyncAckCounter
	c      store.SettleCompletion
	submit bool
}

var ackings = sync.Pool{New: func() any { return new(acking) }}

func (a *acking) SettleDone(m *store.Message, attached []store.Receipt, err error) {
	s, c := a.s, a.c
	if err == nil && a.submit {
		s.acked.Add(1)
	}
	*a = acking{}
	ackings.Put(a)
	c.SettleDone(m, attached, err)
}
