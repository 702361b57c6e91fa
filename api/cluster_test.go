package api_test

import (
	"context"
	"net/http"
	"strings"
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

// TestListSessionsCoversInstances: ListSessions lists this instance's sessions, then those the other
// fresh instances published, named by instance with ids "id@instance" (a stale instance's are left
// out); GetSession of one of those names the instance to ask.
func TestListSessionsCoversInstances(t *testing.T) {
	st := openEmbedded(t)
	cg := &clusterGateway{fakeGateway: newFakeGateway(st), instances: []gateway.InstanceState{
		{Instance: "a", Self: true},
		{Instance: "b", Sessions: []gateway.InstanceSession{
			{ID: 9, SystemID: "acme", BindType: session.BindReceiver.String(), SubmitSM: 4, DeliverSM: 5},
			{ID: 10, SystemID: "beta", BindType: session.BindTransmitter.String()},
		}},
		{Instance: "c", Stale: true, Sessions: []gateway.InstanceSession{{ID: 1, SystemID: "acme"}}},
	}}
	cg.sessions = []session.Info{{ID: 9, Role: session.RoleSMSC, SystemID: "acme", BindType: session.BindTransceiver, State: session.StateBound}}
	e := startEnv(t, cg, st, nil)
	var got struct {
		Sessions []struct {
			SessionID string `json:"sessionId"`
			SystemID  string `json:"systemId"`
			BindType  string `json:"bindType"`
			Instance  string `json:"instance"`
			Counters  struct {
				SubmitSM  string `json:"submitSm"`
				DeliverSM string `json:"deliverSm"`
			} `json:"counters"`
		} `json:"sessions"`
	}
	e.mustREST(200, "GET", "/v1/admin/sessions?systemId=acme", basicAuth(), nil, &got)
	if s := got.Sessions; len(s) != 2 || s[0].SessionID != "9" || s[0].Instance != "test-1" ||
		s[1].SessionID != "9@b" || s[1].Instance != "b" || s[1].BindType != "BIND_TYPE_RECEIVER" || s[1].Counters.SubmitSM != "4" || s[1].Counters.DeliverSM != "5" {
		t.Errorf("sessions of acme: %+v", s)
	}
	got.Sessions = nil
	e.mustREST(200, "GET", "/v1/admin/sessions", basicAuth(), nil, &got)
	if len(got.Sessions) != 3 {
		t.Errorf("all sessions: %+v, want 9, 9@b and 10@b", got.Sessions)
	}
	raw := e.mustREST(400, "GET", "/v1/admin/sessions/9@b", basicAuth(), nil, nil)
	if !strings.Contains(string(raw), "a session of instance b") {
		t.Errorf("GetSession 9@b: %s", raw)
	}
}
