package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

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
}

func newRouteTable(configured []Route, st store.Store, ups upstreamStates, log zerolog.Logger) *routeTable {
	t := &routeTable{st: st, configured: configured, ups: ups, log: log.With().Str("component", "routes").Logger()}
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
			sr := &store.Route{Name: name, Account: a, Prefix: cr.Prefix, Upstreams: []string{cr.Upstream}, Priority: n - i}
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
	t.routes.Store(&rs)
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
// It walks the table as Routes does without building the list: it runs for every submission.
func (t *routeTable) pickUpstream(account, dest string) (string, bool) {
	first := ""
	rs := *t.routes.Load()
	for i := range rs {
		if !matches(&rs[i], account, dest) {
			continue
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
