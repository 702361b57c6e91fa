package gateway

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/store"
)

// Route, in the configuration file, sends submissions whose destination_addr starts with Prefix to
// the upstream named Upstream. The gateway writes the configured routes into the store at start
// (store.Route named "config-N"), where the admin API edits them and adds others; the store's routes
// are what the route table uses. Several routes may match one message: the longest prefix wins, a
// route limited to the submitting account beats one open to all, then the higher store priority (the
// configuration order for configured routes). The upstreams of the matching routes, in that order,
// are the failover order.
type Route struct {
	// Prefix is matched against destination_addr as written (no number normalisation). Empty matches
	// every destination.
	Prefix string `yaml:"prefix"`
	// Accounts, when set, limits the route to submissions from these system_ids.
	Accounts []string `yaml:"accounts"`
	// Upstream is the name of the upstream bind (ClientConfig.Name) that carries the messages.
	Upstream string `yaml:"upstream"`
	// Upstreams are more upstreams for the route, after Upstream (if set), in failover order.
	Upstreams []string `yaml:"upstreams"`
	// Weights, when set, has one weight (0 to MaxRouteWeight) per upstream of the route (Upstream
	// first, then Upstreams): new messages are split between those bound and unpaused in proportion to
	// their weights, by smooth weighted round robin (70/30 sends exactly 7 of every 10 to the first
	// while both are up). An upstream of weight 0 is used only when no weighted one is up. Empty: the
	// first available upstream takes every message.
	Weights []int `yaml:"weights"`
}

// MaxRouteWeight bounds one upstream's weight in a route.
const MaxRouteWeight = 1000000

// upstreams is the route's upstreams in order: Upstream, then Upstreams.
func (r Route) upstreams() []string {
	if r.Upstream == "" {
		return slices.Clone(r.Upstreams)
	}
	return append([]string{r.Upstream}, r.Upstreams...)
}

// CheckWeights reports what is wrong with a route's weights for n upstreams.
func CheckWeights(weights []int, n int) error {
	if len(weights) == 0 {
		return nil
	}
	if len(weights) != n {
		return fmt.Errorf("%d weights for %d upstreams; give one per upstream, or none", len(weights), n)
	}
	for i, w := range weights {
		if w < 0 || w > MaxRouteWeight {
			return fmt.Errorf("weights[%d]: %d, want 0 to %d", i, w, MaxRouteWeight)
		}
	}
	return nil
}

// configRoutePrefix names the store routes seeded from the configuration file.
const configRoutePrefix = "config-"

// upstreamStates says which upstreams this gateway has, and which of them can take work now (bound
// and not paused). The gateway's set of running upstreams is one.
type upstreamStates interface {
	upstreamState(name string) (known, up bool)
}

// routeTable is the one route table: it seeds the configured routes into the store, loads the
// store's routes, and is the only place that orders them (RouteOrder) and looks a destination up.
// What it holds is rebuilt from the store at each load.
type routeTable struct {
	st         store.Store
	configured []Route
	ups        upstreamStates
	log        zerolog.Logger
	routes     atomic.Pointer[[]store.Route] // in RouteOrder

	wrrMu sync.Mutex
	wrr   map[string][]int // route name -> smooth weighted round robin's current weights
}

func newRouteTable(configured []Route, st store.Store, ups upstreamStates, log zerolog.Logger) *routeTable {
	t := &routeTable{st: st, configured: configured, ups: ups, log: log.With().Str("component", "routes").Logger(), wrr: make(map[string][]int)}
	t.routes.Store(&[]store.Route{})
	return t
}

// seed writes the configured routes into the store as "config-N" and removes configured routes of an
// earlier configuration that are gone from this one.
func (t *routeTable) seed(ctx context.Context) error {
	want := map[string]bool{}
	n := len(t.configured)
	for i, cr := range t.configured {
		accounts := cr.Accounts
		if len(accounts) == 0 {
			accounts = []string{""}
		}
		for j, a := range accounts {
			name := fmt.Sprintf("%s%d", configRoutePrefix, i)
			if len(cr.Accounts) > 0 {
				name = fmt.Sprintf("%s%d-%d", configRoutePrefix, i, j)
			}
			want[name] = true
			sr := &store.Route{Name: name, Account: a, Prefix: cr.Prefix, Upstreams: cr.upstreams(), Weights: slices.Clone(cr.Weights), Priority: n - i}
			if old, err := t.st.GetRoute(ctx, name); err == nil {
				sr.CreatedAt = old.CreatedAt
			}
			if err := t.st.PutRoute(ctx, sr); err != nil {
				return fmt.Errorf("gateway: seed route %s: %w", name, err)
			}
		}
	}
	all, err := t.st.ListRoutes(ctx)
	if err != nil {
		return fmt.Errorf("gateway: list routes: %w", err)
	}
	for _, rt := range all {
		if strings.HasPrefix(rt.Name, configRoutePrefix) && !want[rt.Name] {
			if err := t.st.DeleteRoute(ctx, rt.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("gateway: remove stale route %s: %w", rt.Name, err)
			}
		}
	}
	return nil
}

// stored reads the store's routes in the order they are evaluated.
func (t *routeTable) stored(ctx context.Context) ([]*store.Route, error) {
	all, err := t.st.ListRoutes(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(all, RouteOrder)
	return all, nil
}

// load reads the store's routes and makes them the ones in use.
func (t *routeTable) load(ctx context.Context) error {
	all, err := t.stored(ctx)
	if err != nil {
		return fmt.Errorf("gateway: load routes: %w", err)
	}
	rs := make([]store.Route, 0, len(all))
	for _, rt := range all {
		rs = append(rs, *rt)
	}
	if reflect.DeepEqual(*t.routes.Load(), rs) {
		return nil // unchanged: the weighted picks go on where they were
	}
	t.wrrMu.Lock()
	t.routes.Store(&rs)
	t.wrr = make(map[string][]int)
	t.wrrMu.Unlock()
	t.log.Info().Int("routes", len(rs)).Msg("routes loaded from the store")
	return nil
}

// RouteOrder is the order routes are evaluated in, the route table's and the only one: longest
// prefix first, account-limited before open, higher priority, then name for a stable order.
func RouteOrder(a, b *store.Route) int {
	if d := len(b.Prefix) - len(a.Prefix); d != 0 {
		return d
	}
	if d := boolInt(b.Account != "") - boolInt(a.Account != ""); d != 0 {
		return d
	}
	if d := b.Priority - a.Priority; d != 0 {
		return d
	}
	return strings.Compare(a.Name, b.Name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// matches reports whether rt carries a submission from account to dest.
func matches(rt *store.Route, account, dest string) bool {
	return strings.HasPrefix(dest, rt.Prefix) && (rt.Account == "" || rt.Account == account)
}

// Routes returns the upstreams (known to this gateway) a submission from account to dest may take,
// in order of preference.
func (t *routeTable) Routes(account, dest string) []string {
	var out []string
	rs := *t.routes.Load()
	for i := range rs {
		if !matches(&rs[i], account, dest) {
			continue
		}
		for _, u := range rs[i].Upstreams {
			if known, _ := t.ups.upstreamState(u); known && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// pickUpstream returns the queue a new message goes to: the first upstream in route order that is
// bound and not paused, else the first one (its queue holds the message until its bind is back).
// When the best matching route has weights, the first choice is its weighted pick instead.
// It walks the table as Routes does without building the list: it runs for every submission.
func (t *routeTable) pickUpstream(account, dest string) (string, bool) {
	first := ""
	best := true
	rs := *t.routes.Load()
	for i := range rs {
		if !matches(&rs[i], account, dest) {
			continue
		}
		if best {
			best = false
			if n := t.weighted(&rs[i]); n != "" {
				return n, true
			}
		}
		for _, u := range rs[i].Upstreams {
			known, up := t.ups.upstreamState(u)
			switch {
			case known && up:
				return u, true
			case known && first == "":
				first = u
			}
		}
	}
	return first, first != ""
}

// weighted picks one of rt's bound, unpaused upstreams of weight > 0 by smooth weighted round robin
// (nginx's: each takes its weight, the largest is chosen and loses the sum), so that any stretch of
// picks follows the weights closely; "" when rt has no weights or none of them is up.
func (t *routeTable) weighted(rt *store.Route) string {
	if len(rt.Weights) == 0 || len(rt.Weights) != len(rt.Upstreams) {
		return ""
	}
	t.wrrMu.Lock()
	defer t.wrrMu.Unlock()
	cur := t.wrr[rt.Name]
	if len(cur) != len(rt.Upstreams) {
		cur = make([]int, len(rt.Upstreams))
		t.wrr[rt.Name] = cur
	}
	best, total := -1, 0
	for i, u := range rt.Upstreams {
		w := rt.Weights[i]
		if w <= 0 {
			continue
		}
		if known, up := t.ups.upstreamState(u); !known || !up {
			continue
		}
		cur[i] += w
		total += w
		if best < 0 || cur[i] > cur[best] {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	cur[best] -= total
	return rt.Upstreams[best]
}

// nextUp returns the first upstream after from in the failover order of a submission from account to
// dest that is bound and not paused, or "" when none is. With wrap, the search goes on from the head
// of the order up to from (failover of a queue: any other upstream will do, the later ones first);
// without, only later upstreams count (a refusal moves a part forward, never back, so a part cannot
// go round between upstreams that refuse it). When from is not in the order, the search starts at its
// head.
func (t *routeTable) nextUp(account, dest, from string, wrap bool) string {
	names := t.Routes(account, dest)
	start := slices.Index(names, from) + 1 // 0 when from is not there
	for i := range len(names) {
		if !wrap && start+i >= len(names) {
			break
		}
		n := names[(start+i)%len(names)]
		if n == from {
			continue
		}
		if _, up := t.ups.upstreamState(n); up {
			return n
		}
	}
	return ""
}

// moRouteTable is the MO route table: the configured MO routes are seeded into the store (store.MORoute
// named "config-N", priority by configuration order), the admin API adds and deletes others, and the
// store's are the ones in use, reloaded after each edit, so an edit takes effect on the next MO.
type moRouteTable struct {
	st         store.Store
	configured []MORoute
	log        zerolog.Logger
	routes     atomic.Pointer[[]store.MORoute] // in MORouteOrder
}

func newMORouteTable(configured []MORoute, st store.Store, log zerolog.Logger) *moRouteTable {
	t := &moRouteTable{st: st, configured: configured, log: log.With().Str("component", "mo_routes").Logger()}
	t.routes.Store(&[]store.MORoute{})
	return t
}

// MORouteOrder is the order MO routes are evaluated in: longest prefix first, higher priority, name.
func MORouteOrder(a, b *store.MORoute) int {
	if d := len(b.Prefix) - len(a.Prefix); d != 0 {
		return d
	}
	if d := b.Priority - a.Priority; d != 0 {
		return d
	}
	return strings.Compare(a.Name, b.Name)
}

// seed writes the configured MO routes into the store as "config-N" and removes configured ones of an
// earlier configuration that are gone from this one.
func (t *moRouteTable) seed(ctx context.Context) error {
	want := map[string]bool{}
	n := len(t.configured)
	for i, cr := range t.configured {
		name := fmt.Sprintf("%s%d", configRoutePrefix, i)
		want[name] = true
		r := &store.MORoute{Name: name, Prefix: cr.Prefix, Account: cr.Account, Priority: n - i}
		if old, err := t.st.GetMORoute(ctx, name); err == nil {
			r.CreatedAt = old.CreatedAt
		}
		if err := t.st.PutMORoute(ctx, r); err != nil {
			return fmt.Errorf("gateway: seed MO route %s: %w", name, err)
		}
	}
	all, err := t.st.ListMORoutes(ctx)
	if err != nil {
		return fmt.Errorf("gateway: list MO routes: %w", err)
	}
	for _, r := range all {
		if strings.HasPrefix(r.Name, configRoutePrefix) && !want[r.Name] {
			if err := t.st.DeleteMORoute(ctx, r.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("gateway: remove stale MO route %s: %w", r.Name, err)
			}
		}
	}
	return nil
}

// stored reads the store's MO routes in evaluation order.
func (t *moRouteTable) stored(ctx context.Context) ([]*store.MORoute, error) {
	all, err := t.st.ListMORoutes(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(all, MORouteOrder)
	return all, nil
}

// load makes the store's MO routes the ones in use.
func (t *moRouteTable) load(ctx context.Context) error {
	all, err := t.stored(ctx)
	if err != nil {
		return fmt.Errorf("gateway: load MO routes: %w", err)
	}
	rs := make([]store.MORoute, 0, len(all))
	for _, r := range all {
		rs = append(rs, *r)
	}
	if reflect.DeepEqual(*t.routes.Load(), rs) {
		return nil
	}
	t.routes.Store(&rs)
	t.log.Info().Int("mo_routes", len(rs)).Msg("MO routes loaded from the store")
	return nil
}

// account returns the account an MO to dest goes to.
func (t *moRouteTable) account(dest string) (string, bool) {
	for _, r := range *t.routes.Load() {
		if strings.HasPrefix(dest, r.Prefix) {
			return r.Account, true
		}
	}
	return "", false
}

// MORoutes returns the store's MO routes in evaluation order: the first that matches an MO's
// destination takes it.
func (g *Gateway) MORoutes(ctx context.Context) ([]*store.MORoute, error) {
	return g.moRoutes.stored(ctx)
}

// ReloadMORoutes makes MO route edits in the store take effect.
func (g *Gateway) ReloadMORoutes(ctx context.Context) error { return g.moRoutes.load(ctx) }

// AddMORoute stores a new MO route and puts it in use.
func (g *Gateway) AddMORoute(ctx context.Context, r *store.MORoute) error {
	if r.Account == "" {
		return fmt.Errorf("%w: MO route needs an account", store.ErrInvalid)
	}
	if strings.ContainsRune(r.Prefix, 0) {
		return fmt.Errorf("%w: MO route prefix contains NUL", store.ErrInvalid)
	}
	if err := g.st.CreateMORoute(ctx, r); err != nil {
		return err
	}
	return g.moRoutes.load(ctx)
}

// DeleteMORoute removes an MO route and takes it out of use.
func (g *Gateway) DeleteMORoute(ctx context.Context, name string) error {
	if err := g.st.DeleteMORoute(ctx, name); err != nil {
		return err
	}
	return g.moRoutes.load(ctx)
}

// refresher reloads the route table, the MO route table and the number rules from the store every
// RouterConfig.ReloadInterval, so that an edit made through another instance's admin API (they
// share Redis) takes effect here too; this instance's own edits take effect at once.
type refresher struct {
	every time.Duration
	load  []func(context.Context) error
	log   zerolog.Logger

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// start runs the loop until stop; a negative interval runs nothing.
func (r *refresher) start(ctx context.Context) {
	if r.every < 0 {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done.Go(func() {
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, load := range r.load {
				lctx, cancel := context.WithTimeout(ctx, storeTimeout)
				err := load(lctx)
				cancel()
				if err != nil && ctx.Err() == nil {
					r.log.Warn().Err(err).Msg("routing tables not reloaded; the loaded ones stay in use")
				}
			}
		}
	})
}

// stop ends the loop and waits for it.
func (r *refresher) stop() {
	if r.cancel != nil {
		r.cancel()
	}
	r.done.Wait()
}
