package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
)

// clusterGateway is the fake gateway with a cluster of two instances, the other one stale.
type clusterGateway struct {
	*fakeGateway
	instances []gateway.InstanceState
}

func (c *clusterGateway) Instances(context.Context) ([]gateway.InstanceState, error) {
	return c.instances, nil
}

type clusterBody struct {
	Instance  string                  `json:"instance"`
	Instances []gateway.InstanceState `json:"instances"`
}

// TestClusterView: GET /v1/admin/cluster takes the admin endpoints' credentials only; without a
// cluster it is this instance alone, from the gateway's sessions and stats; with one, every instance
// as the gateway reads them, named, stale ones marked.
func TestClusterView(t *testing.T) {
	e, gw := newFakeEnv(t)
	gw.sessions = []session.Info{{ID: 7, Role: session.RoleSMSC, SystemID: "acme", BindType: session.BindTransceiver, State: session.StateBound, SubmitSMIn: 3}}
	if resp, _ := e.rest("GET", "/v1/admin/cluster", "", nil, nil); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: HTTP %d %q, want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	e.createAccount("acme", "secret")
	if resp, _ := e.rest("GET", "/v1/admin/cluster", e.createKey("acme", "SCOPE_SEND"), nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a send key: HTTP %d, want 403", resp.StatusCode)
	}
	var got clusterBody
	e.mustREST(200, "GET", "/v1/admin/cluster", basicAuth(), nil, &got)
	if got.Instance != "test-1" || len(got.Instances) != 1 {
		t.Fatalf("cluster view %+v, want test-1 alone", got)
	}
	if in := got.Instances[0]; !in.Self || in.Stale || in.Instance != "test-1" || len(in.Sessions) != 1 || in.Sessions[0].SystemID != "acme" || in.Sessions[0].SubmitSM != 3 {
		t.Errorf("this instance %+v", in)
	}

	cg := &clusterGateway{fakeGateway: newFakeGateway(e.st), instances: []gateway.InstanceState{
		{Instance: "a", Self: true, Updated: time.Now(), Stats: gateway.InstanceStats{Accepted: 5}},
		{Instance: "b", Stale: true, Updated: time.Now().Add(-time.Minute), Stats: gateway.InstanceStats{Accepted: 7},
			Upstreams: []gateway.InstanceUpstream{{Name: "up", State: "bound", Bound: true}}},
	}}
	e2 := startEnv(t, cg, e.st, nil)
	got = clusterBody{}
	e2.mustREST(200, "GET", "/v1/admin/cluster", basicAuth(), nil, &got)
	if len(got.Instances) != 2 {
		t.Fatalf("cluster view %+v, want a and b", got)
	}
	a, b := got.Instances[0], got.Instances[1]
	if a.Instance != "a" || !a.Self || a.Stale || a.Stats.Accepted != 5 || b.Instance != "b" || b.Self || !b.Stale || b.Stats.Accepted != 7 || len(b.Upstreams) != 1 || !b.Upstreams[0].Bound {
		t.Errorf("cluster view %+v", got.Instances)
	}
}
