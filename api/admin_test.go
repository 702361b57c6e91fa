package api_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/api"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway/session"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// TestAdminEndpointsREST calls every AdminService endpoint over REST, as the operator with Basic
// credentials (and a few with an admin API key), against the fake gateway and the embedded store.
func TestAdminEndpointsREST(t *testing.T) {
	e, gw := newFakeEnv(t)
	gw.sessions = []session.Info{
		{ID: 7, Role: session.RoleSMSC, SystemID: "acme", BindType: session.BindTransceiver, State: session.StateBound, RemoteAddr: "127.0.0.1:5000", Started: time.Now(), WindowSize: 10, WindowUsed: 2, Timeouts: 1},
		{ID: 8, Role: session.RoleSMSC, SystemID: "beta", BindType: session.BindReceiver, State: session.StateBound, Started: time.Now()},
	}
	op := basicAuth()

	// Sessions: list (filtered, paged), get, unbind, unknown ids.
	var sessions struct {
		Sessions []struct {
			SessionID   string `json:"sessionId"`
			SystemID    string `json:"systemId"`
			BindType    string `json:"bindType"`
			Instance    string `json:"instance"`
			WindowInUse int    `json:"windowInUse"`
			Counters    struct {
				ResponseTimeouts string `json:"responseTimeouts"`
			} `json:"counters"`
		} `json:"sessions"`
		NextPageToken string `json:"nextPageToken"`
	}
	e.mustREST(200, "GET", "/v1/admin/sessions?pageSize=1", op, nil, &sessions)
	if len(sessions.Sessions) != 1 || sessions.NextPageToken == "" {
		t.Fatalf("first page of sessions: %+v", sessions)
	}
	e.mustREST(200, "GET", "/v1/admin/sessions?systemId=acme", op, nil, &sessions)
	if s := sessions.Sessions; len(s) != 1 || s[0].SessionID != "7" || s[0].BindType != "BIND_TYPE_TRANSCEIVER" || s[0].Instance != "test-1" || s[0].WindowInUse != 2 || s[0].Counters.ResponseTimeouts != "1" {
		t.Fatalf("sessions of acme: %+v", sessions)
	}
	e.mustREST(200, "GET", "/v1/admin/sessions/8", op, nil, nil)
	e.mustREST(404, "GET", "/v1/admin/sessions/99", op, nil, nil)
	e.mustREST(400, "GET", "/v1/admin/sessions/abc", op, nil, nil)
	e.mustREST(200, "POST", "/v1/admin/sessions/8:unbind", op, map[string]any{"force": true}, nil)
	e.mustREST(404, "POST", "/v1/admin/sessions/8:unbind", op, map[string]any{}, nil)
	if !slices.Equal(gw.unbound, []uint64{8}) {
		t.Fatalf("unbound sessions %v", gw.unbound)
	}

	// Upstreams: add (password write-only), list, get, pause, resume, reconnect, remove.
	var up struct {
		Upstream map[string]any `json:"upstream"`
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams", op, map[string]any{"name": "up1", "host": "127.0.0.1", "port": 2775, "systemId": "gw", "password": "secret", "windowSize": 5, "responseTimeout": "3s"}, &up)
	if up.Upstream["state"] != "UPSTREAM_STATE_BOUND" || (up.Upstream["password"] != nil && up.Upstream["password"] != "") || up.Upstream["windowSize"] != float64(5) {
		t.Fatalf("AddUpstream = %v", up.Upstream)
	}
	if cfg := gw.upstreams[0].Config; cfg.Address != "127.0.0.1:2775" || cfg.Session.ResponseTimeout != 3*time.Second || cfg.BindType != session.BindTransceiver {
		t.Fatalf("gateway got %+v", cfg)
	}
	e.mustREST(409, "POST", "/v1/admin/upstreams", op, map[string]any{"name": "up1", "host": "h", "port": 1, "systemId": "x"}, nil)
	for _, bad := range []map[string]any{
		{"name": "bad name!", "host": "h", "port": 1, "systemId": "x"},
		{"name": "up2", "port": 1, "systemId": "x"},
		{"name": "up2", "host": "h", "port": 70000, "systemId": "x"},
		{"name": "up2", "host": "h", "port": 1},
		{"name": "up2", "host": "h", "port": 1, "systemId": "x", "binds": 65},
		{"name": "up2", "host": "h", "port": 1, "systemId": "x", "maxSubmitsPerSecond": 1000001},
	} {
		e.mustREST(400, "POST", "/v1/admin/upstreams", op, bad, nil)
	}
	var ups struct {
		Upstreams []map[string]any `json:"upstreams"`
	}
	e.mustREST(200, "GET", "/v1/admin/upstreams", op, nil, &ups)
	if len(ups.Upstreams) != 1 || ups.Upstreams[0]["name"] != "up1" {
		t.Fatalf("ListUpstreams = %v", ups)
	}
	e.mustREST(200, "GET", "/v1/admin/upstreams/up1", op, nil, &up)
	e.mustREST(404, "GET", "/v1/admin/upstreams/nope", op, nil, nil)
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:pause", op, map[string]any{}, &up)
	if up.Upstream["state"] != "UPSTREAM_STATE_PAUSED" || up.Upstream["paused"] != true {
		t.Fatalf("after pause: %v", up.Upstream)
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:resume", op, map[string]any{}, &up)
	if up.Upstream["paused"] == true {
		t.Fatalf("after resume: %v", up.Upstream)
	}
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:reconnect", op, map[string]any{}, &up)
	if up.Upstream["state"] != "UPSTREAM_STATE_CONNECTING" {
		t.Fatalf("after reconnect: %v", up.Upstream)
	}
	e.mustREST(404, "POST", "/v1/admin/upstreams/nope:pause", op, map[string]any{}, nil)

	// Accounts: create, get (no password), update with a mask and without, list, delete (its
	// keys go too).
	var acc struct {
		Account map[string]any `json:"account"`
	}
	e.mustREST(200, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "acme", "password": "pw1", "maxBinds": 2, "allowedNetworks": []string{"10.0.0.0/8"}}, &acc)
	if pw, has := acc.Account["password"]; (has && pw != "") || acc.Account["maxBinds"] != float64(2) {
		t.Fatalf("CreateAccount = %v", acc.Account)
	}
	e.mustREST(409, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "acme", "password": "pw1"}, nil)
	e.mustREST(400, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "nopass"}, nil)
	e.mustREST(400, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "longpass", "password": "123456789"}, nil)
	e.mustREST(400, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "net", "password": "p", "allowedNetworks": []string{"not-a-net"}}, nil)
	e.mustREST(200, "PATCH", "/v1/admin/accounts/acme", op, map[string]any{"maxMessagesPerSecond": 50, "password": "pw2"}, &acc)
	stored, err := e.st.GetAccount(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Throughput != 50 || stored.MaxBinds != 2 || !stored.CheckPassword("pw2") {
		t.Fatalf("after PATCH the store has %+v", stored)
	}
	if _, err := e.admin.UpdateAccount(withAuth(context.Background(), op), &smppgwv1.UpdateAccountRequest{
		Account: &smppgwv1.Account{SystemId: "acme"}, UpdateMask: &fieldMask{Paths: []string{"max_binds"}},
	}); err != nil {
		t.Fatal(err)
	}
	if stored, _ = e.st.GetAccount(context.Background(), "acme"); stored.MaxBinds != 0 || stored.Throughput != 50 {
		t.Fatalf("after a masked update the store has %+v", stored)
	}
	e.mustREST(200, "GET", "/v1/admin/accounts/acme", op, nil, &acc)
	e.mustREST(404, "GET", "/v1/admin/accounts/nobody", op, nil, nil)
	var accs struct {
		Accounts []map[string]any `json:"accounts"`
	}
	e.mustREST(200, "GET", "/v1/admin/accounts", op, nil, &accs)
	if len(accs.Accounts) != 1 {
		t.Fatalf("ListAccounts = %v", accs)
	}

	// API keys: create for an account, list by account, revoke; unknown accounts refused.
	key := e.createKey("acme", "SCOPE_SEND")
	e.mustREST(400, "POST", "/v1/admin/api-keys", op, map[string]any{"account": "nobody", "scopes": []string{"SCOPE_SEND"}}, nil)
	e.mustREST(400, "POST", "/v1/admin/api-keys", op, map[string]any{"scopes": []string{"SCOPE_SEND"}}, nil)
	e.mustREST(400, "POST", "/v1/admin/api-keys", op, map[string]any{"account": "acme"}, nil)
	e.mustREST(400, "POST", "/v1/admin/api-keys", op, map[string]any{"account": "acme", "scopes": []string{"SCOPE_SEND"}, "expireTime": "2001-01-01T00:00:00Z"}, nil)
	var keys struct {
		APIKeys []map[string]any `json:"apiKeys"`
	}
	e.mustREST(200, "GET", "/v1/admin/api-keys?account=acme", op, nil, &keys)
	if len(keys.APIKeys) != 1 || keys.APIKeys[0]["account"] != "acme" {
		t.Fatalf("ListApiKeys = %v", keys)
	}
	e.mustREST(404, "DELETE", "/v1/admin/api-keys/nope", op, nil, nil)

	// Routes: create (unknown upstream refused), get, update, test, list, delete.
	var rt struct {
		Route map[string]any `json:"route"`
	}
	e.mustREST(400, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "49", "upstreams": []string{"ghost"}}, nil)
	e.mustREST(400, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "4x", "upstreams": []string{"up1"}}, nil)
	e.mustREST(400, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "49", "upstreams": []string{"up1"}, "accounts": []string{"a", "b"}}, nil) // one account a route
	e.mustREST(200, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "49", "upstreams": []string{"up1"}, "account": "acme"}, &rt)
	id, _ := rt.Route["routeId"].(string)
	if id == "" {
		t.Fatalf("CreateRoute = %v", rt.Route)
	}
	e.mustREST(200, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "", "upstreams": []string{"up1"}, "priority": 1}, nil)
	e.mustREST(200, "GET", "/v1/admin/routes/"+id, op, nil, &rt)
	e.mustREST(200, "PATCH", "/v1/admin/routes/"+id, op, map[string]any{"priority": 5}, &rt)
	if rt.Route["priority"] != float64(5) || rt.Route["prefix"] != "49" {
		t.Fatalf("UpdateRoute = %v", rt.Route)
	}
	var tr struct {
		Matched          bool             `json:"matched"`
		Route            map[string]any   `json:"route"`
		Upstreams        []map[string]any `json:"upstreams"`
		SelectedUpstream string           `json:"selectedUpstream"`
	}
	e.mustREST(200, "GET", "/v1/admin/routes:test?destination=%2B4917000&account=acme", op, nil, &tr)
	if !tr.Matched || tr.Route["routeId"] != id || len(tr.Upstreams) != 1 || tr.SelectedUpstream != "" {
		// up1 is reconnecting (the fake's reconnect leaves it connecting), so none is selected
		t.Fatalf("TestRoute = %+v", tr)
	}
	var routes struct {
		Routes []map[string]any `json:"routes"`
	}
	e.mustREST(200, "GET", "/v1/admin/routes", op, nil, &routes)
	if len(routes.Routes) != 2 || routes.Routes[0]["routeId"] != id {
		t.Fatalf("ListRoutes (longest prefix first) = %v", routes)
	}
	e.mustREST(200, "DELETE", "/v1/admin/routes/"+id, op, nil, nil)
	e.mustREST(404, "GET", "/v1/admin/routes/"+id, op, nil, nil)
	e.mustREST(200, "GET", "/v1/admin/routes:test?destination=4917000&account=acme", op, nil, &tr)
	if !tr.Matched || tr.Route["prefix"] != nil && tr.Route["prefix"] != "" {
		t.Fatalf("TestRoute after delete = %+v", tr)
	}
	if gw.reloads < 5 {
		t.Fatalf("routes and accounts changed but the gateway reloaded %d times", gw.reloads)
	}

	// Outbind: the ESME's bind shows up as a session.
	var ob struct {
		Session map[string]any `json:"session"`
	}
	e.mustREST(200, "POST", "/v1/admin/outbind", op, map[string]any{"host": "127.0.0.1", "port": 6000, "systemId": "acme", "password": "pw", "bindTimeout": "2s"}, &ob)
	if ob.Session["systemId"] != "acme" || gw.outbinds[0].Address != "127.0.0.1:6000" {
		t.Fatalf("Outbind = %v, gateway got %+v", ob, gw.outbinds)
	}
	e.mustREST(400, "POST", "/v1/admin/outbind", op, map[string]any{"port": 6000, "systemId": "acme"}, nil)

	// Stats.
	var stats struct {
		MessagesByStatus map[string]string `json:"messagesByStatus"`
		Throughput       struct {
			AcceptedPerSecond float64 `json:"acceptedPerSecond"`
		} `json:"throughput"`
		Windows        []map[string]any `json:"windows"`
		UpstreamQueues []map[string]any `json:"upstreamQueues"`
		DeliveryQueues []map[string]any `json:"deliveryQueues"`
	}
	e.mustREST(200, "GET", "/v1/admin/stats", op, nil, &stats)
	if stats.MessagesByStatus["MESSAGE_STATUS_ENROUTE"] != "3" || stats.Throughput.AcceptedPerSecond != 0.5 ||
		len(stats.UpstreamQueues) != 1 || stats.UpstreamQueues[0]["name"] != "up1" || len(stats.DeliveryQueues) != 1 || len(stats.Windows) == 0 {
		t.Fatalf("GetStats = %+v", stats)
	}
	e.mustREST(400, "GET", "/v1/admin/stats?throughputInterval=5m", op, nil, nil)

	// Deleting the account revokes its keys; then the upstream goes.
	e.mustREST(200, "DELETE", "/v1/admin/accounts/acme", op, nil, nil)
	resp, _ := e.rest("POST", "/v1/messages", key, map[string]any{"source": "a", "destination": "49", "text": "x"}, nil)
	if resp.StatusCode != 401 {
		t.Fatalf("key of a deleted account: HTTP %d", resp.StatusCode)
	}
	e.mustREST(200, "DELETE", "/v1/admin/upstreams/up1", op, nil, nil)
	e.mustREST(404, "DELETE", "/v1/admin/upstreams/up1", op, nil, nil)
}

type fieldMask = fieldmaskpb.FieldMask

// TestAdminGRPC drives a few admin calls through the generated client with an admin API key.
func TestAdminGRPC(t *testing.T) {
	e, gw := newFakeEnv(t)
	ctx := withAuth(context.Background(), e.createKey("", "SCOPE_ADMIN"))
	if _, err := e.admin.CreateAccount(ctx, &smppgwv1.CreateAccountRequest{Account: &smppgwv1.Account{SystemId: "acme", Password: "pw", Description: strings.Repeat("x", 257)}}); status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), "account.description") {
		t.Fatalf("long description: %v", err)
	}
	if _, err := e.admin.CreateAccount(ctx, &smppgwv1.CreateAccountRequest{Account: &smppgwv1.Account{SystemId: "acme", Password: "pw", Description: "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.admin.AddUpstream(ctx, &smppgwv1.AddUpstreamRequest{Upstream: &smppgwv1.Upstream{Name: "u", Host: "127.0.0.1", Port: 1, SystemId: "s", Paused: true, EnquireLinkInterval: durationpb.New(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if !gw.upstreams[0].Paused || gw.upstreams[0].Config.Session.EnquireLink != time.Second {
		t.Fatalf("added upstream %+v", gw.upstreams[0])
	}
	got, err := e.admin.GetAccount(ctx, &smppgwv1.GetAccountRequest{SystemId: "acme"})
	if err != nil || got.Account.Password != "" || got.Account.Description != "x" {
		t.Fatalf("GetAccount = %v, %v", got, err)
	}
	if _, err := e.admin.GetSession(ctx, &smppgwv1.GetSessionRequest{SessionId: "1"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown session: %v", err)
	}
	if _, err := e.admin.RemoveUpstream(ctx, &smppgwv1.RemoveUpstreamRequest{Name: "ghost"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown upstream: %v", err)
	}
	if _, err := e.admin.DeleteRoute(ctx, &smppgwv1.DeleteRouteRequest{RouteId: "ghost"}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown route: %v", err)
	}
}

func TestHealthReadinessOpenAPIReflection(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.mustREST(200, "GET", "/healthz", "", nil, nil)
	e.mustREST(200, "GET", "/readyz", "", nil, nil)
	raw := e.mustREST(200, "GET", "/openapi.json", "", nil, nil)
	if !strings.Contains(string(raw), `"/v1/messages"`) {
		t.Fatalf("openapi.json lacks /v1/messages")
	}
	hc := healthpb.NewHealthClient(e.conn)
	eventually(t, "health SERVING", func() bool {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err == nil && r.Status == healthpb.HealthCheckResponse_SERVING
	})
	gw.mu.Lock()
	gw.notReady = errors.New("listeners down")
	gw.mu.Unlock()
	e.mustREST(503, "GET", "/readyz", "", nil, nil)
	e.mustREST(200, "GET", "/healthz", "", nil, nil)
	eventually(t, "health NOT_SERVING", func() bool {
		r, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "smppgw.v1.MessageService"})
		return err == nil && r.Status == healthpb.HealthCheckResponse_NOT_SERVING
	})

	// grpcurl list: the reflection client names every service.
	rc := rpb.NewServerReflectionClient(e.conn)
	stream, err := rc.ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	for _, want := range []string{"smppgw.v1.MessageService", "smppgw.v1.AdminService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	// grpcurl describe: the file of a service resolves.
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "smppgw.v1.MessageService"}}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetFileDescriptorResponse().GetFileDescriptorProto()) == 0 {
		t.Fatalf("no descriptor for MessageService: %v", resp)
	}
	_ = stream.CloseSend()
}

// TestTLSBothPorts serves both ports with a self-signed certificate and calls each.
func TestTLSBothPorts(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	st := openEmbedded(t)
	gw := newFakeGateway(st)
	srv, err := api.NewServer(api.Config{TLS: &api.TLSConfig{CertFile: certFile, KeyFile: keyFile}}, gw, st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	served := make(chan error, 1)
	go func() { served <- srv.Serve(gl, hl) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	tc := &tls.Config{RootCAs: pool, ServerName: "localhost"}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	resp, err := hc.Get("https://" + hl.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthz over TLS: %d %v", resp.StatusCode, resp.TLS)
	}
	// A plain request to the TLS port gets an error or crypto/tls's 400, never a 200.
	if r, err := http.Get("http://" + hl.Addr().String() + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("plain HTTP answered 200 on the TLS port")
		}
	}
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = smppgwv1.NewMessageServiceClient(conn).ListMessages(context.Background(), &smppgwv1.ListMessagesRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC over TLS without a key: %v, want Unauthenticated", err)
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), pool
}

// TestStartOnConfiguredAddresses starts the server on its configured addresses (port 0 here) and
// reaches both through Addrs.
func TestStartOnConfiguredAddresses(t *testing.T) {
	st := openEmbedded(t)
	srv, err := api.NewServer(api.Config{GRPCListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"}, newFakeGateway(st), st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Error(err)
		}
	}()
	if err := srv.Start(context.Background()); err == nil {
		t.Fatal("second Start succeeded")
	}
	ga, ha := srv.Addrs()
	resp, err := http.Get("http://" + ha.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	conn, err := grpc.NewClient(ga.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("gRPC health: %v %v", r, err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg   api.Config
		field string
	}{
		{api.Config{GRPCListen: "nohostport"}, "grpc_listen"},
		{api.Config{HTTPListen: "x"}, "http_listen"},
		{api.Config{TLS: &api.TLSConfig{CertFile: "a"}}, "tls.cert_file"},
		{api.Config{AdminUsers: []api.AdminUser{{Name: "x", PasswordHash: "plain"}}}, "admin_users[0].password_hash"},
		{api.Config{AdminUsers: []api.AdminUser{{PasswordHash: "plain"}}}, "admin_users[0].name"},
		{api.Config{Webhooks: api.WebhookConfig{MaxRetryDuration: 100 * time.Hour}}, "webhooks.max_retry_duration"},
		{api.Config{Webhooks: api.WebhookConfig{RetryMin: time.Minute, RetryMax: time.Second}}, "webhooks.retry_min"},
	} {
		err := c.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", c.cfg, err, c.field)
		}
	}
	if err := (api.Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

// TestKeyRefusedAtOnceAfterAdminChange: a key in use (so remembered by the authenticator) is refused
// at its next call once this instance revokes it, disables its account or deletes the account.
func TestKeyRefusedAtOnceAfterAdminChange(t *testing.T) {
	e, _ := newFakeEnv(t)
	op := basicAuth()
	e.createAccount("acme", "pw1")
	e.createAccount("beta", "pw2")
	body := map[string]any{"source": "ACME", "destination": "4915112345678", "text": "x"}
	keyID := func(bearer string) string { return strings.TrimPrefix(bearer, "Bearer sgw_")[:16] }
	inUse := func(key string) {
		t.Helper()
		for range 3 {
			e.mustREST(200, "POST", "/v1/messages", key, body, nil)
		}
	}

	revoked := e.createKey("acme", "SCOPE_SEND")
	other := e.createKey("acme", "SCOPE_SEND")
	inUse(revoked)
	inUse(other)
	e.mustREST(200, "DELETE", "/v1/admin/api-keys/"+keyID(revoked), op, nil, nil)
	e.mustREST(401, "POST", "/v1/messages", revoked, body, nil)
	e.mustREST(200, "POST", "/v1/messages", other, body, nil) // its neighbour still works

	e.mustREST(200, "PATCH", "/v1/admin/accounts/acme", op, map[string]any{"disabled": true}, nil)
	e.mustREST(401, "POST", "/v1/messages", other, body, nil)

	gone := e.createKey("beta", "SCOPE_SEND")
	inUse(gone)
	e.mustREST(200, "DELETE", "/v1/admin/accounts/beta", op, nil, nil)
	e.mustREST(401, "POST", "/v1/messages", gone, body, nil)
}
