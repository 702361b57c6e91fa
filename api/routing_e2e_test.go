package api_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// moRecorder is an ESME receiver that counts the MO it is sent and takes them.
type moRecorder struct {
	session.BaseHandler
	mu  sync.Mutex
	got []string // destination_addr of each deliver_sm
}

func (r *moRecorder) HandleRequest(s *session.Session, req session.Request) {
	if d, ok := req.Body.(*pdu.DeliverSM); ok {
		r.mu.Lock()
		r.got = append(r.got, d.DestinationAddr)
		r.mu.Unlock()
	}
	_ = s.Respond(req, pdu.ESME_ROK, nil)
}

func (r *moRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestAdminRoutingOnRealGateway drives the routing parts of the admin API against the real gateway
// (embedded store) and simulated upstreams over loopback:
//   - an MO route created over REST takes the next MO to its account, and deleted over gRPC, the
//     next MO is refused ESME_RINVDSTADR; no restart in between;
//   - an upstream added over REST with binds 2 and max_submits_per_second 40 is bound twice at its
//     simulator and holds 40+1 per second over a backlog of 120 messages;
//   - a route with weights is stored and listed with them, and wrong weights are refused 400;
//   - number rules are set, listed and deleted, and wrong ones are refused 400.
func TestAdminRoutingOnRealGateway(t *testing.T) {
	st, err := embedded.Open(t.TempDir()+"/smppgw.db", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sim := startSim(t)
	g := startGateway(t, st, sim.Addr())
	e := startEnv(t, g, st, nil)
	op := basicAuth()
	e.createAccount("acme", "pw1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eventually(t, "up1 bound", func() bool { return sim.Bound() == 1 })

	// MO routes.
	addrs := g.Server().Addrs()
	conn, err := net.Dial("tcp", addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	rec := &moRecorder{}
	esme := session.New(conn, session.Options{Role: session.RoleESME, Handler: rec, Logger: zerolog.Nop()})
	defer esme.Close()
	if _, err := esme.Bind(ctx, session.BindReceiver, session.BindParams{SystemID: "acme", Password: "pw1"}); err != nil {
		t.Fatal(err)
	}
	mo := func() pdu.CommandStatus {
		st, err := sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "4917000000", DestinationAddr: "77701", ShortMessage: []byte("hi")})
		if err != nil && pdu.StatusOf(err) == pdu.ESME_ROK {
			t.Fatal(err)
		}
		return st
	}
	if st := mo(); st != pdu.ESME_RINVDSTADR {
		t.Fatalf("MO to 77701 before its route: %v, want ESME_RINVDSTADR", st)
	}
	var created struct {
		MoRoute struct {
			MoRouteID string `json:"moRouteId"`
			Prefix    string `json:"prefix"`
			Account   string `json:"account"`
		} `json:"moRoute"`
	}
	e.mustREST(200, "POST", "/v1/admin/mo-routes", op, map[string]any{"prefix": "777", "account": "acme"}, &created)
	if created.MoRoute.Prefix != "777" || created.MoRoute.Account != "acme" || created.MoRoute.MoRouteID == "" {
		t.Fatalf("created MO route %+v", created)
	}
	if st := mo(); st != pdu.ESME_ROK {
		t.Fatalf("MO to 77701 after CreateMoRoute: %v, want ESME_ROK", st)
	}
	eventually(t, "the MO at acme", func() bool { return rec.count() == 1 })
	list, err := e.admin.ListMoRoutes(withAuth(ctx, op), &smppgwv1.ListMoRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.MoRoutes) != 2 || list.MoRoutes[0].Prefix != "12345" || list.MoRoutes[1].Prefix != "777" {
		t.Errorf("ListMoRoutes = %v, want the configured 12345 then 777", list.MoRoutes)
	}
	if _, err := e.admin.DeleteMoRoute(withAuth(ctx, op), &smppgwv1.DeleteMoRouteRequest{MoRouteId: created.MoRoute.MoRouteID}); err != nil {
		t.Fatal(err)
	}
	if st := mo(); st != pdu.ESME_RINVDSTADR {
		t.Errorf("MO to 77701 after DeleteMoRoute: %v, want ESME_RINVDSTADR", st)
	}
	if _, err := e.admin.DeleteMoRoute(withAuth(ctx, op), &smppgwv1.DeleteMoRouteRequest{MoRouteId: "ghost"}); status.Code(err) != codes.NotFound {
		t.Errorf("DeleteMoRoute(ghost) = %v, want NotFound", err)
	}
	e.mustREST(400, "POST", "/v1/admin/mo-routes", op, map[string]any{"prefix": "77a"}, nil)
	time.Sleep(100 * time.Millisecond)
	if n := rec.count(); n != 1 {
		t.Errorf("acme got %d MO, want 1", n)
	}

	// An upstream added with binds and a cap.
	const tps, n = 40, 120
	var (
		mu       sync.Mutex
		arrivals []time.Time
	)
	capped, err := smscsim.Start("127.0.0.1:0", smscsim.Options{Accounts: map[string]string{"gwup": "uppw"},
		OnSubmit: func(*smscsim.Sim, *pdu.SubmitSM) { mu.Lock(); arrivals = append(arrivals, time.Now()); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capped.Close() })
	host, port, _ := net.SplitHostPort(capped.Addr())
	p, _ := strconv.Atoi(port)
	var up struct {
		Upstream struct {
			Binds               int    `json:"binds"`
			MaxSubmitsPerSecond int    `json:"maxSubmitsPerSecond"`
			BoundBinds          int    `json:"boundBinds"`
			State               string `json:"state"`
		} `json:"upstream"`
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams", op, map[string]any{"name": "capped", "host": host, "port": p,
		"systemId": "gwup", "password": "uppw", "binds": 2, "maxSubmitsPerSecond": tps}, &up)
	if up.Upstream.Binds != 2 || up.Upstream.MaxSubmitsPerSecond != tps {
		t.Fatalf("added upstream %+v, want binds 2, maxSubmitsPerSecond %d", up.Upstream, tps)
	}
	eventually(t, "capped bound twice", func() bool {
		e.mustREST(200, "GET", "/v1/admin/upstreams/capped", op, nil, &up)
		return up.Upstream.BoundBinds == 2 && capped.Bound() == 2
	})
	e.mustREST(400, "POST", "/v1/admin/upstreams", op, map[string]any{"name": "toomany", "host": host, "port": p,
		"systemId": "gwup", "binds": 65}, nil)
	var rt struct {
		Route struct {
			RouteID   string   `json:"routeId"`
			Upstreams []string `json:"upstreams"`
			Weights   []int    `json:"weights"`
		} `json:"route"`
	}
	e.mustREST(200, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "4930", "upstreams": []string{"capped"}}, nil)
	e.mustREST(200, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "4932", "upstreams": []string{"capped", "up1"}, "weights": []int{100, 0}}, &rt)
	if len(rt.Route.Weights) != 2 || rt.Route.Weights[0] != 100 || rt.Route.Weights[1] != 0 {
		t.Fatalf("created route %+v, want weights [100 0]", rt.Route)
	}
	e.mustREST(400, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "4931", "upstreams": []string{"capped", "up1"}, "weights": []int{70}}, nil)
	// Submitted faster than the cap (a paused upstream would be passed over for up1, the default
	// route's), so the cap paces what reaches the simulator.
	key := e.createKey("acme", "SCOPE_SEND")
	for i := range n {
		e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "INFO", "destination": fmt.Sprintf("4930%08d", i), "text": "capped"}, nil)
	}
	eventually(t, fmt.Sprintf("%d at capped", n), func() bool { return capped.Count() >= n })
	mu.Lock()
	var perSecond []int
	for _, at := range arrivals {
		b := int(at.Sub(arrivals[0]) / time.Second)
		for len(perSecond) <= b {
			perSecond = append(perSecond, 0)
		}
		perSecond[b]++
	}
	got := len(arrivals)
	mu.Unlock()
	t.Logf("upstream added over REST, binds 2, max %d/s: %d submissions, per second %v", tps, got, perSecond)
	if len(perSecond) < n/tps {
		t.Errorf("%d submissions took %d seconds at the simulator; at %d/s they cannot take under %d", n, len(perSecond), tps, n/tps)
	}
	if got != n {
		t.Errorf("capped saw %d, want %d", got, n)
	}
	for i, c := range perSecond {
		if c > tps+1 {
			t.Errorf("second %d carried %d, over %d+1", i, c, tps)
		}
	}

	// Changed at run time: 3 binds and 20 per second, held over the next 60.
	e.mustREST(200, "PATCH", "/v1/admin/upstreams/capped", op, map[string]any{"binds": 3, "maxSubmitsPerSecond": 20}, &up)
	if up.Upstream.Binds != 3 || up.Upstream.MaxSubmitsPerSecond != 20 {
		t.Fatalf("updated upstream %+v, want binds 3, maxSubmitsPerSecond 20", up.Upstream)
	}
	eventually(t, "capped bound three times", func() bool {
		e.mustREST(200, "GET", "/v1/admin/upstreams/capped", op, nil, &up)
		return up.Upstream.BoundBinds == 3 && capped.Bound() == 3
	})
	e.mustREST(400, "PATCH", "/v1/admin/upstreams/up1", op, map[string]any{"binds": 2}, nil)             // from the configuration file
	e.mustREST(400, "PATCH", "/v1/admin/upstreams/capped", op, map[string]any{"systemId": "other"}, nil) // not changeable
	e.mustREST(400, "PATCH", "/v1/admin/upstreams/capped", op, map[string]any{"binds": 65}, nil)
	mu.Lock()
	arrivals = nil
	mu.Unlock()
	for i := range 60 {
		e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "INFO", "destination": fmt.Sprintf("4930%08d", i), "text": "capped 2"}, nil)
	}
	eventually(t, "60 more at capped", func() bool { return capped.Count() >= n+60 })
	mu.Lock()
	perSecond = nil
	for _, at := range arrivals {
		b := int(at.Sub(arrivals[0]) / time.Second)
		for len(perSecond) <= b {
			perSecond = append(perSecond, 0)
		}
		perSecond[b]++
	}
	mu.Unlock()
	t.Logf("after PATCH to binds 3, max 20/s: per second %v", perSecond)
	for i, c := range perSecond {
		if c > 21 {
			t.Errorf("after the change, second %d carried %d, over 20+1", i, c)
		}
	}

	// The weighted route: capped (weight 100) takes everything while it is up, up1 (weight 0) nothing.
	before1 := sim.Count()
	for i := range 10 {
		e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "INFO", "destination": fmt.Sprintf("4932%08d", i), "text": "w"}, nil)
	}
	eventually(t, "10 more at capped", func() bool { return capped.Count() >= n+70 })
	if sim.Count() != before1 {
		t.Errorf("up1 (weight 0) took %d of the weighted route's messages", sim.Count()-before1)
	}

	// Number rules.
	e.mustREST(200, "PUT", "/v1/admin/number-rules/account/acme", op, map[string]any{
		"destination": map[string]any{"stripPlus": true, "countryCode": "49"}, "source": map[string]any{"ton": "international"}}, nil)
	var rules struct {
		Rules []struct {
			Scope       string `json:"scope"`
			Name        string `json:"name"`
			Destination struct {
				StripPlus   bool   `json:"stripPlus"`
				CountryCode string `json:"countryCode"`
			} `json:"destination"`
		} `json:"rules"`
	}
	e.mustREST(200, "GET", "/v1/admin/number-rules", op, nil, &rules)
	if len(rules.Rules) != 1 || rules.Rules[0].Name != "acme" || !rules.Rules[0].Destination.StripPlus || rules.Rules[0].Destination.CountryCode != "49" {
		t.Errorf("ListNumberRules = %+v", rules)
	}
	e.mustREST(400, "PUT", "/v1/admin/number-rules/account/acme", op, map[string]any{"destination": map[string]any{"ton": "planet"}}, nil)
	e.mustREST(400, "PUT", "/v1/admin/number-rules/galaxy/acme", op, map[string]any{}, nil)
	e.mustREST(200, "DELETE", "/v1/admin/number-rules/account/acme", op, nil, nil)
	e.mustREST(200, "GET", "/v1/admin/number-rules", op, nil, &rules)
	if len(rules.Rules) != 0 {
		t.Errorf("after delete, ListNumberRules = %+v", rules)
	}
}
