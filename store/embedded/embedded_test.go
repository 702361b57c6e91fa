package embedded

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/smppgw/smppgw/internal/cputime"
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
				defer cputime.PerOp(b)() // the group commit, checkpoints (every second) and GC included
				storetest.BenchForward(b, s, c, p.Settle, storetest.ForwardStats{Commits: s.wq.Flushes})
			})
		}
	}
}
