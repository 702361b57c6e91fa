package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/store"
)

// Config is what a running Gateway is built from (the daemon's YAML sections).
type Config struct {
	// Server is the SMSC side: listeners, session tuning, bind failure slow-down.
	Server ServerConfig
	// Accounts are written into the store at Start (replacing the store's record of the same
	// system_id); binds are then decided from the store, so accounts the admin API adds work too.
	Accounts []Account
	// Upstreams are bound at Start, with the upstreams AddUpstream persisted in the store.
	Upstreams []ClientConfig
	// Routing: the routes seeded into the store, MO routes, delivery retries, long messages.
	Routing RouterConfig
	// Instance names this process to the store's queues (consumer names): unique among the
	// instances sharing one Redis, and the same across restarts of one instance, so that after a
	// restart it takes back at once the parts it had in flight (else another instance reclaims
	// them after the visibility time-out). Empty means the host name, which is both in the usual
	// deployments (one instance per host or container, a StatefulSet); set it when several
	// instances share a host.
	Instance string
	// SettleWorkers is how many goroutines write submit results and delivery answers to the store.
	// 0 means 8.
	SettleWorkers int
}

// Gateway is the running gateway: the Server ESMEs bind to, one Client per upstream reading the
// store's queue of that upstream, and the Router between them and the store. It offers the API
// (package api) one message path shared with SMPP, and the operator's controls.
type Gateway struct {
	cfg    Config
	st     store.Store
	log    zerolog.Logger
	srv    *Server
	router *Router
	auth   *StoreAuthenticator
	events *hub
	stats  *counters
	pool   *pool

	runCtx    context.Context
	stopRun   context.CancelFunc
	started   bool
	stopped   bool
	mu        sync.Mutex
	upstreams map[string]*upstreamRun
	apiBucket map[string]*tokenBucket
}

// upstreamRun is one upstream's client and its store-backed queue.
type upstreamRun struct {
	cfg    ClientConfig
	client *Client
	queue  *storeQueue
}

// New checks cfg and builds a gateway on st; Start runs it. The caller keeps st and closes it after
// Shutdown.
func New(cfg Config, st store.Store, log zerolog.Logger) (*Gateway, error) {
	if st == nil {
		return nil, errors.New("gateway: New needs a store")
	}
	names := make([]string, 0, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		if err := u.Validate(); err != nil {
			return nil, fmt.Errorf("gateway: upstreams[%d]: %w", i, err)
		}
		n := u.withDefaults().Name
		if slices.Contains(names, n) {
			return nil, fmt.Errorf("gateway: two upstreams are named %q", n)
		}
		names = append(names, n)
	}
	if err := cfg.Routing.Validate(names); err != nil {
		return nil, err
	}
	for _, a := range cfg.Accounts {
		if _, err := AccountToStore(a); err != nil {
			return nil, err
		}
	}
	if cfg.Instance == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return nil, fmt.Errorf("gateway: no instance name and no host name to default it to: %v", err)
		}
		cfg.Instance = host
	}
	if cfg.SettleWorkers <= 0 {
		cfg.SettleWorkers = 8
	}
	g := &Gateway{
		cfg: cfg, st: st, log: log, events: newHub(), stats: newCounters(),
		pool:      newPool(cfg.SettleWorkers, 1024),
		upstreams: make(map[string]*upstreamRun), apiBucket: make(map[string]*tokenBucket),
	}
	r, err := newRouter(cfg.Routing, st, g, cfg.Instance, g.events, g.stats, g.pool, log)
	if err != nil {
		return nil, err
	}
	g.router = r
	if g.auth, err = NewStoreAuthenticator(st, log); err != nil {
		return nil, err
	}
	if g.srv, err = NewServer(cfg.Server, g.auth, r, log); err != nil {
		return nil, err
	}
	r.finder = g.srv
	g.runCtx, g.stopRun = context.WithCancel(context.Background())
	return g, nil
}

// Server is the SMSC side (for its addresses, or Serve on a listener of one's own).
func (g *Gateway) Server() *Server { return g.srv }

// Router is the message path.
func (g *Gateway) Router() *Router { return g.router }

// Start seeds the configured accounts and routes into the store, loads the routes, binds every
// upstream (configured and stored), and opens the listeners.
func (g *Gateway) Start(ctx context.Context) error {
	g.mu.Lock()
	if g.started {
		g.mu.Unlock()
		return errors.New("gateway: already started")
	}
	g.started = true
	g.mu.Unlock()
	if err := g.st.Ping(ctx); err != nil {
		return fmt.Errorf("gateway: store: %w", err)
	}
	if err := seedAccounts(ctx, g.st, g.cfg.Accounts); err != nil {
		return err
	}
	if err := g.router.seedRoutes(ctx); err != nil {
		return err
	}
	if err := g.router.loadRoutes(ctx); err != nil {
		return err
	}
	g.router.start(g.runCtx)

	ups := slices.Clone(g.cfg.Upstreams)
	stored, err := g.st.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("gateway: list upstreams: %w", err)
	}
	for _, su := range stored {
		if su.Disabled || slices.ContainsFunc(ups, func(c ClientConfig) bool { return c.withDefaults().Name == su.Name }) {
			continue
		}
		c, err := clientFromStore(su)
		if err != nil {
			g.log.Error().Err(err).Str("upstream", su.Name).Msg("stored upstream skipped")
			continue
		}
		ups = append(ups, c)
	}
	for _, uc := range ups {
		if err := g.startUpstream(uc); err != nil {
			g.stopUpstreams(ctx)
			return err
		}
	}
	if err := g.srv.Start(); err != nil {
		g.stopUpstreams(ctx)
		return err
	}
	g.log.Info().Int("upstreams", len(ups)).Int("accounts", len(g.cfg.Accounts)).Str("instance", g.cfg.Instance).Msg("gateway started")
	return nil
}

func (g *Gateway) startUpstream(uc ClientConfig) error {
	uc = uc.withDefaults()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, dup := g.upstreams[uc.Name]; dup {
		return fmt.Errorf("gateway: upstream %q: %w", uc.Name, store.ErrExists)
	}
	q := newStoreQueue(g.st, g.router, uc.Name, g.cfg.Instance+"/submit/"+uc.Name, uc.Session.WithDefaults().Window, g.log)
	c, err := NewClient(uc, g.router, q, g.log)
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("gateway: upstream %s: %w", uc.Name, err)
	}
	g.upstreams[uc.Name] = &upstreamRun{cfg: uc, client: c, queue: q}
	return nil
}

func (u *upstreamRun) stop(ctx context.Context, log zerolog.Logger) {
	if err := u.client.Unbind(ctx); err != nil {
		log.Warn().Err(err).Str("upstream", u.cfg.Name).Msg("upstream unbind did not finish")
	}
	gctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	u.queue.Close(gctx)
}

func (g *Gateway) stopUpstreams(ctx context.Context) {
	g.mu.Lock()
	ups := make([]*upstreamRun, 0, len(g.upstreams))
	for _, u := range g.upstreams {
		ups = append(ups, u)
	}
	g.upstreams = map[string]*upstreamRun{}
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Go(func() { u.stop(ctx, g.log) })
	}
	wg.Wait()
}

// Shutdown stops accepting, unbinds every ESME session and every upstream (bounded by ctx), stops the
// delivery loops and settles what is still being written. Everything not acknowledged stays in the
// store for the next start. It does not close the store.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	if g.stopped {
		g.mu.Unlock()
		return nil
	}
	g.stopped = true
	g.mu.Unlock()
	err := g.srv.Shutdown(ctx)
	g.stopUpstreams(ctx)
	g.stopRun()
	g.router.wait()
	g.pool.close()
	g.log.Info().Msg("gateway stopped")
	return err
}

// upstreamState implements upstreamView.
func (g *Gateway) upstreamState(name string) (known, up bool) {
	g.mu.Lock()
	u, ok := g.upstreams[name]
	g.mu.Unlock()
	if !ok {
		return false, false
	}
	return true, u.client.Bound() && !u.queue.isPaused()
}

func (g *Gateway) upstream(name string) (*upstreamRun, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	u, ok := g.upstreams[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUpstream, name)
	}
	return u, nil
}

// Submit accepts a message from the API: validated, split, routed, written to the store and queued,
// exactly as a submit_sm is. It returns once the message is durable.
func (g *Gateway) Submit(ctx context.Context, s Submission) (*store.Message, error) {
	m, err := g.router.fromSubmission(s, time.Now())
	if err != nil {
		g.stats.rejected.Add(1)
		return nil, err
	}
	if err := g.throttle(ctx, s.Account); err != nil {
		g.stats.rejected.Add(1)
		return nil, err
	}
	if err := g.router.accept(ctx, m); err != nil {
		g.stats.rejected.Add(1)
		return nil, err
	}
	return m, nil
}

// throttle applies the account's throughput to API submissions (the Server does it for SMPP).
func (g *Gateway) throttle(ctx context.Context, account string) error {
	a, err := g.st.GetAccount(ctx, account)
	if errors.Is(err, store.ErrNotFound) {
		return nil // an API-only account without an SMPP record has no throughput set
	} else if err != nil {
		return err
	}
	if a.Throughput <= 0 {
		return nil
	}
	g.mu.Lock()
	b := g.apiBucket[account]
	if b == nil || b.rate != float64(a.Throughput) {
		b = newTokenBucket(float64(a.Throughput))
		g.apiBucket[account] = b
	}
	g.mu.Unlock()
	if !b.allow(time.Now()) {
		return ErrThrottled
	}
	return nil
}

// Sessions lists the ESME sessions (bound or binding).
func (g *Gateway) Sessions() []session.Info { return g.srv.Sessions() }

// Session finds one ESME session.
func (g *Gateway) Session(id uint64) (session.Info, bool) {
	s, ok := g.srv.Session(id)
	if !ok {
		return session.Info{}, false
	}
	return s.Info(), true
}

// UnbindSession unbinds an ESME session gracefully, or closes it at once when force is set.
func (g *Gateway) UnbindSession(ctx context.Context, id uint64, force bool) error {
	s, ok := g.srv.Session(id)
	if !ok {
		return fmt.Errorf("%w: %d", ErrUnknownSession, id)
	}
	if force {
		s.Close()
		select {
		case <-s.Done():
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := s.Unbind(ctx)
	if errors.Is(err, session.ErrClosed) {
		return nil
	}
	return err
}

// Upstreams lists the upstream binds, by name.
func (g *Gateway) Upstreams() []UpstreamInfo {
	g.mu.Lock()
	ups := make([]*upstreamRun, 0, len(g.upstreams))
	for _, u := range g.upstreams {
		ups = append(ups, u)
	}
	g.mu.Unlock()
	sort.Slice(ups, func(i, j int) bool { return ups[i].cfg.Name < ups[j].cfg.Name })
	out := make([]UpstreamInfo, 0, len(ups))
	for _, u := range ups {
		c := u.cfg
		c.Password, c.OutbindPassword = "", ""
		st := u.client.Status()
		out = append(out, UpstreamInfo{Config: c, Status: st, Paused: u.queue.isPaused(), QueueDepth: st.Queued})
	}
	return out
}

// AddUpstream persists a new upstream in the store and binds it.
func (g *Gateway) AddUpstream(ctx context.Context, cfg ClientConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if _, err := g.upstream(cfg.Name); err == nil {
		return fmt.Errorf("gateway: upstream %q: %w", cfg.Name, store.ErrExists)
	}
	su, err := clientToStore(cfg)
	if err != nil {
		return err
	}
	if err := g.st.CreateUpstream(ctx, su); err != nil {
		return err
	}
	if err := g.startUpstream(cfg); err != nil {
		if derr := g.st.DeleteUpstream(ctx, cfg.Name); derr != nil {
			g.log.Warn().Err(derr).Str("upstream", cfg.Name).Msg("stored upstream not removed after a failed start")
		}
		return err
	}
	g.log.Info().Str("upstream", cfg.Name).Msg("upstream added")
	return nil
}

// RemoveUpstream unbinds an upstream and removes it (from the store too, when it was stored there).
// Its queued parts stay in the store's queue of that name.
func (g *Gateway) RemoveUpstream(ctx context.Context, name string) error {
	g.mu.Lock()
	u, ok := g.upstreams[name]
	delete(g.upstreams, name)
	g.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownUpstream, name)
	}
	u.stop(ctx, g.log)
	if err := g.st.DeleteUpstream(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	g.log.Info().Str("upstream", name).Msg("upstream removed")
	return nil
}

// ReconnectUpstream drops the upstream's bind; its supervisor dials again (after its back-off).
func (g *Gateway) ReconnectUpstream(name string) error {
	u, err := g.upstream(name)
	if err != nil {
		return err
	}
	if s := u.client.Session(); s != nil {
		s.Close()
	}
	return nil
}

// SetUpstreamPaused stops or resumes taking work from the upstream's queue; a paused upstream is
// also passed over by routing while another route's upstream can take the message.
func (g *Gateway) SetUpstreamPaused(name string, paused bool) error {
	u, err := g.upstream(name)
	if err != nil {
		return err
	}
	u.queue.setPaused(paused)
	g.log.Info().Str("upstream", name).Bool("paused", paused).Msg("upstream paused state set")
	return nil
}

// TestRoute returns the upstreams a message from account to destination would go to, in order.
func (g *Gateway) TestRoute(_ context.Context, account, destination string) ([]string, error) {
	names := g.router.Routes(account, destination)
	if len(names) == 0 {
		return nil, ErrNoRoute
	}
	return names, nil
}

// ReloadRoutes makes route edits in the store take effect (account edits need none: binds read the
// store).
func (g *Gateway) ReloadRoutes(ctx context.Context) error { return g.router.loadRoutes(ctx) }

// Outbind connects to an ESME and asks it to bind.
func (g *Gateway) Outbind(ctx context.Context, cfg OutbindConfig) error {
	_, err := g.srv.Outbind(ctx, cfg)
	return err
}

// Stats returns the gateway's counters; queue backlogs are read from the store.
func (g *Gateway) Stats(ctx context.Context) (Stats, error) {
	now := time.Now()
	st := Stats{
		MessagesByStatus: g.stats.statuses(), Pending: g.stats.pending(),
		Accepted: g.stats.accepted.Load(), Rejected: g.stats.rejected.Load(), Submitted: g.stats.submitted.Load(),
		ReceiptsIn: g.stats.receiptsIn.Load(), MOIn: g.stats.moIn.Load(),
		AcceptRate: g.stats.acceptRate.rate(now), SubmitRate: g.stats.submitRate.rate(now),
		ReceiptRate: g.stats.receiptRate.rate(now), MORate: g.stats.moRate.rate(now),
	}
	for _, s := range g.srv.Sessions() {
		if s.State == session.StateBound {
			st.Sessions++
		}
		st.WindowUsed += s.WindowUsed
		st.WindowSize += s.WindowSize
	}
	g.mu.Lock()
	ups := make([]*upstreamRun, 0, len(g.upstreams))
	for _, u := range g.upstreams {
		ups = append(ups, u)
	}
	g.mu.Unlock()
	sort.Slice(ups, func(i, j int) bool { return ups[i].cfg.Name < ups[j].cfg.Name })
	for _, u := range ups {
		if s := u.client.Session(); s != nil {
			in := s.Info()
			st.WindowUsed += in.WindowUsed
			st.WindowSize += in.WindowSize
		}
		qi, err := g.queueInfo(ctx, store.Queue{Kind: store.SubmitQueue, Name: u.cfg.Name}, now)
		if err != nil {
			return st, err
		}
		st.UpstreamQueues = append(st.UpstreamQueues, qi)
	}
	accounts, err := g.st.ListAccounts(ctx)
	if err != nil {
		return st, err
	}
	sort.Slice(accounts, func(i, j int) bool { return accounts[i].SystemID < accounts[j].SystemID })
	for _, a := range accounts {
		qi, err := g.queueInfo(ctx, store.Queue{Kind: store.DeliverQueue, Name: a.SystemID}, now)
		if err != nil {
			return st, err
		}
		st.DeliveryQueues = append(st.DeliveryQueues, qi)
	}
	return st, nil
}

func (g *Gateway) queueInfo(ctx context.Context, q store.Queue, now time.Time) (QueueInfo, error) {
	qs, err := g.st.QueueStats(ctx, q)
	if err != nil {
		return QueueInfo{}, err
	}
	qi := QueueInfo{Name: q.Name, Len: qs.Len, Claimed: qs.Claimed}
	if !qs.Oldest.IsZero() {
		qi.OldestAge = max(now.Sub(qs.Oldest), 0)
	}
	return qi, nil
}

// Subscribe delivers receipts and MO for account ("" for every account) until cancel is called.
func (g *Gateway) Subscribe(account string) (<-chan Event, func()) {
	return g.events.subscribe(account)
}

// Ready reports whether the store answers and the server is started with its listeners open.
func (g *Gateway) Ready(ctx context.Context) error {
	if err := g.st.Ping(ctx); err != nil {
		return err
	}
	g.mu.Lock()
	started, stopped := g.started, g.stopped
	g.mu.Unlock()
	switch {
	case !started:
		return errors.New("gateway: not started")
	case stopped:
		return errors.New("gateway: shut down")
	case len(g.srv.Addrs()) < len(g.srv.cfg.Listeners):
		return errors.New("gateway: listeners not open yet")
	}
	return nil
}
