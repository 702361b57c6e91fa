package redis

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/redistest"
)

// TestEvents: what one store publishes reaches every subscriber (its own included), in order and
// once each; after stop, nothing more is handed on; a cluster behaves the same.
func TestEvents(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *redistest.Server{
		"single":  func(t testing.TB) *redistest.Server { return redistest.Start(t, redistest.Options{}) },
		"cluster": redistest.StartCluster,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			cfg := Config{Addrs: []string{srv.Addr()}, Cluster: name == "cluster"}
			a, b := openStore(t, srv, cfg), openStore(t, srv, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			type sink struct {
				mu  sync.Mutex
				got []string
			}
			subscribe := func(s *Store) (*sink, func()) {
				k := &sink{}
				stop, err := s.SubscribeEvents(ctx, func(p []byte) { k.mu.Lock(); k.got = append(k.got, string(p)); k.mu.Unlock() })
				if err != nil {
					t.Fatal(err)
				}
				return k, stop
			}
			onA, stopA := subscribe(a)
			onB, stopB := subscribe(b)
			defer stopB()
			const n = 100
			for i := range n {
				if err := a.PublishEvents(ctx, fmt.Appendf(nil, "e%d", i)); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(5 * time.Second)
			for _, k := range []*sink{onA, onB} {
				for {
					k.mu.Lock()
					l := len(k.got)
					k.mu.Unlock()
					if l >= n || time.Now().After(deadline) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			stopA()
			if err := b.PublishEvents(ctx, []byte("after")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			for who, k := range map[string]*sink{"a": onA, "b": onB} {
				k.mu.Lock()
				got := k.got
				k.mu.Unlock()
				want := n
				if who == "b" {
					want = n + 1
				}
				if len(got) != want {
					t.Errorf("%s got %d events, want %d", who, len(got), want)
					continue
				}
				for i := range n {
					if got[i] != fmt.Sprintf("e%d", i) {
						t.Errorf("%s: event %d is %q", who, i, got[i])
						break
					}
				}
			}
		})
	}
}
