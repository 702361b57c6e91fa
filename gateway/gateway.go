package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/store"
)

// Gateway is the running gateway: the Server ESMEs bind to, one Client per upstream reading the
// store's queue of that upstream, and the message path between them and the store (see the package
// doc for who does what). It offers the API (package api) one message path shared with SMPP, and the
// operator's controls.
type Gateway struct {
	cfg    Config
	st     store.Store
	log    zerolog.Logger
	srv    *Server
	auth   *storeAuthenticator
	events *hub
	stats  *counters
	work   *pool

	ups      *upstreamSet
	routes   *routeTable
	moRoutes *moRouteTable
	numbers  *numberTable
	refresh  *refresher
	submit   *submitter
	deliv    *deliverer
	receipts *receipts
	settle   *partSettler
	inbound  *fromUpstream
	fail     *failover
	own      *ownership     // bind leases and the board, among instances sharing the store
	relay    *clusterEvents // receipts and MO to the other instances' API streams; nil without a cluster
	inDoubt  *inDoubt

	runCtx  context.Context
	stopRun context.CancelFunc
	started bool
	stopped bool
	mu      sync.Mutex
	limits  *accountLimits // the accounts' throughput over SMPP and the API together
}

// New checks cfg and builds a gateway on st; Start runs it. The caller keeps st and closes it after
// Shutdown.
func New(cfg Config, st store.Store, log zerolog.Logger) (*Gateway, error) {
	if st == nil {
		return nil, errors.New("gateway: New needs a store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Each part of the message path is built on what it hands work to; none reaches back.
	g := &Gateway{
		cfg: cfg, st: st, log: log, events: newHub(), stats: newCounters(), work: newPool(cfg.Workers),
		ups: newUpstreamSet(), limits: newAccountLimits(),
	}
	g.own = newOwnership(cfg.Cluster, cfg.Instance, cfg.Ownership, log)
	g.limits.rl, _ = st.(store.RateLimits) // Redis: one cap over every instance
	g.limits.live, g.limits.log = g.own.liveInstances, log.With().Str("component", "limits").Logger()
	g.ups.elsewhere = g.own.upElsewhere
	if ev, ok := cfg.Cluster.(store.Events); ok {
		g.relay = newClusterEvents(ev, g.own, g.events, log)
	}
	rc := cfg.Routing.withDefaults()
	g.routes = newRouteTable(rc.Routes, st, g.ups, log)
	g.submit = newSubmitter(st, g.routes, splitModes[rc.LongMessages], g.stats, g.work, log)
	g.submit.edits = newEditor(st, g.ups, g.work, log)
	g.inDoubt = newInDoubt(st, log)
	g.submit.inDoubt = g.inDoubt
	accounts := newAccountOptions(st, log) // message_ids, receipts, long_mo
	g.submit.ids.accounts = accounts
	g.deliv = newDeliverer(rc, st, cfg.Instance, g.work, log)
	g.receipts = newReceipts(st, g.events, g.stats, g.deliv, accounts, log)
	g.settle = newPartSettler(st, g.stats, g.receipts, log)
	g.settle.routes = g.routes
	if g.settle.rerouteOn, err = rerouteStatuses(rc.RerouteOn); err != nil {
		return nil, err
	}
	g.fail = newFailover(st, g.ups, g.routes, rc.FailoverAfter, cfg.Instance, log)
	g.moRoutes = newMORouteTable(rc.MORoutes, st, log)
	g.numbers = newNumberTable(st, rc.AccountNumbers, log)
	g.submit.numbers = g.numbers
	g.refresh = &refresher{every: rc.ReloadInterval, load: []func(context.Context) error{g.syncUpstreams, g.routes.load, g.moRoutes.load, g.numbers.load},
		log: log.With().Str("component", "routes").Logger()}
	g.inbound = newFromUpstream(g.moRoutes, st, g.receipts, g.deliv, g.events, g.stats, g.work, log)
	g.inbound.accounts = accounts
	if g.auth, err = newStoreAuthenticator(st, log); err != nil {
		return nil, err
	}
	if g.srv, err = newServer(cfg.Server, g.auth, g.submit, g.deliv, g.limits, log); err != nil {
		return nil, err
	}
	g.runCtx, g.stopRun = context.WithCancel(context.Background())
	return g, nil
}

// Server is the SMSC side (for its addresses, or Serve on a listener of one's own).
func (g *Gateway) Server() *Server { return g.srv }

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
	if err := g.routes.seed(ctx); err != nil {
		return err
	}
	if err := g.routes.load(ctx); err != nil {
		return err
	}
	if err := g.moRoutes.seed(ctx); err != nil {
		return err
	}
	if err := g.moRoutes.load(ctx); err != nil {
		return err
	}
	if err := g.numbers.load(ctx); err != nil {
		return err
	}
	g.deliv.run(g.runCtx)
	go g.inDoubt.run(g.runCtx)

	ups := slices.Clone(g.cfg.Upstreams)
	stored, err := g.st.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("gateway: list upstreams: %w", err)
	}
	fromStore := map[string]*store.Upstream{}
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
		fromStore[su.Name] = su
	}
	for _, uc := range ups {
		if err := g.startUpstream(uc); err != nil {
			g.stopUpstreams(ctx)
			return err
		}
		g.ups.setStored(uc.withDefaults().Name, fromStore[uc.Name])
	}
	if err := g.srv.Start(); err != nil {
		g.stopUpstreams(ctx)
		return err
	}
	g.fail.start(g.runCtx)
	g.refresh.start(g.runCtx)
	g.own.start(g.runCtx, g.instanceState)
	g.relay.start(g.runCtx)
	g.log.Info().Int("upstreams", len(ups)).Int("accounts", len(g.cfg.Accounts)).Str("instance", g.cfg.Instance).Msg("gateway started")
	return nil
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
	g.fail.stop() // upstreams going down now are not to be failed over
	g.refresh.stop()
	err := g.srv.Shutdown(ctx)
	g.stopUpstreams(ctx)
	g.relay.stop()
	g.own.stop()
	g.stopRun()
	g.deliv.wait()
	g.work.close()
	g.log.Info().Msg("gateway stopped")
	return err
}

// Submit accepts a message from the API: validated, split, routed, written to the store and queued,
// exactly as a submit_sm is. It returns once the message is durable.
func (g *Gateway) Submit(ctx context.Context, s Submission) (*store.Message, error) {
	m, err := g.submit.fromSubmission(s, time.Now())
	if err != nil {
		g.stats.rejected.Add(1)
		return nil, err
	}
	if err := g.throttle(ctx, s.Account); err != nil {
		g.stats.rejected.Add(1)
		return nil, err
	}
	if err := g.submit.accept(ctx, m); err != nil {
		g.stats.rejected.Add(1)
		return nil, err
	}
	return m, nil
}

// throttle applies the account's throughput to API submissions, from the same bucket as its SMPP
// sessions take theirs (accountLimits): one quota over both. The throughput is read through the
// account options' cache (accountOptsTTL), not from the store per call; an API-only account without
// an SMPP record has none.
func (g *Gateway) throttle(ctx context.Context, account string) error {
	rate := g.submit.ids.accounts.get(ctx, account).Throughput
	b := g.limits.bucket(account, rate)
	if b != nil && !b.Allow(time.Now()) {
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

// TestRoute returns the upstreams a message from account to destination would go to, in order.
func (g *Gateway) TestRoute(_ context.Context, account, destination string) ([]string, error) {
	names := g.routes.Routes(account, destination)
	if len(names) == 0 {
		return nil, ErrNoRoute
	}
	return names, nil
}

// ReloadRoutes makes route edits in the store take effect (account edits need none: binds read the
// store).
func (g *Gateway) ReloadRoutes(ctx context.Context) error { return g.routes.load(ctx) }

// Routes returns the store's routes in the order the route table evaluates them: the first that
// matches a submission (its account, a prefix of its destination) is the one it takes first.
func (g *Gateway) Routes(ctx context.Context) ([]*store.Route, error) { return g.routes.stored(ctx) }

// RouteMatches reports whether route r carries a submission from account to destination.
func RouteMatches(r *store.Route, account, destination string) bool {
	return matches(r, account, destination)
}

// ErrNotBoundBack is returned by Outbind when the ESME closed the connection without binding (it
// refused the outbind's credentials, say).
var ErrNotBoundBack = errors.New("gateway: the ESME closed the connection without binding")

// Outbind connects to an ESME, sends outbind, and waits for the ESME's bind on that connection. It
// returns the session's Info once bound; an ESME that binds, sends and leaves before the next look
// still counts as bound (its Info then says closed). Errors: the dial's, ErrNotBoundBack, or ctx's
// when it ends first (the session then waits for the bind until its own bind timeout).
func (g *Gateway) Outbind(ctx context.Context, cfg OutbindConfig) (session.Info, error) {
	s, err := g.srv.Outbind(ctx, cfg)
	if err != nil {
		return session.Info{}, err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		switch s.State() {
		case session.StateBound, session.StateUnbinding:
			return s.Info(), nil
		case session.StateClosed:
			if s.BindType() != session.BindNone {
				return s.Info(), nil
			}
			return session.Info{}, fmt.Errorf("%w: %s", ErrNotBoundBack, cfg.Address)
		}
		select {
		case <-s.Done():
		case <-tick.C:
		case <-ctx.Done():
			return session.Info{}, ctx.Err()
		}
	}
}

// Stats returns the gateway's counters; queue backlogs are read from the store.
func (g *Gateway) Stats(ctx context.Context) (Stats, error) {
	now := time.Now()
	st := Stats{
		MessagesByStatus: g.stats.statuses(), Pending: g.stats.pending(),
		Accepted: g.stats.accepted.Load(), Rejected: g.stats.rejected.Load(), Submitted: g.stats.submitted.Load(),
		ReceiptsIn: g.stats.receiptsIn.Load(), ReceiptsDuplicate: g.stats.receiptsDup.Load(), MOIn: g.stats.moIn.Load(),
		AcceptRate: g.stats.acceptRate.rate(now), SubmitRate: g.stats.submitRate.rate(now),
		ReceiptRate: g.stats.receiptRate.rate(now), MORate: g.stats.moRate.rate(now),
		EventsDropped: g.events.dropped.Load(), StreamsEnded: g.events.ended.Load(),
	}
	for _, s := range g.srv.Sessions() {
		if s.State == session.StateBound {
			st.Sessions++
		}
		st.WindowUsed += s.WindowUsed
		st.WindowSize += s.WindowSize
	}
	for _, u := range g.ups.all() {
		for _, s := range u.client.Sessions() {
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
// The gateway never waits for a subscriber: an event that finds SubscriberBuffer events waiting is
// not handed to it (the store keeps it), and the subscription goes on with the next ones.
func (g *Gateway) Subscribe(account string) (<-chan Event, func()) {
	return g.events.subscribe(account, false)
}

// SubscribeStream is Subscribe for a consumer that must not skip events without knowing: one that
// falls SubscriberBuffer events behind is ended instead, its channel closed after the events it
// holds, and gets no more. A channel closed before cancel is called therefore means "fell behind".
func (g *Gateway) SubscribeStream(account string) (<-chan Event, func()) {
	return g.events.subscribe(account, true)
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
