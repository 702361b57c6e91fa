package load

import (
	"context"
	"net"
	"testing"

	"github.com/smppgw/smppgw/internal/bare"
)

// bareResponder is the ceiling the fleet is measured against (internal/bare).
func bareResponder(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go bare.Serve(ln)
	return ln.Addr().String()
}

func TestBareResponder(t *testing.T) {
	r := run(t, Config{Addr: bareResponder(t), Binds: 2, Messages: 500, Window: 50})
	if r.Sent != 500 || r.Acked != 500 {
		t.Errorf("sent %d acked %d", r.Sent, r.Acked)
	}
}

// BenchmarkRun is the fleet against the bare responder over loopback, one op a submit_sm: it
// reports submit_sm acknowledged per second over the sending time (the figure smppload prints).
//
//	go test -run '^$' -bench BenchmarkRun -benchtime 2000000x ./internal/load/
func BenchmarkRun(b *testing.B) {
	for _, tc := range []struct {
		name          string
		binds, window int
	}{{"binds=1/window=100", 1, 100}, {"binds=4/window=100", 4, 100}} {
		b.Run(tc.name, func(b *testing.B) {
			addr := bareResponder(b)
			b.ReportAllocs()
			b.ResetTimer()
			r, err := Run(context.Background(), Config{Addr: addr, Binds: tc.binds, Window: tc.window, Messages: b.N})
			b.StopTimer()
			if err != nil || r.Acked != int64(b.N) {
				b.Fatalf("acked %d of %d: %v", r.Acked, b.N, err)
			}
			b.ReportMetric(r.Throughput, "acked/s")
			b.ReportMetric(r.Latency.P99, "p99-ms")
		})
	}
}
