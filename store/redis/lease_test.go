package redis

import (
	"context"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/redistest"
)

// TestLeases: one owner at a time; a lease that expired is taken by another owner, and then the first
// can neither renew nor release it; a cluster (one slot per key) behaves the same.
func TestLeases(t *testing.T) {
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
			const ttl = 300 * time.Millisecond
			must := func(ok bool, err error) bool {
				t.Helper()
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			if !must(a.AcquireLease(ctx, "bind:up:0", "a#1", ttl)) {
				t.Fatal("a did not acquire a free lease")
			}
			if must(b.AcquireLease(ctx, "bind:up:0", "b#1", ttl)) || must(b.RenewLease(ctx, "bind:up:0", "b#1", ttl)) {
				t.Fatal("b acquired or renewed a's lease")
			}
			if !must(a.AcquireLease(ctx, "bind:up:0", "a#1", ttl)) || !must(a.RenewLease(ctx, "bind:up:0", "a#1", ttl)) {
				t.Fatal("a could not extend its own lease")
			}
			if h, err := b.LeaseHolder(ctx, "bind:up:0"); err != nil || h != "a#1" {
				t.Fatalf("holder %q, %v; want a#1", h, err)
			}
			if err := b.ReleaseLease(ctx, "bind:up:0", "b#1"); err != nil {
				t.Fatal(err)
			}
			if h, _ := b.LeaseHolder(ctx, "bind:up:0"); h != "a#1" {
				t.Fatalf("b's release of a's lease left holder %q", h)
			}
			// a stops renewing: b takes the lease once it expired, and a has lost it for good.
			deadline := time.Now().Add(5 * time.Second)
			for !must(b.AcquireLease(ctx, "bind:up:0", "b#1", ttl)) {
				if time.Now().After(deadline) {
					t.Fatal("b never took the expired lease")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if must(a.RenewLease(ctx, "bind:up:0", "a#1", ttl)) {
				t.Fatal("a renewed a lease it lost")
			}
			if err := a.ReleaseLease(ctx, "bind:up:0", "a#1"); err != nil {
				t.Fatal(err)
			}
			if h, _ := a.LeaseHolder(ctx, "bind:up:0"); h != "b#1" {
				t.Fatalf("after a's release of a lost lease the holder is %q, want b#1", h)
			}
			if err := b.ReleaseLease(ctx, "bind:up:0", "b#1"); err != nil {
				t.Fatal(err)
			}
			if h, _ := a.LeaseHolder(ctx, "bind:up:0"); h != "" {
				t.Fatalf("released lease held by %q", h)
			}
			if _, err := a.AcquireLease(ctx, "", "a", ttl); err == nil {
				t.Error("empty key accepted")
			}

			// The board: both entries listed, an expired one pruned, a removed one gone.
			if err := a.PublishInstance(ctx, "a", []byte(`{"n":1}`), time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := b.PublishInstance(ctx, "b", []byte(`{"n":2}`), ttl); err != nil {
				t.Fatal(err)
			}
			got, err := a.Instances(ctx)
			if err != nil || len(got) != 2 || string(got["a"]) != `{"n":1}` || string(got["b"]) != `{"n":2}` {
				t.Fatalf("instances %q, %v", got, err)
			}
			time.Sleep(ttl + 100*time.Millisecond)
			if got, err = a.Instances(ctx); err != nil || len(got) != 1 || got["a"] == nil {
				t.Fatalf("after b's entry expired: %q, %v", got, err)
			}
			if n, _ := a.c.SCard(ctx, a.kInstances()).Result(); n != 1 {
				t.Errorf("the set of names holds %d after pruning, want 1", n)
			}
			if err := a.RemoveInstance(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if got, err = b.Instances(ctx); err != nil || len(got) != 0 {
				t.Fatalf("after removal: %q, %v", got, err)
			}
		})
	}
}
