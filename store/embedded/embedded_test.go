package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/cputime"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

type harnessStore struct {
	*Store
	path string
	opts store.Options
}

func harness() storetest.Harness {
	return storetest.Harness{
		Open: func(t testing.TB, opts store.Options) store.Store {
			path := filepath.Join(t.TempDir(), "smppgw.db")
			s, err := Open(path, opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return &harnessStore{Store: s, path: path, opts: opts}
		},
		Restart: func(t testing.TB, s store.Store) store.Store {
			h := s.(*harnessStore)
			if err := h.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			n, err := Open(h.path, h.opts)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { n.Close() })
			return &harnessStore{Store: n, path: h.path, opts: h.opts}
		},
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, harness())
}

func BenchmarkAccept(b *testing.B) {
	for _, w := range storetest.Writers {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			s := harness().Open(b, store.Options{})
			defer cputime.PerOp(b)() // the group commit, checkpoints (every second) and GC included
			storetest.BenchAccept(b, s, w)
		})
	}
}

func BenchmarkClaimAck(b *testing.B) {
	for _, w := range storetest.Writers {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			s := harness().Open(b, store.Options{})
			storetest.BenchClaimAck(b, s, w)
		})
	}
}

// BenchmarkForward is a message's whole way through the store, accept, claim and settle, as
// the gateway drives it; commits/msg counts group commits (each one WAL record, one fdatasync).
func BenchmarkForward(b *testing.B) {
	for _, c := range storetest.Concurrency {
		for _, p := range storetest.Settlers {
			b.Run(fmt.Sprintf("settle=%s/conc=%d", p.Name, c), func(b *testing.B) {
				s := harness().Open(b, store.Options{}).(*harnessStore)
				defer reportPuts(b, s.Store)
				defer cputime.PerOp(b)() // the group commit, checkpoints (every second) and GC included
				storetest.BenchForward(b, s, c, p.Settle, storetest.ForwardStats{Commits: s.wq.Flushes})
			})
		}
	}
}

// BenchmarkForwardInFlight is BenchmarkForward in a gateway's steady state: each of conc
// callers accepts a message of one part, claims a part and settles it, so at most conc
// messages wait in the store. (BenchmarkForward's accepts run ahead of its settles: most of
// its messages are settled long after they were accepted, past what the store keeps of them.)
func BenchmarkForwardInFlight(b *testing.B) {
	const conc = 256
	s := harness().Open(b, store.Options{})
	defer reportPuts(b, s.(*harnessStore).Store)
	defer cputime.PerOp(b)()
	ctx := context.Background()
	prefix := fmt.Sprintf("if-%d-", time.Now().UnixNano())
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				m := storetest.NewMessage(fmt.Sprintf("%s%09d", prefix, i), "bench", "up", 1)
				if err := s.AcceptMessage(ctx, m); err != nil {
					errs <- err
					return
				}
				ts, err := s.ClaimParts(ctx, "up", "bench", 1, time.Second)
				if err != nil || len(ts) != 1 {
					errs <- fmt.Errorf("claim: %d parts, %v", len(ts), err)
					return
				}
				t := ts[0]
				if _, _, err := s.Settle(ctx, t.Lease, store.PartUpdate{
					MessageID: t.MessageID, Part: t.Part, Upstream: "up", UpstreamID: "U" + t.MessageID, Status: pdu.ENROUTE,
				}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// reportPuts closes s, so its last memtable is checkpointed too, and reports how many keys
// its checkpoints put into bbolt a message. It runs after the CPU is measured.
func reportPuts(b *testing.B, s *Store) {
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.cpPuts.Load())/float64(b.N), "bbolt-puts/msg")
}
