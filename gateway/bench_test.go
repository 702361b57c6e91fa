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
		sendAllAsync(b, ctx, s, sm, &failed)
	}
	reportRate(b, start, &failed, "submit_sm/s")
}

// sendAllAsync sends sm b.N times with SendAsync and waits for every answer; failed counts those
// that are not ESME_ROK.
func sendAllAsync(b *testing.B, ctx context.Context, s *session.Session, sm pdu.Body, failed *atomic.Int64) {
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

// reportRate stops the timer and reports b.N per second since start, in unit; any failure fails b.
func reportRate(b *testing.B, start time.Time, failed *atomic.Int64, unit string) {
	elapsed := time.Since(start)
	b.StopTimer()
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
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	sendAllAsync(b, ctx, s, sm, &failed)
	reportRate(b, start, &failed, "msgs/s")
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
	reportRate(b, start, &failed, "msgs/s")
}
