package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

// Credentials the bench gives its smppgw: the ESMEs' account, the admin user of row 5 and
// smppgw's bind to the simulator.
const (
	account      = "bench"
	accountPass  = "benchpw"
	adminUser    = "bench"
	adminPass    = "bench-admin"
	upstreamUser = "smppgw"
	upstreamPass = "simpw"
)

// startTimeout bounds the start of one child (smppgw up and bound upstream, redis answering PING).
const startTimeout = 30 * time.Second

// arrivals counts what the simulator received and when the last one came.
type arrivals struct {
	n    atomic.Int64
	last atomic.Int64 // unix nanoseconds
}

func (a *arrivals) onSubmit(*smscsim.Sim, *pdu.SubmitSM) {
	a.n.Add(1)
	a.last.Store(time.Now().UnixNano())
}

// waitFor waits until n messages have arrived, or nothing arrived for idle, or ctx ends; it
// returns the count and the time of the last arrival.
func (a *arrivals) waitFor(ctx context.Context, n int64, idle time.Duration) (int64, time.Time) {
	prev, since := a.n.Load(), time.Now()
	for {
		got := a.n.Load()
		if got >= n || ctx.Err() != nil {
			return got, time.Unix(0, a.last.Load())
		}
		if got != prev {
			prev, since = got, time.Now()
		} else if time.Since(since) > idle {
			return got, time.Unix(0, a.last.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gwOptions is what differs between smppgw instances.
type gwOptions struct {
	store       string        // StoreEmbedded, StoreEverysec or StoreAlways
	receipts    bool          // the simulator sends a receipt for each submission that asks
	enquireLink time.Duration // smpp.session.enquire_link; 0: smppgw's default
	inbound     int           // smpp.session.inbound_limit; 0: 1024 (smppgw's own default when defaults is set)
	profile     string        // the row's profile name (runner.profileName): pprof on; "": off
	// defaults leaves smppgw's session settings at its own defaults: smpp.session.inbound_limit
	// and the upstream's session (window, inbound_limit) are not written, except inbound and
	// upstreamWindow when they are set.
	defaults bool
	// upstreamWindow is the upstream's session.window when defaults is set; 0: not written.
	upstreamWindow int
}

// gwInstance is a running smppgw with its simulator upstream (and Redis).
type gwInstance struct {
	sim      *smscsim.Sim
	arr      *arrivals
	gw       *proc
	redis    *proc
	smppAddr string
	grpcAddr string
	httpAddr string
	dir      string
	profile  string // gwOptions.profile
}

// startGateway starts the simulator, Redis when asked, and `smppgw serve`, and returns once smppgw
// accepts binds and is bound to the simulator; the CPU count of both children starts then.
func (r *runner) startGateway(ctx context.Context, name string, o gwOptions) (g *gwInstance, err error) {
	if o.inbound == 0 && !o.defaults {
		o.inbound = 1024
	}
	dir, err := os.MkdirTemp(r.cfg.WorkDir, name+"-")
	if err != nil {
		return nil, err
	}
	g = &gwInstance{arr: &arrivals{}, dir: dir, profile: o.profile}
	defer func() {
		if err != nil {
			g.stop()
		}
	}()
	simOpts := smscsim.Options{
		Accounts: map[string]string{upstreamUser: upstreamPass},
		OnSubmit: g.arr.onSubmit,
		Session:  session.Config{Window: 256, InboundLimit: 4 * max(r.cfg.UpstreamWindow, o.upstreamWindow)},
	}
	if !o.receipts {
		simOpts.ReceiptDelay = -1
	}
	if g.sim, err = smscsim.Start("127.0.0.1:0", simOpts); err != nil {
		return g, err
	}
	var redisAddr string
	if o.store != StoreEmbedded {
		fsync := strings.TrimPrefix(o.store, "redis-")
		if g.redis, redisAddr, err = r.startRedis(ctx, dir, fsync); err != nil {
			return g, err
		}
	}
	for _, a := range []*string{&g.smppAddr, &g.grpcAddr, &g.httpAddr} {
		if *a, err = freeAddr(); err != nil {
			return g, err
		}
	}
	accHash, err := bcrypt.GenerateFromPassword([]byte(accountPass), bcrypt.MinCost)
	if err != nil {
		return g, err
	}
	admHash, err := bcrypt.GenerateFromPassword([]byte(adminPass), bcrypt.MinCost)
	if err != nil {
		return g, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: warn\n  format: json\n")
	fmt.Fprintf(&b, "smpp:\n  listen: %q\n", g.smppAddr)
	if o.inbound > 0 || o.enquireLink > 0 {
		fmt.Fprintf(&b, "  session:\n")
	}
	if o.inbound > 0 {
		fmt.Fprintf(&b, "    inbound_limit: %d\n", o.inbound)
	}
	if o.enquireLink > 0 {
		fmt.Fprintf(&b, "    enquire_link: %s\n", o.enquireLink)
	}
	fmt.Fprintf(&b, "  accounts:\n    - system_id: %q\n      password_hash: %q\n", account, accHash)
	fmt.Fprintf(&b, "upstreams:\n  - name: sim\n    address: %q\n    system_id: %q\n    password: %q\n", g.sim.Addr(), upstreamUser, upstreamPass)
	switch {
	case !o.defaults:
		fmt.Fprintf(&b, "    session:\n      window: %d\n      inbound_limit: 1024\n", r.cfg.UpstreamWindow)
	case o.upstreamWindow > 0:
		fmt.Fprintf(&b, "    session:\n      window: %d\n", o.upstreamWindow)
	}
	fmt.Fprintf(&b, "routing:\n  routes:\n    - prefix: \"\"\n      upstream: sim\n")
	fmt.Fprintf(&b, "store:\n  path: %q\n", filepath.Join(dir, "smppgw.db"))
	if redisAddr != "" {
		fmt.Fprintf(&b, "  redis:\n    addrs: [%q]\n", redisAddr)
	}
	fmt.Fprintf(&b, "api:\n  grpc_listen: %q\n  http_listen: %q\n  instance: bench\n", g.grpcAddr, g.httpAddr)
	if o.profile != "" {
		fmt.Fprintf(&b, "  pprof: true\n")
	}
	fmt.Fprintf(&b, "  admin_users:\n    - name: %q\n      password_hash: %q\n", adminUser, admHash)
	fmt.Fprintf(&b, "shutdown_timeout: 5s\n")
	cfgPath := filepath.Join(dir, "smppgw.yaml")
	if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
		return g, err
	}
	if g.gw, err = startProc(r.cfg.Smppgw, []string{"serve", "--config", cfgPath}, nil, dir); err != nil {
		return g, err
	}
	if err := waitDial(ctx, g.smppAddr, g.gw, startTimeout); err != nil {
		return g, err
	}
	if err := g.waitReady(ctx); err != nil {
		return g, err
	}
	g.gw.mark()
	if g.redis != nil {
		g.redis.mark()
	}
	return g, nil
}

// waitReady waits for /readyz and for smppgw's bind to the simulator.
func (g *gwInstance) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		ready := false
		if resp, err := client.Get("http://" + g.httpAddr + "/readyz"); err == nil {
			ready = resp.StatusCode == http.StatusOK
			resp.Body.Close()
		}
		if ready && g.sim.Bound() > 0 {
			return nil
		}
		if !g.gw.alive() {
			return fmt.Errorf("smppgw exited: %s", g.gw.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("smppgw not ready (readyz %v, upstream binds %d) within %s: %s", ready, g.sim.Bound(), startTimeout, g.gw.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// usage is smppgw's CPU and peak RSS, with Redis's CPU and RSS in a note when there is one.
func (g *gwInstance) usage(row *Row) {
	row.CPU, row.RSS = g.gw.usage()
	if g.redis != nil {
		cpu, rss := g.redis.usage()
		addNote(row, fmt.Sprintf("redis-server +%.1f CPU s, %s peak", cpu, mb(rss)))
	}
}

func (g *gwInstance) stop() {
	if g.gw != nil {
		g.gw.stop(10 * time.Second)
	}
	if g.redis != nil {
		g.redis.stop(5 * time.Second)
	}
	if g.sim != nil {
		g.sim.Close()
	}
	if g.dir != "" {
		os.RemoveAll(g.dir)
	}
}

// startRedis starts redis-server on a free port with AOF and appendfsync fsync, in dir.
func (r *runner) startRedis(ctx context.Context, dir, fsync string) (*proc, string, error) {
	var lastErr error
	for range 3 { // another process may take the free port first
		addr, err := freeAddr()
		if err != nil {
			return nil, "", err
		}
		_, port, _ := net.SplitHostPort(addr)
		p, err := startProc(r.redisBin(), []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir,
			"--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--protected-mode", "yes",
			"--daemonize", "no", "--logfile", ""}, nil, dir)
		if err != nil {
			return nil, "", err
		}
		if lastErr = redisPing(ctx, addr, p); lastErr == nil {
			return p, addr, nil
		}
		p.stop(time.Second)
	}
	return nil, "", lastErr
}

func (r *runner) redisBin() string {
	if r.cfg.RedisServer != "" {
		return r.cfg.RedisServer
	}
	return "redis-server"
}

// redisPing waits until the server at addr answers PING.
func redisPing(ctx context.Context, addr string, p *proc) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = c.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		if !p.alive() {
			return fmt.Errorf("redis-server exited: %s", p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("redis-server on %s did not answer PING within %s", addr, startTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func addNote(row *Row, s string) {
	if row.Note != "" {
		row.Note += "; "
	}
	row.Note += s
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }
