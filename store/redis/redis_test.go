package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

type harnessStore struct {
	*Store
	srv *redistest.Server
	cfg Config
}

func openStore(t testing.TB, srv *redistest.Server, cfg Config) *Store {
	t.Helper()
	cfg.Addrs = []string{srv.Addr()}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// harness starts one redis-server per store. settle is how long a restart waits before
// killing the server (appendfsync everysec may hold the last second of writes).
func harness(fsync string, settle time.Duration) storetest.Harness {
	return storetest.Harness{
		Open: func(t testing.TB, opts store.Options) store.Store {
			srv := redistest.Start(t, redistest.Options{AppendFsync: fsync})
			cfg := Config{Options: opts}
			s := openStore(t, srv, cfg)
			return &harnessStore{Store: s, srv: srv, cfg: cfg}
		},
		Restart: func(t testing.TB, s store.Store) store.Store {
			h := s.(*harnessStore)
			time.Sleep(settle)
			h.srv.Restart()
			h.Close()
			n := openStore(t, h.srv, h.cfg)
			return &harnessStore{Store: n, srv: h.srv, cfg: h.cfg}
		},
	}
}

func TestConformanceFsyncAlways(t *testing.T) {
	storetest.Run(t, harness("always", 0))
}

// TestConformanceEverysec checks durability across a SIGKILL with appendfsync everysec; the
// other tests do not depend on the fsync policy. everysec writes the AOF before replying but
// fsyncs once a second; the wait before the kill covers that documented window.
func TestConformanceEverysec(t *testing.T) {
	storetest.RunSubset(t, harness("everysec", 1100*time.Millisecond), "RestartDurability", "AcceptAndGet")
}

// TestConformanceCluster runs the suite through a ClusterClient against a one-node cluster,
// which refuses cross-slot commands and scripts exactly as a real cluster does. A new node
// waits two seconds before it serves, so the subtests share one, each under its own prefix.
func TestConformanceCluster(t *testing.T) {
	srv := redistest.StartCluster(t)
	n := 0
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, opts store.Options) store.Store {
			n++
			cfg := Config{Options: opts, Cluster: true, Prefix: fmt.Sprintf("t%d:", n)}
			s := openStore(t, srv, cfg)
			if !s.cluster {
				t.Fatalf("cluster client not detected")
			}
			return &harnessStore{Store: s, srv: srv, cfg: cfg}
		},
		Restart: func(t testing.TB, s store.Store) store.Store {
			h := s.(*harnessStore)
			h.srv.Restart()
			h.srv.WaitClusterOK()
			h.Close()
			return &harnessStore{Store: openStore(t, h.srv, h.cfg), srv: h.srv, cfg: h.cfg}
		},
	})
}

// TestUnavailable checks that a dead server is ErrUnavailable (the gateway then refuses
// the submit instead of acknowledging it) and that the store recovers when it is back.
func TestUnavailable(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	s := openStore(t, srv, Config{Options: storetest.Options()})
	ctx := context.Background()
	if err := s.AcceptMessage(ctx, storetest.NewMessage("u1", "a", "up", 1)); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	for name, err := range map[string]error{
		"AcceptMessage": s.AcceptMessage(ctx, storetest.NewMessage("u2", "a", "up", 1)),
		"Ping":          s.Ping(ctx),
	} {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with the server down: %v, want ErrUnavailable", name, err)
		}
	}
	if _, err := s.GetMessage(ctx, "u1"); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("GetMessage with the server down: %v, want ErrUnavailable", err)
	}
	if _, err := s.ClaimParts(ctx, "up", "c", 1, 0); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ClaimParts with the server down: %v, want ErrUnavailable", err)
	}
	srv.Restart()
	// Scripts are gone from the restarted server's cache: EVALSHA must reload them.
	if err := s.AcceptMessage(ctx, storetest.NewMessage("u3", "a", "up", 1)); err != nil {
		t.Fatalf("AcceptMessage after restart: %v", err)
	}
	if _, err := s.GetMessage(ctx, "u1"); err != nil {
		t.Errorf("u1 after restart: %v", err)
	}
	if _, err := s.GetMessage(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("u2, refused while down, exists: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := Open(context.Background(), Config{}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Open without Addrs: %v, want ErrInvalid", err)
	}
	if _, err := New(context.Background(), nil, Config{Prefix: "a{b"}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("prefix with a brace: %v, want ErrInvalid", err)
	}
}

func benchStore(b *testing.B, fsync string) *Store {
	srv := redistest.Start(b, redistest.Options{AppendFsync: fsync})
	return openStore(b, srv, Config{})
}

// BenchmarkAccept runs with appendfsync everysec (the target) and always.
func BenchmarkAccept(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		for _, w := range storetest.Writers {
			b.Run(fmt.Sprintf("fsync=%s/writers=%d", fsync, w), func(b *testing.B) {
				storetest.BenchAccept(b, benchStore(b, fsync), w)
			})
		}
	}
}

func BenchmarkClaimAck(b *testing.B) {
	for _, w := range storetest.Writers {
		b.Run(fmt.Sprintf("writers=%d", w), func(b *testing.B) {
			storetest.BenchClaimAck(b, benchStore(b, "everysec"), w)
		})
	}
}

// BenchmarkForward is a message's whole way through the store (see storetest.BenchForward);
// commits/msg counts group-commit pipelines.
func BenchmarkForward(b *testing.B) {
	for _, fsync := range []string{"everysec", "always"} {
		for _, c := range storetest.Concurrency {
			for _, p := range storetest.Settlers {
				b.Run(fmt.Sprintf("fsync=%s/settle=%s/conc=%d", fsync, p.Name, c), func(b *testing.B) {
					s := benchStore(b, fsync)
					storetest.BenchForward(b, s, c, p.Settle, storetest.ForwardStats{Commits: s.w.Flushes, Commands: func() uint64 { return commandCalls(b, s) }})
				})
			}
		}
	}
}

// commandCalls sums the calls of every command in INFO commandstats.
func commandCalls(b *testing.B, s *Store) uint64 {
	info, err := s.c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	var n uint64
	for _, line := range strings.Split(info, "\n") {
		_, rest, ok := strings.Cut(line, "calls=")
		if !ok {
			continue
		}
		v, _, _ := strings.Cut(rest, ",")
		c, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			b.Fatalf("commandstats line %q: %v", line, err)
		}
		n += c
	}
	return n
}

// TestAccountsSetOncePerInterval: an accept adds its account to its shard's set the index
// sweep walks once per SweepInterval, not every time, and adds it again after an interval
// should the set have lost it.
func TestAccountsSetOncePerInterval(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{AppendFsync: "always"})
	s := openStore(t, srv, Config{Shards: 1, Options: store.Options{SweepInterval: 300 * time.Millisecond}})
	ctx := context.Background()
	n := 0
	acceptAndCheck := func(want bool) {
		t.Helper()
		n++
		if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("a%d", n), "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
		if got, err := s.c.SIsMember(ctx, s.kAccounts(0), "acme").Result(); err != nil || got != want {
			t.Fatalf("accept %d: account in the set %v (%v), want %v", n, got, err, want)
		}
	}
	acceptAndCheck(true)
	if err := s.c.Del(ctx, s.kAccounts(0)).Err(); err != nil {
		t.Fatal(err)
	}
	acceptAndCheck(false) // within the interval: not written again
	time.Sleep(350 * time.Millisecond)
	acceptAndCheck(true)
}
