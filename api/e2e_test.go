package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/redis"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// End-to-end tests: the real gateway (gateway.New) on the embedded store and on Redis, an upstream
// SMSC simulated by internal/smscsim that answers submit_sm and sends a receipt, and the API over
// loopback. A REST or gRPC Submit travels to the SMSC; its receipt comes back through
// StreamReceipts (REST NDJSON and gRPC), a signed webhook, and GetMessage.

// startSim serves the upstream SMSC (internal/smscsim), taking binds from gwup/uppw. A submission of
// "mo please" makes it send an MO from a handset to short code 12345.
func startSim(t *testing.T) *smscsim.Sim {
	t.Helper()
	sim, err := smscsim.Start("127.0.0.1:0", smscsim.Options{Accounts: map[string]string{"gwup": "uppw"},
		OnSubmit: func(sim *smscsim.Sim, sm *pdu.SubmitSM) {
			if string(sm.ShortMessage) != "mo please" {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_, _ = sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "4917000000", DestinationAddr: "12345", ShortMessage: []byte("MO hello")})
			}()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

// startGateway runs the real gateway on st with one upstream (the simulator) and a default route.
func startGateway(t *testing.T, st store.Store, simAddr string) *gateway.Gateway {
	t.Helper()
	g, err := gateway.New(gateway.Config{
		Server: gateway.ServerConfig{Listeners: []gateway.ListenerConfig{{Address: "127.0.0.1:0"}}, FailureDelay: -1},
		Upstreams: []gateway.ClientConfig{{Name: "up1", Address: simAddr, SystemID: "gwup", Password: "uppw",
			ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}},
		Routing: gateway.RouterConfig{Routes: []gateway.Route{{Prefix: "", Upstream: "up1"}}, MORoutes: []gateway.MORoute{{Prefix: "12345", Account: "acme"}}},
	}, st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("gateway Shutdown: %v", err)
		}
	})
	return g
}

func TestEndToEndEmbedded(t *testing.T) {
	runEndToEnd(t, openEmbedded(t))
}

func TestEndToEndRedis(t *testing.T) {
	st, _ := openRedis(t)
	runEndToEnd(t, st)
}

// TestRedisDown: with the store's Redis killed, readiness fails and calls answer 503 / Unavailable.
func TestRedisDown(t *testing.T) {
	st, kill := openRedis(t)
	gw := newFakeGateway(st)
	e := startEnv(t, gw, st, nil)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_READ")
	e.mustREST(200, "GET", "/readyz", "", nil, nil)
	e.mustREST(404, "GET", "/v1/messages/nope", key, nil, nil)
	kill()
	e.mustREST(503, "GET", "/readyz", "", nil, nil)
	e.mustREST(200, "GET", "/healthz", "", nil, nil)
	raw := e.mustREST(503, "GET", "/v1/messages/nope", key, nil, nil)
	if strings.Contains(string(raw), "127.0.0.1") {
		t.Fatalf("503 body shows internals: %s", raw)
	}
	_, err := e.admin.ListAccounts(withAuth(context.Background(), basicAuth()), &smppgwv1.ListAccountsRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ListAccounts with Redis down: %v", err)
	}
}

// openRedis opens a Redis store on a redis-server of the test's own; kill stops that server.
func openRedis(t *testing.T) (st store.Store, kill func()) {
	t.Helper()
	srv := redistest.Start(t, redistest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := redis.Open(ctx, redis.Config{Addrs: []string{srv.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, srv.Kill
}

func runEndToEnd(t *testing.T, st store.Store) {
	sim := startSim(t)
	g := startGateway(t, st, sim.Addr())
	e := startEnv(t, g, st, nil)
	op := basicAuth()

	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	eventually(t, "up1 bound", func() bool {
		var up struct {
			Upstream struct {
				State string `json:"state"`
			} `json:"upstream"`
		}
		resp, _ := e.rest("GET", "/v1/admin/upstreams/up1", op, nil, &up)
		return resp.StatusCode == 200 && up.Upstream.State == "UPSTREAM_STATE_BOUND"
	})
	e.mustREST(200, "GET", "/readyz", "", nil, nil)

	// A webhook that fails once, then takes the receipt.
	hook := newHookServer(t, 1)
	var created struct {
		SigningSecret string `json:"signingSecret"`
	}
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": hook.URL, "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, &created)

	// Both streams open before anything is submitted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.base+"/v1/messages:streamReceipts", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("REST stream: HTTP %d", resp.StatusCode)
	}
	gs, err := e.msg.StreamReceipts(withAuth(ctx, key), &smppgwv1.StreamReceiptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Header(); err != nil {
		t.Fatal(err)
	}

	// One message over REST, one over gRPC, both asking for a receipt.
	var sub submitAnswer
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{
		"source": "ACME", "destination": "4915112345678", "text": "hello over REST",
		"registeredDelivery": "REGISTERED_DELIVERY_FINAL", "clientReference": "rest-1",
	}, &sub)
	gsub, err := e.msg.Submit(withAuth(context.Background(), key), &smppgwv1.SubmitRequest{
		Source: "ACME", Destination: "4915187654321", Payload: &smppgwv1.SubmitRequest_Text{Text: "hello over gRPC"},
		RegisteredDelivery: smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FINAL,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{sub.MessageID: true, gsub.MessageId: true}

	// REST NDJSON: two lines, one per message, DELIVERED.
	lines := bufio.NewScanner(resp.Body)
	got := map[string]string{}
	for len(got) < 2 && lines.Scan() {
		var line struct {
			Result struct {
				Receipt struct {
					MessageID         string `json:"messageId"`
					Status            string `json:"status"`
					Upstream          string `json:"upstream"`
					UpstreamMessageID string `json:"upstreamMessageId"`
				} `json:"receipt"`
			} `json:"result"`
		}
		if err := json.Unmarshal(lines.Bytes(), &line); err != nil {
			t.Fatalf("line %s: %v", lines.Bytes(), err)
		}
		r := line.Result.Receipt
		if !want[r.MessageID] || r.Status != "MESSAGE_STATUS_DELIVERED" || r.Upstream != "up1" || !strings.HasPrefix(r.UpstreamMessageID, "SIM") {
			t.Fatalf("REST receipt %+v", r)
		}
		got[r.MessageID] = r.Status
	}
	if len(got) != 2 {
		t.Fatalf("REST stream ended after %v: %v", got, lines.Err())
	}
	// gRPC stream: the same two.
	for range 2 {
		r, err := gs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !want[r.Receipt.MessageId] || r.Receipt.Status != smppgwv1.MessageStatus_MESSAGE_STATUS_DELIVERED {
			t.Fatalf("gRPC receipt %v", r.Receipt)
		}
	}
	// Webhook: after one 500, both receipts arrive signed.
	eventually(t, "webhook deliveries", func() bool {
		seen := map[string]bool{}
		hits := hook.got()
		if len(hits) < 2 {
			return false
		}
		for _, h := range hits[1:] { // the first was answered 500
			var d delivery
			if json.Unmarshal(h.body, &d) == nil && d.Receipt != nil {
				seen[d.Receipt.MessageID] = true
			}
		}
		return len(seen) == 2
	})
	for i, h := range hook.got() {
		if err := verifySignature(created.SigningSecret, h.sig, h.body); err != nil {
			t.Fatalf("webhook POST %d: %v", i+1, err)
		}
	}
	if n := len(hook.got()); n < 3 {
		t.Fatalf("%d webhook POSTs, want the failed one retried (>= 3)", n)
	}

	// GetMessage shows the outcome and the receipt; the SMSC saw the text.
	var msg struct {
		Message struct {
			Status   string `json:"status"`
			Text     string `json:"text"`
			Receipts []any  `json:"receipts"`
			Parts    []struct {
				Upstream          string `json:"upstream"`
				UpstreamMessageID string `json:"upstreamMessageId"`
			} `json:"parts"`
		} `json:"message"`
	}
	eventually(t, "message DELIVERED in the store", func() bool {
		e.mustREST(200, "GET", "/v1/messages/"+sub.MessageID, key, nil, &msg)
		return msg.Message.Status == "MESSAGE_STATUS_DELIVERED"
	})
	if msg.Message.Text != "hello over REST" || len(msg.Message.Receipts) != 1 || len(msg.Message.Parts) != 1 ||
		msg.Message.Parts[0].Upstream != "up1" || !strings.HasPrefix(msg.Message.Parts[0].UpstreamMessageID, "SIM") {
		t.Fatalf("GetMessage = %+v", msg.Message)
	}
	if n := len(sim.Submits()); n != 2 {
		t.Fatalf("the SMSC saw %d submit_sm, want 2", n)
	}

	// An MO routed to acme reaches its MO webhook.
	moHook := newHookServer(t, 0)
	var moCreated struct {
		SigningSecret string `json:"signingSecret"`
	}
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": moHook.URL, "events": []string{"WEBHOOK_EVENT_MO"}}, &moCreated)
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "12345", "destination": "4917000000", "text": "mo please"}, nil)
	eventually(t, "the MO webhook", func() bool { return len(moHook.got()) > 0 })
	h := moHook.got()[0]
	if err := verifySignature(moCreated.SigningSecret, h.sig, h.body); err != nil {
		t.Fatal(err)
	}
	var mo delivery
	if err := json.Unmarshal(h.body, &mo); err != nil {
		t.Fatal(err)
	}
	if mo.Event != "WEBHOOK_EVENT_MO" || mo.Mo == nil || mo.Mo.Text != "MO hello" || mo.Mo.Source != "4917000000" {
		t.Fatalf("MO webhook body %s", h.body)
	}

	// Validation comes from the real gateway too, naming the field.
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"source": "ACME", "destination": "49abc", "text": "x"}, "destination"},
		{map[string]any{"source": "ACME", "destination": "49", "text": strings.Repeat("x", 153*255+1)}, "text"},
		{map[string]any{"source": "ACME", "destination": "49", "text": "x", "validityPeriod": "0s"}, "validity_period"},
		{map[string]any{"source": "ACME", "destination": "49", "text": "€", "dataCoding": "DATA_CODING_IA5"}, "text"},
		{map[string]any{"source": "ACME", "destination": "49", "text": "x", "dataCoding": 77}, "data_coding"},
	} {
		resp, raw := e.rest("POST", "/v1/messages", key, c.body, nil)
		if resp.StatusCode != 400 || !strings.Contains(string(raw), c.field) {
			t.Errorf("want 400 naming %s: HTTP %d %s", c.field, resp.StatusCode, raw)
		}
	}

	runAdminOnRealGateway(t, e, g)
}

// receiptTaker is an ESME that accepts the deliver_sm (receipts queued for its account) it gets.
type receiptTaker struct{ session.BaseHandler }

func (receiptTaker) HandleRequest(s *session.Session, req session.Request) {
	if _, ok := req.Body.(*pdu.DeliverSM); ok {
		_ = s.Respond(req, pdu.ESME_ROK, &pdu.DeliverSMResp{})
		return
	}
	_ = s.Respond(req, pdu.ESME_RINVCMDID, nil)
}

// runAdminOnRealGateway calls the admin endpoints against the running gateway: an ESME's session
// listed and unbound, routes tested, upstreams paused, resumed, added and removed, stats.
func runAdminOnRealGateway(t *testing.T, e *env, g *gateway.Gateway) {
	op := basicAuth()
	addrs := g.Server().Addrs()
	if len(addrs) == 0 {
		t.Fatal("gateway has no listener")
	}
	conn, err := net.Dial("tcp", addrs[0].String())
	if err != nil {
		t.Fatal(err)
	}
	esme := session.New(conn, session.Options{Role: session.RoleESME, Handler: receiptTaker{}, Logger: zerolog.Nop()})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := esme.Bind(ctx, session.BindTransceiver, session.BindParams{SystemID: "acme", Password: "pw1"}); err != nil {
		t.Fatal(err)
	}
	var sessions struct {
		Sessions []struct {
			SessionID string `json:"sessionId"`
			SystemID  string `json:"systemId"`
			BindType  string `json:"bindType"`
		} `json:"sessions"`
	}
	e.mustREST(200, "GET", "/v1/admin/sessions?systemId=acme", op, nil, &sessions)
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].BindType != "BIND_TYPE_TRANSCEIVER" {
		t.Fatalf("sessions: %+v", sessions)
	}
	id := sessions.Sessions[0].SessionID
	e.mustREST(200, "GET", "/v1/admin/sessions/"+id, op, nil, nil)
	e.mustREST(200, "POST", "/v1/admin/sessions/"+id+":unbind", op, map[string]any{}, nil)
	select {
	case <-esme.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the ESME's session did not end after UnbindSession")
	}

	var tr struct {
		Matched          bool   `json:"matched"`
		SelectedUpstream string `json:"selectedUpstream"`
	}
	e.mustREST(200, "GET", "/v1/admin/routes:test?destination=4915112345678&account=acme", op, nil, &tr)
	if !tr.Matched || tr.SelectedUpstream != "up1" {
		t.Fatalf("TestRoute = %+v", tr)
	}
	var up struct {
		Upstream struct {
			State  string `json:"state"`
			Paused bool   `json:"paused"`
		} `json:"upstream"`
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:pause", op, map[string]any{}, &up)
	if !up.Upstream.Paused {
		t.Fatalf("after pause: %+v", up)
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:resume", op, map[string]any{}, &up)
	if up.Upstream.Paused {
		t.Fatalf("after resume: %+v", up)
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:reconnect", op, map[string]any{}, nil)
	e.mustREST(404, "POST", "/v1/admin/upstreams/ghost:pause", op, map[string]any{}, nil)

	// A second upstream, a route to it, then both removed.
	host, port, _ := net.SplitHostPort(g.Upstreams()[0].Config.Address)
	p, _ := strconv.Atoi(port)
	e.mustREST(200, "POST", "/v1/admin/upstreams", op, map[string]any{"name": "up2", "host": host, "port": p, "systemId": "gwup", "password": "uppw"}, nil)
	var rt struct {
		Route struct {
			RouteID string `json:"routeId"`
		} `json:"route"`
	}
	e.mustREST(200, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "44", "upstreams": []string{"up2"}}, &rt)
	eventually(t, "route to up2 in effect", func() bool {
		e.mustREST(200, "GET", "/v1/admin/routes:test?destination=447700900000", op, nil, &tr)
		return tr.Matched && tr.SelectedUpstream == "up2"
	})
	e.mustREST(200, "DELETE", "/v1/admin/routes/"+rt.Route.RouteID, op, nil, nil)
	e.mustREST(200, "DELETE", "/v1/admin/upstreams/up2", op, nil, nil)
	e.mustREST(404, "GET", "/v1/admin/upstreams/up2", op, nil, nil)

	// Outbind: an ESME waiting for outbinds binds back as acme; the answer is its session.
	esme2, err := gateway.NewClient(gateway.ClientConfig{OutbindListen: "127.0.0.1:0", OutbindPassword: "ob", SystemID: "acme", Password: "pw1"},
		ackDeliveries{}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := esme2.Start(); err != nil {
		t.Fatal(err)
	}
	defer esme2.Unbind(context.Background())
	eventually(t, "the ESME waiting for an outbind", func() bool { return esme2.Status().State == gateway.ClientWaiting })
	obHost, obPort, _ := net.SplitHostPort(esme2.Status().OutbindAddr)
	obp, _ := strconv.Atoi(obPort)
	var ob struct {
		Session struct {
			SystemID      string `json:"systemId"`
			RemoteAddress string `json:"remoteAddress"`
		} `json:"session"`
	}
	e.mustREST(200, "POST", "/v1/admin/outbind", op, map[string]any{"host": obHost, "port": obp, "systemId": "acme", "password": "ob", "bindTimeout": "10s"}, &ob)
	if ob.Session.SystemID != "acme" || ob.Session.RemoteAddress != esme2.Status().OutbindAddr {
		t.Fatalf("Outbind = %+v", ob)
	}
	eventually(t, "the ESME bound after the outbind", esme2.Bound) // its bind_resp may still be on the wire

	var stats struct {
		MessagesByStatus map[string]string `json:"messagesByStatus"`
	}
	e.mustREST(200, "GET", "/v1/admin/stats", op, nil, &stats)
	if len(stats.MessagesByStatus) == 0 {
		t.Fatalf("stats: %+v", stats)
	}
}

// ackDeliveries is the DeliverHandler of a test's ESME: it answers every deliver_sm ESME_ROK.
type ackDeliveries struct{}

func (ackDeliveries) HandleDeliver(_ string, _ session.Request, respond func(pdu.CommandStatus)) {
	respond(pdu.ESME_ROK)
}
