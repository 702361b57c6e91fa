package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/api"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/internal/metrics"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	"github.com/smppgw/smppgw/store/redis"
)

// newLogger builds the daemon's logger from the log section (already validated).
func newLogger(c LogConfig, w io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(c.Level)
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !colour(w, os.Getenv)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// hashPassword returns the bcrypt hash an account's password_hash holds.
func hashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	if len(pw) > 8 {
		// SMPP 3.4 carries at most 8 octets of password in a bind; a longer one could never match.
		return "", fmt.Errorf("password is %d octets; SMPP allows at most 8", len(pw))
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	return string(h), err
}

// openStore opens the configured store: Redis when store.redis.addrs is set, else the embedded file
// (its directory created when missing).
func openStore(ctx context.Context, c StoreConfig, log zerolog.Logger) (store.Store, error) {
	opts := store.Options{VisibilityTimeout: c.VisibilityTimeout, IDMapTTL: c.IDMapTTL, ParkTTL: c.ParkTTL, MessageTTL: c.MessageTTL}
	if len(c.Redis.Addrs) > 0 {
		st, err := redis.Open(ctx, redis.Config{
			Addrs: c.Redis.Addrs, MasterName: c.Redis.MasterName, Cluster: c.Redis.Cluster,
			Username: c.Redis.Username, Password: c.Redis.Password, DB: c.Redis.DB, Prefix: c.Redis.Prefix, Options: opts,
		})
		if err != nil {
			return nil, fmt.Errorf("store: redis %v: %w", c.Redis.Addrs, err)
		}
		log.Info().Strs("addrs", c.Redis.Addrs).Int("db", c.Redis.DB).Msg("store: redis")
		return st, nil
	}
	path := c.storePath(os.Getenv)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	st, err := embedded.Open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	log.Info().Str("path", path).Msg("store: embedded")
	return st, nil
}

// serve runs the gateway until ctx ends, then drains: the server unbinds its sessions, the upstream
// binds are closed, what is still being written settles, and the store is closed. Everything
// accepted and not yet done stays in the store for the next start. It returns an error when start-up
// fails.
func serve(ctx context.Context, cfg Config, log zerolog.Logger) error {
	setGCPercent(cfg.GCPercent, log)
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	st, err := openStore(sctx, cfg.Store, log)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Warn().Err(err).Msg("store close")
		}
	}()

	accounts := cfg.SMPP.Accounts
	var demoPassword string // set when this run made the demo account
	if len(accounts) == 0 {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		existing, err := st.ListAccounts(actx)
		cancel()
		if err != nil {
			return fmt.Errorf("store: list accounts: %w", err)
		}
		if !slices.ContainsFunc(existing, func(a *store.Account) bool { return a.SystemID != demoSystemID }) {
			a, pw, err := demoAccount()
			if err != nil {
				return fmt.Errorf("demo account: %w", err)
			}
			accounts, demoPassword = []gateway.Account{a}, pw
		}
	}
	// The demo needs the demo account and must not mix with upstreams of the operator's.
	demo := demoPassword != "" && !cfg.Demo.Disabled && len(cfg.Upstreams) == 0
	if demo {
		sim, up, route, err := startDemoSMSC(cfg.Demo, log)
		if err != nil {
			return err
		}
		defer sim.Close() // after the gateway's shutdown below has unbound from it
		cfg.Upstreams = []gateway.ClientConfig{up}
		cfg.Routing.Routes = []gateway.Route{route} // none are configured: routes need a configured upstream
		log.Info().Str("addr", sim.Addr()).Str("upstream", demoUpstream).Stringer("receipt_delay", cfg.Demo.ReceiptDelay).
			Msg("demo: no upstreams configured: started the built-in SMSC simulator; every destination of system_id demo is routed to it (configure upstreams, or set SMPPGW_DEMO_DISABLED=true, to turn it off)")
	}

	scfg := cfg.SMPP.ServerConfig
	scfg.Listeners = cfg.listeners()
	gcfg := gateway.Config{
		Server: scfg, Accounts: accounts, Upstreams: cfg.Upstreams, Routing: cfg.Routing,
		Instance: cfg.API.Instance, Ownership: cfg.Cluster,
	}
	// Redis: the instances sharing it share the upstream binds; embedded: this one holds them all.
	gcfg.Cluster, _ = st.(store.Cluster)
	ms := metrics.New() // session meters and store timings, for /metrics
	ms.Instrument(&gcfg)
	mst := ms.WrapStore(st)
	g, err := gateway.New(gcfg, mst, log)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = g.Start(startCtx)
	var apiKey string
	switch {
	case err != nil:
	case demo && !cfg.API.Disabled:
		// After Start: the key's account must be in the store.
		apiKey, err = demoKey(startCtx, st)
	default:
		var n int
		if n, err = revokeDemoKeys(startCtx, st); n > 0 {
			log.Info().Int("keys", n).Msg("demo: off; revoked the API key an earlier run made for it")
		}
	}
	cancel()
	if err != nil {
		dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = g.Shutdown(dctx)
		return err
	}
	var apiSrv *api.Server
	if !cfg.API.Disabled {
		acfg := cfg.API.Config
		acfg.Metrics.Collectors = append(acfg.Metrics.Collectors, ms.Collectors(g)...)
		apiSrv, err = api.NewServer(acfg, g, mst, log)
		if err == nil {
			err = apiSrv.Start(ctx)
		}
		if err != nil {
			dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = g.Shutdown(dctx)
			return fmt.Errorf("api: %w", err)
		}
	}
	addrs := listenAddrs(g.Server())
	// The secrets come last, next to the addresses they are for, so that they are easy to find.
	if demoPassword != "" {
		log.Warn().Str("system_id", demoSystemID).Str("password", demoPassword).
			Msg("no accounts configured: made a demo account for this run (bind with these credentials; configure smpp.accounts or create accounts through the admin API for real use)")
	}
	if apiKey != "" {
		log.Warn().Str("api_key", apiKey).
			Msg(`demo: made an API key for this run (account demo; scopes send, read, admin; the previous run's key is revoked): send it as "Authorization: Bearer <api_key>"`)
	}
	log.Info().Strs("listen", addrs).Int("accounts", len(accounts)).Int("upstreams", len(cfg.Upstreams)).
		Int("routes", len(cfg.Routing.Routes)).Msg("smppgw serving")

	<-ctx.Done()
	log.Info().Stringer("timeout", cfg.ShutdownTimeout).Msg("shutting down: unbinding sessions and upstreams")
	dctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if apiSrv != nil {
		if err := apiSrv.Shutdown(dctx); err != nil {
			log.Warn().Err(err).Msg("API shutdown did not finish in time")
		}
	}
	if err := g.Shutdown(dctx); err != nil {
		log.Warn().Err(err).Msg("shutdown did not finish in time; remaining sessions closed")
	}
	log.Info().Msg("smppgw stopped")
	return nil
}

// listenAddrs returns the addresses the server listens on, for the start-up log (which tells the
// actual port when the configuration asked for port 0).
func listenAddrs(srv *gateway.Server) []string {
	var out []string
	for _, a := range srv.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// setGCPercent applies gc_percent to the garbage collector, unless GOGC is set in the environment
// (the runtime has applied that already, and an operator who set it meant it).
func setGCPercent(percent int, log zerolog.Logger) {
	if v, ok := os.LookupEnv("GOGC"); ok {
		log.Info().Str("GOGC", v).Msg("garbage collector: GOGC from the environment, gc_percent not applied")
		return
	}
	debug.SetGCPercent(percent)
	log.Debug().Int("gc_percent", percent).Msg("garbage collector")
}
