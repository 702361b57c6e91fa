package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/store"
)

// upstreamRun is one upstream's client and its store-backed queue.
type upstreamRun struct {
	cfg    ClientConfig
	client *Client
	queue  *storeQueue
	// stored is the store's record the upstream was started from (its bind settings: see
	// sameUpstream); nil for an upstream of the configuration file.
	stored *store.Upstream
}

// upstreamSet is the gateway's running upstreams, by name. The route table asks it which are known
// and which can take work (upstreamStates).
type upstreamSet struct {
	mu sync.Mutex
	m  map[string]*upstreamRun
	// edit serialises the changes of the set from the admin API (AddUpstream, UpdateUpstream,
	// RemoveUpstream) with syncUpstreams, so that neither starts or stops what the other is changing.
	edit sync.Mutex
	// elsewhere reports whether another instance sharing the store has the upstream bound (and not
	// paused there); nil means there is no other.
	elsewhere func(name string) bool
}

func newUpstreamSet() *upstreamSet { return &upstreamSet{m: make(map[string]*upstreamRun)} }

// upstreamState implements upstreamStates: up means not paused here, and bound here or on another
// instance (which takes the upstream's queue from the shared store).
func (s *upstreamSet) upstreamState(name string) (known, up bool) {
	s.mu.Lock()
	u, ok := s.m[name]
	s.mu.Unlock()
	if !ok {
		return false, false
	}
	if u.queue.isPaused() {
		return true, false
	}
	return true, u.client.Bound() || s.elsewhere != nil && s.elsewhere(name)
}

func (s *upstreamSet) get(name string) (*upstreamRun, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.m[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUpstream, name)
	}
	return u, nil
}

func (s *upstreamSet) has(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[name]
	return ok
}

// setStored notes the store record upstream name was started from (nil: from the configuration).
func (s *upstreamSet) setStored(name string, su *store.Upstream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.m[name]; ok {
		u.stored = su
	}
}

// remove takes name out of the set and returns it.
func (s *upstreamSet) remove(name string) (*upstreamRun, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.m[name]
	delete(s.m, name)
	return u, ok
}

// all returns the upstreams by name.
func (s *upstreamSet) all() []*upstreamRun {
	s.mu.Lock()
	ups := make([]*upstreamRun, 0, len(s.m))
	for _, u := range s.m {
		ups = append(ups, u)
	}
	s.mu.Unlock()
	sort.Slice(ups, func(i, j int) bool { return ups[i].cfg.Name < ups[j].cfg.Name })
	return ups
}

// takeAll empties the set and returns what it held.
func (s *upstreamSet) takeAll() []*upstreamRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	ups := make([]*upstreamRun, 0, len(s.m))
	for _, u := range s.m {
		ups = append(ups, u)
	}
	s.m = make(map[string]*upstreamRun)
	return ups
}

func (g *Gateway) startUpstream(uc ClientConfig) error {
	uc = uc.withDefaults()
	g.ups.mu.Lock()
	defer g.ups.mu.Unlock()
	if _, dup := g.ups.m[uc.Name]; dup {
		return fmt.Errorf("gateway: upstream %q: %w", uc.Name, store.ErrExists)
	}
	// MaxUnsettled parts per bind (at least its window) may be out unsettled and are claimed ahead:
	// the binds share the queue, each fills its own window.
	q := newStoreQueue(g.st, g.settle, g.work, uc.Name, g.cfg.Instance+"/submit/"+uc.Name, uc.Binds*uc.unsettled(), g.log)
	q.inDoubt = g.inDoubt
	c, err := NewClient(uc, g.inbound, q, g.log)
	if err != nil {
		return err
	}
	c.SetRewrite(g.numbers.upstreamRewrite(uc.Name, uc.Numbers))
	c.setLeases(g.own) // each bind slot's lease among instances sharing the store
	if err := c.Start(); err != nil {
		return fmt.Errorf("gateway: upstream %s: %w", uc.Name, err)
	}
	g.ups.m[uc.Name] = &upstreamRun{cfg: uc, client: c, queue: q}
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
	ups := g.ups.takeAll()
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Go(func() { u.stop(ctx, g.log) })
	}
	wg.Wait()
}

// Upstreams lists the upstream binds, by name.
func (g *Gateway) Upstreams() []UpstreamInfo {
	ups := g.ups.all()
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
	g.ups.edit.Lock()
	defer g.ups.edit.Unlock()
	if g.ups.has(cfg.Name) {
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
	g.noteStored(ctx, cfg.Name, su)
	g.log.Info().Str("upstream", cfg.Name).Msg("upstream added")
	return nil
}

// ErrConfiguredUpstream: an upstream of the configuration file is changed there, not at run time
// (the file's settings win at the next start).
var ErrConfiguredUpstream = errors.New("gateway: upstream from the configuration file; change it there")

// UpstreamChange is what UpdateUpstream changes; nil fields stay as they are.
type UpstreamChange struct {
	Binds  *int
	MaxTPS *float64
}

// UpdateUpstream changes the binds and max_tps of an upstream added through AddUpstream: the stored
// record first, then the running upstream is stopped and started again with them (its queue stays in
// the store; a paused upstream stays paused). Meanwhile, for a moment, routing does not see it.
func (g *Gateway) UpdateUpstream(ctx context.Context, name string, ch UpstreamChange) error {
	g.ups.edit.Lock()
	defer g.ups.edit.Unlock()
	u, err := g.ups.get(name)
	if err != nil {
		return err
	}
	old, err := g.st.GetUpstream(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrConfiguredUpstream, name)
	}
	if err != nil {
		return err
	}
	cfg := u.cfg
	if ch.Binds != nil {
		cfg.Binds = *ch.Binds
	}
	if ch.MaxTPS != nil {
		cfg.MaxTPS = *ch.MaxTPS
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	cfg = cfg.withDefaults()
	su, err := clientToStore(cfg)
	if err != nil {
		return err
	}
	su.CreatedAt, su.Disabled, su.Description = old.CreatedAt, old.Disabled, old.Description
	if err := g.st.PutUpstream(ctx, su); err != nil {
		return err
	}
	if cur, ok := g.ups.remove(name); ok {
		u = cur
	}
	paused := u.queue.isPaused()
	u.stop(ctx, g.log)
	if err := g.startUpstream(cfg); err != nil {
		return err
	}
	g.noteStored(ctx, name, su)
	if paused {
		if err := g.SetUpstreamPaused(name, true); err != nil {
			return err
		}
	}
	g.log.Info().Str("upstream", name).Int("binds", cfg.Binds).Float64("max_tps", cfg.MaxTPS).Msg("upstream changed")
	return nil
}

// RemoveUpstream unbinds an upstream and removes it (from the store too, when it was stored there).
// Its queued parts stay in the store's queue of that name.
func (g *Gateway) RemoveUpstream(ctx context.Context, name string) error {
	g.ups.edit.Lock()
	defer g.ups.edit.Unlock()
	u, ok := g.ups.remove(name)
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

// ReconnectUpstream drops the upstream's binds; their supervisors dial again (after the back-off).
func (g *Gateway) ReconnectUpstream(name string) error {
	u, err := g.ups.get(name)
	if err != nil {
		return err
	}
	for _, s := range u.client.Sessions() {
		s.Close()
	}
	return nil
}

// SetUpstreamPaused stops or resumes taking work from the upstream's queue; a paused upstream is
// also passed over by routing while another route's upstream can take the message.
func (g *Gateway) SetUpstreamPaused(name string, paused bool) error {
	u, err := g.ups.get(name)
	if err != nil {
		return err
	}
	u.queue.setPaused(paused)
	g.log.Info().Str("upstream", name).Bool("paused", paused).Msg("upstream paused state set")
	return nil
}

// noteStored records the store's record of upstream name as written (read back, so that it compares
// equal with what syncUpstreams reads; written, should it be unreadable for a moment).
func (g *Gateway) noteStored(ctx context.Context, name string, written *store.Upstream) {
	if su, err := g.st.GetUpstream(ctx, name); err == nil {
		written = su
	}
	g.ups.setStored(name, written)
}

// sameUpstream reports whether two store records of an upstream bind alike: everything but the
// times and the description.
func sameUpstream(a, b *store.Upstream) bool {
	norm := func(u *store.Upstream) store.Upstream {
		c := *u
		c.CreatedAt, c.UpdatedAt, c.Description = time.Time{}, time.Time{}, ""
		if len(c.Options) == 0 {
			c.Options = nil
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// syncUpstreams brings the upstreams of the store in line with the store (issue 12): an upstream
// added, changed or removed through another instance's admin API (they share the store) is started,
// restarted or stopped here too, and then binds under the leases like any other; a disabled one is
// stopped. The refresher runs it every reload_interval, with the routing tables. Upstreams of the
// configuration file are the file's and are left alone.
func (g *Gateway) syncUpstreams(ctx context.Context) error {
	g.ups.edit.Lock()
	defer g.ups.edit.Unlock()
	stored, err := g.st.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("list upstreams: %w", err)
	}
	configured := map[string]bool{}
	for _, c := range g.cfg.Upstreams {
		configured[c.withDefaults().Name] = true
	}
	want := map[string]bool{}
	for _, su := range stored {
		if configured[su.Name] || su.Disabled {
			continue
		}
		want[su.Name] = true
		u, err := g.ups.get(su.Name)
		switch {
		case err != nil:
			if err := g.startStored(su); err != nil {
				g.log.Error().Err(err).Str("upstream", su.Name).Msg("upstream of the store not started")
				continue
			}
			g.log.Info().Str("upstream", su.Name).Msg("upstream added through another instance: started")
		case u.stored == nil || sameUpstream(u.stored, su):
		default:
			paused := u.queue.isPaused()
			g.ups.remove(su.Name)
			u.stop(ctx, g.log)
			if err := g.startStored(su); err != nil {
				g.log.Error().Err(err).Str("upstream", su.Name).Msg("upstream changed in the store not started again")
				continue
			}
			if paused {
				if err := g.SetUpstreamPaused(su.Name, true); err != nil {
					return err
				}
			}
			g.log.Info().Str("upstream", su.Name).Int("binds", su.Binds).Msg("upstream changed through another instance: started again")
		}
	}
	for _, u := range g.ups.all() {
		if u.stored == nil || want[u.cfg.Name] {
			continue
		}
		if cur, ok := g.ups.remove(u.cfg.Name); ok {
			cur.stop(ctx, g.log)
			g.log.Info().Str("upstream", u.cfg.Name).Msg("upstream removed or disabled through another instance: stopped")
		}
	}
	return nil
}

// startStored starts the upstream of store record su.
func (g *Gateway) startStored(su *store.Upstream) error {
	c, err := clientFromStore(su)
	if err != nil {
		return err
	}
	if err := g.startUpstream(c); err != nil {
		return err
	}
	g.ups.setStored(c.withDefaults().Name, su)
	return nil
}
