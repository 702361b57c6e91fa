package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/pdu"
)

// newLogger builds the daemon's logger from the log section (already validated).
func newLogger(c LogConfig, w io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(c.Level)
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
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

// demoAccount makes the account a configuration without accounts gets: system_id "demo" and a random
// 8-character password (the most a bind carries), returned in clear for the start-up log.
func demoAccount() (gateway.Account, string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789" // no look-alikes
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return gateway.Account{}, "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	pw := string(b)
	h, err := hashPassword(pw)
	if err != nil {
		return gateway.Account{}, "", err
	}
	return gateway.Account{SystemID: "demo", PasswordHash: h}, pw, nil
}

// serve runs the gateway until ctx ends, then drains: the server unbinds its sessions, the upstream
// binds are closed, the router stops. It returns an error when start-up fails.
func serve(ctx context.Context, cfg Config, log zerolog.Logger) error {
	accounts := cfg.SMPP.Accounts
	if len(accounts) == 0 {
		a, pw, err := demoAccount()
		if err != nil {
			return fmt.Errorf("demo account: %w", err)
		}
		accounts = []gateway.Account{a}
		log.Warn().Str("system_id", a.SystemID).Str("password", pw).
			Msg("no accounts configured: made a demo account for this run (bind with these credentials; configure smpp.accounts for real use)")
	}
	auth, err := gateway.NewMemoryAuthenticator(accounts...)
	if err != nil {
		return err
	}

	// The router and the upstream clients need each other: the router hands messages to the clients,
	// the clients hand deliver_sm back to the router. The clients get a forwarder that is pointed at
	// the router before any of them starts.
	fwd := &deliverForwarder{}
	clients := make([]*gateway.Client, 0, len(cfg.Upstreams))
	ups := make([]gateway.Upstream, 0, len(cfg.Upstreams))
	for i, uc := range cfg.Upstreams {
		c, err := gateway.NewClient(uc, fwd, nil, log)
		if err != nil {
			return fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		clients = append(clients, c)
		ups = append(ups, c)
	}
	router, err := gateway.NewRouter(cfg.Routing, ups, log)
	if err != nil {
		return err
	}
	fwd.router = router

	scfg := cfg.SMPP.ServerConfig
	scfg.Listeners = cfg.listeners()
	srv, err := gateway.NewServer(scfg, auth, router, log)
	if err != nil {
		return err
	}
	router.SetSessions(srv)

	routerCtx, stopRouter := context.WithCancel(context.Background())
	routerDone := make(chan struct{})
	go func() { router.Run(routerCtx); close(routerDone) }()
	defer func() { stopRouter(); <-routerDone }()

	for i, c := range clients {
		if err := c.Start(); err != nil {
			stopClients(clients[:i], cfg.ShutdownTimeout, log)
			return fmt.Errorf("upstream %s: %w", c.Name(), err)
		}
	}
	if err := srv.Start(); err != nil {
		stopClients(clients, cfg.ShutdownTimeout, log)
		return err
	}
	addrs := listenAddrs(srv, len(scfg.Listeners))
	log.Info().Strs("listen", addrs).Int("accounts", len(accounts)).Int("upstreams", len(cfg.Upstreams)).
		Int("routes", len(cfg.Routing.Routes)).
		Msg("smppgw serving; without a store, accepted messages, awaited receipts and held deliveries live in memory and a restart loses them")

	<-ctx.Done()
	log.Info().Stringer("timeout", cfg.ShutdownTimeout).Msg("shutting down: unbinding sessions and upstreams")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("server shutdown did not finish in time; remaining sessions closed")
	}
	stopClients(clients, cfg.ShutdownTimeout, log)
	log.Info().Msg("smppgw stopped")
	return nil
}

// listenAddrs returns the addresses the server listens on, for the start-up log (which tells the
// actual port when the configuration asked for port 0). Start opens the sockets but registers them
// from the goroutines that serve them, so give those a moment.
func listenAddrs(srv *gateway.Server, want int) []string {
	deadline := time.Now().Add(2 * time.Second)
	for len(srv.Addrs()) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	var out []string
	for _, a := range srv.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// deliverForwarder hands the clients' deliver_sm to the router, which is made after them.
type deliverForwarder struct{ router *gateway.Router }

func (f *deliverForwarder) HandleDeliver(upstream string, req gateway.Request) pdu.CommandStatus {
	return f.router.HandleDeliver(upstream, req)
}

// stopClients unbinds every upstream at once, each bounded by timeout, and logs what stays queued:
// without a store, those messages are lost when the process exits.
func stopClients(clients []*gateway.Client, timeout time.Duration, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Unbind(ctx); err != nil {
				log.Warn().Err(err).Str("upstream", c.Name()).Msg("upstream unbind did not finish")
			}
			if n := c.Queue().Len(); n > 0 {
				log.Warn().Str("upstream", c.Name()).Int("messages", n).
					Msg("messages still queued for the upstream at exit; without a store they are lost")
			}
		}()
	}
	wg.Wait()
}
