package gateway

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	sredis "github.com/smppgw/smppgw/store/redis"
)

// testStoreOptions make the stores react at test speed: claims look again every 10ms.
var testStoreOptions = store.Options{PollInterval: 10 * time.Millisecond, VisibilityTimeout: 5 * time.Second}

// openEmbedded opens (or reopens) the embedded store at path; the test closes it at its end unless
// it was closed before.
func openEmbedded(t testing.TB, path string) store.Store {
	t.Helper()
	st, err := embedded.Open(path, testStoreOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEmbedded(t testing.TB) store.Store {
	return openEmbedded(t, filepath.Join(t.TempDir(), "smppgw.db"))
}

// redisServer starts a redis-server of the test's own (internal/redistest) and returns its address.
func redisServer(t testing.TB) string {
	t.Helper()
	return redistest.Start(t, redistest.Options{}).Addr()
}

func openRedis(t testing.TB, addr string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
	defer cancel()
	st, err := sredis.Open(ctx, sredis.Config{Addrs: []string{addr}, Options: testStoreOptions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startGateway runs a Gateway on st listening on a fresh 127.0.0.1 port; it is shut down at the end
// of the test (or earlier by stop).
func startGateway(t testing.TB, cfg Config, st store.Store) (g *Gateway, addr string, stop func()) {
	t.Helper()
	cfg.Server.Listeners = []ListenerConfig{{Address: "127.0.0.1:0"}}
	if cfg.Server.FailureDelay == 0 {
		cfg.Server.FailureDelay = -1
	}
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].ReconnectMin == 0 {
			cfg.Upstreams[i].ReconnectMin, cfg.Upstreams[i].ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
		}
	}
	if cfg.Routing.DeliveryRetry == 0 {
		cfg.Routing.DeliveryRetry = 50 * time.Millisecond
	}
	g, err := New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Errorf("gateway shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	if n := len(g.Server().Addrs()); n != 1 {
		t.Fatalf("%d listeners once Start returned, want 1", n)
	}
	return g, g.Server().Addrs()[0].String(), stop
}

// startSim serves an SMSC simulator on addr ("127.0.0.1:0" for a fresh port), taking binds from
// gwup/uppw unless opts names accounts, until the end of the test.
func startSim(t testing.TB, addr string, opts smscsim.Options) *smscsim.Sim {
	t.Helper()
	if opts.Accounts == nil {
		opts.Accounts = map[string]string{"gwup": "uppw"}
	}
	deadline := time.Now().Add(sessiontest.Wait)
	for {
		// A port given back by a stopped gateway test may still be in TIME_WAIT for a moment.
		sim, err := smscsim.Start(addr, opts)
		if err == nil {
			t.Cleanup(func() { sim.Close() })
			return sim
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address nothing listens on (for an upstream that is down).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func simUpstream(name, addr string) ClientConfig {
	return ClientConfig{Name: name, Address: addr, SystemID: "gwup", Password: "uppw"}
}
