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
	b.ResetTimer()
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
		var wg sync.WaitGroup
		wg.Add(b.N)
		done := func(r session.Response, err error) {
			if err != nil || r.Status != pdu.ESME_ROK {
				failed.Add(1)
			}
			wg.Done()
		}
		for range b.N {
			if err := s.SendAsync(ctx, sm, done); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d submissions failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "submit_sm/s")
}

// BenchmarkAccept measures accepted submit_sm per second through the Server with the embedded store:
// an ESME keeps a window of 100 in flight, each submit_sm is validated, routed and written with
// store.AcceptMessage (fsync per group commit) before its submit_sm_resp. The upstream is down, so
// the parts stay queued and only the accept path is measured.
func BenchmarkAccept(b *testing.B) {
	const window = 100
	st := newEmbedded(b)
	cfg := session.Config{Window: window, InboundLimit: window, EnquireLink: -1}
	_, addr, _ := startGateway(b, Config{
		Server:    ServerConfig{Session: cfg},
		Accounts:  []Account{testAccount(b, "bench", "pw")},
		Upstreams: []ClientConfig{simUpstream("down", freeAddr(b))},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "down"}}},
	}, st)
	s := sessiontest.BindESME(b, addr, nil, cfg, session.BindTransmitter, "bench", "pw")
	sm := submit("447700900123")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var failed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(b.N)
	done := func(r session.Response, err error) {
		if err != nil || r.Status != pdu.ESME_ROK {
			failed.Add(1)
		}
		wg.Done()
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := s.SendAsync(ctx, sm, done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d submissions failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}

// ackCounter counts the submit queue entries acknowledged (the parts settled durably).
type ackCounter struct {
	store.Store
	acked atomic.Int64
}

func (s *ackCounter) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	m, rs, err := s.Store.Settle(ctx, l, u)
	if err == nil && l.Queue.Kind == store.SubmitQueue {
		s.acked.Add(1)
	}
	return m, rs, err
}

func (s *ackCounter) Ack(ctx context.Context, leases ...store.Lease) error {
	err := s.Store.Ack(ctx, leases...)
	if err == nil {
		for _, l := range leases {
			if l.Queue.Kind == store.SubmitQueue {
				s.acked.Add(1)
			}
		}
	}
	return err
}

// BenchmarkForward measures the sustained path end to end on the embedded store: an ESME keeps a
// window of 100 submit_sm in flight to the gateway, which accepts each durably, sends it upstream
// (acceptSink, over loopback, with the upstream window given) and settles the answer (id map, ack).
// The figure is messages per second accepted, forwarded and settled.
func BenchmarkForward(b *testing.B) {
	for _, w := range []int{10, 100} {
		b.Run(fmt.Sprintf("upstream_window=%d", w), func(b *testing.B) { benchForward(b, w) })
	}
}

func benchForward(b *testing.B, upWindow int) {
	const window = 100
	st := &ackCounter{Store: newEmbedded(b)}
	cfg := session.Config{Window: window, InboundLimit: window, EnquireLink: -1}
	_, upAddr := startServer(b, ServerConfig{Session: session.Config{InboundLimit: upWindow, EnquireLink: -1}}, &acceptSink{}, testAccount(b, "gwup", "uppw"))
	up := simUpstream("sink", upAddr)
	up.Session = session.Config{Window: upWindow, EnquireLink: -1}
	_, addr, _ := startGateway(b, Config{
		Server:    ServerConfig{Session: cfg},
		Accounts:  []Account{testAccount(b, "bench", "pw")},
		Upstreams: []ClientConfig{up},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sink"}}},
	}, st)
	s := sessiontest.BindESME(b, addr, nil, cfg, session.BindTransmitter, "bench", "pw")
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
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := s.SendAsync(ctx, sm, done); err != nil {
			b.Fatal(err)
		}
	}
	for st.acked.Load() < int64(b.N) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d submissions failed", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
