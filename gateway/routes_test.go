package gateway

import (
	"slices"
	"testing"

	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/store"
)

func TestRouteTable(t *testing.T) {
	st := newEmbedded(t)
	ups := knownUpstreams{"a": true, "b": false, "c": true}
	r := newStoreRouter(t, RouterConfig{
		Routes: []Route{
			{Prefix: "", Upstream: "c"},
			{Prefix: "44", Upstream: "a"},
			{Prefix: "44", Upstream: "b", Accounts: []string{"vip"}},
			{Prefix: "4477", Upstream: "b"},
			{Prefix: "33", Upstream: "a", Accounts: []string{"fr"}},
		},
		MORoutes: []MORoute{{Prefix: "1", Account: "short"}, {Prefix: "123", Account: "acme"}},
	}, st, ups)
	for _, tc := range []struct {
		account, dest string
		want          []string
	}{
		{"any", "447700900123", []string{"b", "a", "c"}}, // longest prefix first, then the shorter ones as failover
		{"any", "4420", []string{"a", "c"}},
		{"vip", "4420", []string{"b", "a", "c"}}, // the account's own route beats the open one of equal prefix
		{"any", "33123", []string{"c"}},          // the French route is not this account's
		{"fr", "33123", []string{"a", "c"}},
		{"any", "1", []string{"c"}},
	} {
		if got := r.Routes(tc.account, tc.dest); !slices.Equal(got, tc.want) {
			t.Errorf("Routes(%q, %q) = %v, want %v", tc.account, tc.dest, got, tc.want)
		}
	}
	// b is first for 4477 but not bound: a new message goes to the first bound one.
	if up, ok := r.pickUpstream("any", "447700900123"); !ok || up != "a" {
		t.Errorf("pickUpstream = %q, %v; want the bound a", up, ok)
	}
	for dest, want := range map[string]string{"12345": "acme", "1999": "short", "999": ""} {
		got, ok := r.mo.MOAccount(dest)
		if got != want || ok != (want != "") {
			t.Errorf("MOAccount(%q) = %q, %v; want %q", dest, got, ok, want)
		}
	}

	// The configured routes are in the store, and a second start with fewer routes removes the stale
	// ones but keeps routes the admin made.
	if err := st.PutRoute(sessiontest.Ctx(t), &store.Route{Name: "admin-1", Prefix: "49", Upstreams: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	r2 := newStoreRouter(t, RouterConfig{Routes: []Route{{Prefix: "44", Upstream: "a"}}}, st, ups)
	all, err := st.ListRoutes(sessiontest.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, rt := range all {
		names = append(names, rt.Name)
	}
	if !slices.Equal(names, []string{"admin-1", "config-0"}) {
		t.Errorf("store routes after the second seed = %v", names)
	}
	if got := r2.Routes("any", "33123"); len(got) != 0 {
		t.Errorf("Routes with no matching prefix = %v, want none", got)
	}
	if got := r2.Routes("any", "4930"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("admin route: %v", got)
	}
	// An upstream this gateway does not have is not routed to.
	if err := st.PutRoute(sessiontest.Ctx(t), &store.Route{Name: "ghost", Prefix: "7", Upstreams: []string{"nowhere", "c"}}); err != nil {
		t.Fatal(err)
	}
	if err := r2.load(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := r2.Routes("any", "7"); !slices.Equal(got, []string{"c"}) {
		t.Errorf("route with an unknown upstream: %v, want [c]", got)
	}
}
