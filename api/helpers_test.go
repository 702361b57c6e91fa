package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/smppgw/smppgw/api"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// fakeGateway is an in-memory api.Gateway for unit tests of the API layer: Submit splits and
// stores like the gateway does (through pdu and the store), admin calls act on in-memory lists,
// and Publish feeds subscribers.
type fakeGateway struct {
	st store.Store

	mu        sync.Mutex
	nextErr   error
	sessions  []session.Info
	unbound   []uint64
	upstreams []gateway.UpstreamInfo
	outbinds  []gateway.OutbindConfig
	reloads   int
	subs      map[*fakeSub]bool
	notReady  error
	discard   bool // Submit builds the message but does not store it (benchmarks of the API alone)
	seq       atomic.Uint64
	// hold, when set, is called by Submit before it stores the message, as the durable write waits.
	hold func()
}

type fakeSub struct {
	account string
	ch      chan gateway.Event
	ending  bool // SubscribeStream's: closed, as the gateway does, when an event finds it full
	ended   bool
}

func newFakeGateway(st store.Store) *fakeGateway {
	return &fakeGateway{st: st, subs: map[*fakeSub]bool{}}
}

var _ api.Gateway = (*fakeGateway)(nil)

func (f *fakeGateway) failNext(err error) { f.mu.Lock(); f.nextErr = err; f.mu.Unlock() }

func (f *fakeGateway) Submit(ctx context.Context, s gateway.Submission) (*store.Message, error) {
	f.mu.Lock()
	err := f.nextErr
	f.nextErr = nil
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.Validate(time.Now()); err != nil {
		return nil, err // the gateway's own validation, as gateway.Gateway.Submit runs it
	}
	tmpl := &pdu.SubmitSM{SourceAddr: s.Source.Addr, DestinationAddr: s.Destination.Addr, RegisteredDelivery: s.RegisteredDelivery}
	var parts []*pdu.SubmitSM
	if s.Binary != nil {
		tmpl.DataCoding = *s.DataCoding
		parts, err = pdu.Split(tmpl, pdu.SplitUDH8, s.Binary, 7)
	} else {
		if s.DataCoding != nil {
			tmpl.DataCoding = *s.DataCoding
		} else {
			tmpl.DataCoding = uint8(text.Pick(s.Text))
		}
		parts, err = pdu.SplitText(tmpl, pdu.SplitUDH8, s.Text, 7)
	}
	if err != nil {
		return nil, &gateway.ValidationError{Field: "text", Reason: err.Error()}
	}
	m := &store.Message{
		ID: "m" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "") + strconv.FormatUint(f.seq.Add(1), 10), Account: s.Account,
		Source: s.Source, Destination: s.Destination, DataCoding: tmpl.DataCoding, RegisteredDelivery: s.RegisteredDelivery,
		PriorityFlag: s.Priority, ClientRef: s.ClientRef, Validity: s.Validity, Upstream: "fake-up",
	}
	for _, p := range parts {
		m.Parts = append(m.Parts, store.Part{ESMClass: p.EsmClass, ShortMessage: p.ShortMessage, TLVs: p.Options})
	}
	if f.discard {
		return m, nil
	}
	if f.hold != nil {
		f.hold()
	}
	if err := f.st.AcceptMessage(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

func (f *fakeGateway) Sessions() []session.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions)
}

func (f *fakeGateway) Session(id uint64) (session.Info, bool) {
	for _, s := range f.Sessions() {
		if s.ID == id {
			return s, true
		}
	}
	return session.Info{}, false
}

func (f *fakeGateway) UnbindSession(_ context.Context, id uint64, _ bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.sessions {
		if s.ID == id {
			f.sessions = slices.Delete(f.sessions, i, i+1)
			f.unbound = append(f.unbound, id)
			return nil
		}
	}
	return gateway.ErrUnknownSession
}

func (f *fakeGateway) Upstreams() []gateway.UpstreamInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.upstreams)
}

func (f *fakeGateway) AddUpstream(_ context.Context, cfg gateway.ClientConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	cfg.Password = ""
	f.upstreams = append(f.upstreams, gateway.UpstreamInfo{Config: cfg, Status: gateway.ClientStatus{Name: cfg.Name, State: gateway.ClientBound, Since: time.Now()}})
	return nil
}

func (f *fakeGateway) find(name string) int {
	for i, u := range f.upstreams {
		if u.Config.Name == name {
			return i
		}
	}
	return -1
}

func (f *fakeGateway) RemoveUpstream(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(name)
	if i < 0 {
		return gateway.ErrUnknownUpstream
	}
	f.upstreams = slices.Delete(f.upstreams, i, i+1)
	return nil
}

func (f *fakeGateway) ReconnectUpstream(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(name)
	if i < 0 {
		return gateway.ErrUnknownUpstream
	}
	f.upstreams[i].Status.State = gateway.ClientConnecting
	return nil
}

func (f *fakeGateway) SetUpstreamPaused(name string, paused bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.find(name)
	if i < 0 {
		return gateway.ErrUnknownUpstream
	}
	f.upstreams[i].Paused = paused
	return nil
}

func (f *fakeGateway) TestRoute(ctx context.Context, account, destination string) ([]string, error) {
	routes, err := f.st.ListRoutes(ctx)
	if err != nil {
		return nil, err
	}
	var best *store.Route
	for _, r := range routes {
		if strings.HasPrefix(strings.TrimPrefix(destination, "+"), r.Prefix) && (r.Account == "" || r.Account == account) &&
			(best == nil || len(r.Prefix) > len(best.Prefix)) {
			best = r
		}
	}
	if best == nil {
		return nil, gateway.ErrNoRoute
	}
	return best.Upstreams, nil
}

func (f *fakeGateway) Routes(ctx context.Context) ([]*store.Route, error) {
	all, err := f.st.ListRoutes(ctx)
	slices.SortStableFunc(all, gateway.RouteOrder)
	return all, err
}

func (f *fakeGateway) ReloadRoutes(context.Context) error {
	f.mu.Lock()
	f.reloads++
	f.mu.Unlock()
	return nil
}

func (f *fakeGateway) UpdateUpstream(_ context.Context, name string, ch gateway.UpstreamChange) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.upstreams {
		if f.upstreams[i].Config.Name == name {
			if ch.Binds != nil {
				f.upstreams[i].Config.Binds = *ch.Binds
			}
			if ch.MaxTPS != nil {
				f.upstreams[i].Config.MaxTPS = *ch.MaxTPS
			}
			return nil
		}
	}
	return gateway.ErrUnknownUpstream
}

func (f *fakeGateway) MORoutes(ctx context.Context) ([]*store.MORoute, error) {
	all, err := f.st.ListMORoutes(ctx)
	slices.SortStableFunc(all, gateway.MORouteOrder)
	return all, err
}

func (f *fakeGateway) AddMORoute(ctx context.Context, r *store.MORoute) error {
	return f.st.CreateMORoute(ctx, r)
}

func (f *fakeGateway) DeleteMORoute(ctx context.Context, name string) error {
	return f.st.DeleteMORoute(ctx, name)
}

func (f *fakeGateway) NumberRulesList(ctx context.Context) ([]gateway.NumberRulesInfo, error) {
	all, err := f.st.ListNumberRules(ctx)
	var out []gateway.NumberRulesInfo
	for _, n := range all {
		out = append(out, gateway.NumberRulesInfo{Scope: n.Scope, Name: n.Name, Rules: gateway.NumberRules{
			Destination: gateway.AddressRule(n.Destination), Source: gateway.AddressRule(n.Source)}})
	}
	return out, err
}

func (f *fakeGateway) SetNumberRules(ctx context.Context, scope, name string, r gateway.NumberRules) error {
	return f.st.PutNumberRules(ctx, &store.NumberRules{Scope: scope, Name: name,
		Destination: store.AddressRule(r.Destination), Source: store.AddressRule(r.Source)})
}

func (f *fakeGateway) DeleteNumberRules(ctx context.Context, scope, name string) error {
	return f.st.DeleteNumberRules(ctx, scope+":"+name)
}

// Outbind records the request and registers and returns the session the ESME would bind.
func (f *fakeGateway) Outbind(_ context.Context, cfg gateway.OutbindConfig) (session.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outbinds = append(f.outbinds, cfg)
	si := session.Info{ID: 900, Role: session.RoleSMSC, RemoteAddr: cfg.Address, SystemID: cfg.SystemID,
		BindType: session.BindReceiver, State: session.StateBound, Started: time.Now(), WindowSize: 10}
	f.sessions = append(f.sessions, si)
	return si, nil
}

func (f *fakeGateway) Stats(context.Context) (gateway.Stats, error) {
	return gateway.Stats{
		MessagesByStatus: map[pdu.MessageState]int64{pdu.ENROUTE: 3, pdu.DELIVERED: 2},
		Accepted:         5, AcceptRate: 0.5, WindowUsed: 1, WindowSize: 20,
		UpstreamQueues: []gateway.QueueInfo{{Name: "up1", Len: 4}},
		DeliveryQueues: []gateway.QueueInfo{{Name: "acme", Len: 2}},
	}, nil
}

func (f *fakeGateway) Subscribe(account string) (<-chan gateway.Event, func()) {
	return f.subscribe(account, false)
}

func (f *fakeGateway) SubscribeStream(account string) (<-chan gateway.Event, func()) {
	return f.subscribe(account, true)
}

func (f *fakeGateway) subscribe(account string, ending bool) (<-chan gateway.Event, func()) {
	s := &fakeSub{account: account, ch: make(chan gateway.Event, 64), ending: ending}
	f.mu.Lock()
	f.subs[s] = true
	f.mu.Unlock()
	return s.ch, func() {
		f.mu.Lock()
		delete(f.subs, s)
		f.mu.Unlock()
	}
}

func (f *fakeGateway) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// Publish hands ev to every subscriber of its account (or of all), as the gateway does: a receipt
// carries its message's client reference (read from the store here), and a subscriber that is full
// misses it; a SubscribeStream one is then ended (its channel closed).
func (f *fakeGateway) Publish(ev gateway.Event) {
	if ev.Kind == gateway.EventReceipt && ev.ClientRef == "" && ev.MessageID != "" {
		if m, err := f.st.GetMessage(context.Background(), ev.MessageID); err == nil {
			ev.ClientRef = m.ClientRef
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		if (s.account == "" || s.account == ev.Account) && !s.ended {
			select {
			case s.ch <- ev:
			default:
				if s.ending {
					s.ended = true
					close(s.ch)
				}
			}
		}
	}
}

func (f *fakeGateway) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.notReady
}

// env is a running api.Server on loopback with clients for both transports.
type env struct {
	t      testing.TB
	st     store.Store
	srv    *api.Server
	base   string // http://127.0.0.1:port
	conn   *grpc.ClientConn
	msg    smppgwv1.MessageServiceClient
	admin  smppgwv1.AdminServiceClient
	client *http.Client
}

const (
	operator     = "ops"
	operatorPass = "ops-secret"
)

func openEmbedded(t testing.TB) store.Store {
	t.Helper()
	st, err := embedded.Open(filepath.Join(t.TempDir(), "smppgw.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func startEnv(t testing.TB, gw api.Gateway, st store.Store, mod func(*api.Config)) *env {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(operatorPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg := api.Config{
		AdminUsers:    []api.AdminUser{{Name: operator, PasswordHash: string(hash)}},
		Instance:      "test-1",
		ReadyInterval: 100 * time.Millisecond,
		Webhooks:      api.WebhookConfig{RetryMin: 20 * time.Millisecond, RetryMax: 100 * time.Millisecond, RefreshInterval: 50 * time.Millisecond, Timeout: 5 * time.Second},
	}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := api.NewServer(cfg, gw, st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(gl, hl) }()
	e := &env{t: t, st: st, srv: srv, base: "http://" + hl.Addr().String(), client: &http.Client{Timeout: 30 * time.Second}}
	if cfg.TLS == nil {
		e.conn, err = grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		e.msg = smppgwv1.NewMessageServiceClient(e.conn)
		e.admin = smppgwv1.NewAdminServiceClient(e.conn)
	}
	t.Cleanup(func() {
		if e.conn != nil {
			e.conn.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return e
}

func basicAuth() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(operator+":"+operatorPass))
}

// rest sends a JSON request and decodes the JSON answer into out (when not nil); it returns the
// response with its body read.
func (e *env) rest(method, path, auth string, body any, out any) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			raw, err := json.Marshal(b)
			if err != nil {
				e.t.Fatal(err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, e.base+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp, raw
}

// mustREST is rest that fails the test unless the status is want.
func (e *env) mustREST(want int, method, path, auth string, body any, out any) []byte {
	e.t.Helper()
	resp, raw := e.rest(method, path, auth, body, out)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	return raw
}

// createAccount creates an account through the admin REST API (as the operator).
func (e *env) createAccount(id, password string) {
	e.t.Helper()
	e.mustREST(200, "POST", "/v1/admin/accounts", basicAuth(), map[string]any{"systemId": id, "password": password}, nil)
}

// createKey creates an API key through the admin REST API and returns its bearer header.
func (e *env) createKey(account string, scopes ...string) string {
	e.t.Helper()
	var out struct {
		Secret string `json:"secret"`
		APIKey struct {
			KeyID string `json:"keyId"`
		} `json:"apiKey"`
	}
	e.mustREST(200, "POST", "/v1/admin/api-keys", basicAuth(), map[string]any{"account": account, "scopes": scopes, "name": "test"}, &out)
	if out.Secret == "" || out.APIKey.KeyID == "" {
		e.t.Fatalf("no secret or id in CreateApiKey answer: %+v", out)
	}
	return "Bearer " + out.Secret
}

// withAuth returns ctx carrying an authorization header for gRPC.
func withAuth(ctx context.Context, auth string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", auth)
}

// eventually polls cond every 10ms until it holds or 10s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

var errBoom = errors.New("boom")

// endStreams ends every SubscribeStream subscription as the gateway does when one falls behind (its
// channel closed before its cancel), and returns how many it ended.
func (f *fakeGateway) endStreams() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for s := range f.subs {
		if s.ending && !s.ended {
			s.ended = true
			close(s.ch)
			n++
		}
	}
	return n
}
