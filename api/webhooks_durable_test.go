package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/api"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	"github.com/smppgw/smppgw/store/redis"
)

// Durable webhooks (issue 12): deliveries wait in the store's queues, survive a restart, are shared
// among instances, and a message may name a callback URL of its own. Everything is real: the
// gateway, an upstream simulator over SMPP, the API over loopback, the store, and a target HTTP
// server that counts what it is sent.

// hookTarget is a webhook target on a fixed loopback address that can be down (nothing listening)
// and come back on the same address. It answers the statuses in fail first, then 200.
type hookTarget struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	srv   *http.Server
	fail  []int
	posts []targetPost
}

type targetPost struct {
	path, sig string
	body      []byte
	status    int
}

// newHookTarget reserves an address; the target is down until start.
func newHookTarget(t *testing.T) *hookTarget {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &hookTarget{t: t, addr: l.Addr().String()}
	l.Close()
	t.Cleanup(h.stop)
	return h
}

func (h *hookTarget) url(path string) string { return "http://" + h.addr + path }

func (h *hookTarget) start() {
	var l net.Listener
	var err error
	for range 50 { // the port was ours a moment ago; another test may hold it briefly
		if l, err = net.Listen("tcp", h.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		h.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		st := http.StatusOK
		if r.URL.Path == "/down" {
			st = http.StatusServiceUnavailable
		} else if len(h.fail) > 0 {
			st, h.fail = h.fail[0], h.fail[1:]
		}
		h.posts = append(h.posts, targetPost{path: r.URL.Path, sig: r.Header.Get(api.SignatureHeader), body: body, status: st})
		h.mu.Unlock()
		w.WriteHeader(st)
	})}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (h *hookTarget) stop() {
	h.mu.Lock()
	srv := h.srv
	h.srv = nil
	h.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// got returns the POSTs to path so far, and how many of them were answered 2xx.
func (h *hookTarget) got(path string) (all []targetPost, ok int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.posts {
		if p.path == path {
			all = append(all, p)
			if p.status/100 == 2 {
				ok++
			}
		}
	}
	return all, ok
}

// posted is what a webhook POST carries, as the tests read it.
type posted struct {
	EventID   string `json:"eventId"`
	WebhookID string `json:"webhookId"`
	Event     string `json:"event"`
	Attempt   int    `json:"attempt"`
	Receipt   *struct {
		MessageID string `json:"messageId"`
		Status    string `json:"status"`
	} `json:"receipt"`
}

func decodePost(t *testing.T, p targetPost) posted {
	t.Helper()
	var d posted
	if err := json.Unmarshal(p.body, &d); err != nil {
		t.Fatalf("POST body %s: %v", p.body, err)
	}
	return d
}

// signedBy reports whether p's Smppgw-Signature is the HMAC of its body under secret.
func signedBy(p targetPost, secret string) bool {
	ts, _, ok := strings.Cut(strings.TrimPrefix(p.sig, "t="), ",")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return false
	}
	return api.Sign(secret, time.Unix(sec, 0), p.body) == p.sig
}

// startGatewayAs is startGateway for the instance named instance (two instances on one Redis
// need distinct consumer names).
func startGatewayAs(t *testing.T, st store.Store, simAddr, instance string) *gateway.Gateway {
	t.Helper()
	g, err := gateway.New(gateway.Config{
		Instance: instance,
		Server:   gateway.ServerConfig{Listeners: []gateway.ListenerConfig{{Address: "127.0.0.1:0"}}, FailureDelay: -1},
		Upstreams: []gateway.ClientConfig{{Name: "up1", Address: simAddr, SystemID: "gwup", Password: "uppw",
			ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond}},
		Routing: gateway.RouterConfig{Routes: []gateway.Route{{Prefix: "", Upstream: "up1"}}},
	}, st, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdownGateway(t, g) })
	return g
}

func shutdownGateway(t *testing.T, g *gateway.Gateway) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Errorf("gateway Shutdown: %v", err)
	}
}

func waitBound(t *testing.T, e *env) {
	eventually(t, "up1 bound", func() bool {
		var up struct {
			Upstream struct {
				State string `json:"state"`
			} `json:"upstream"`
		}
		resp, _ := e.rest("GET", "/v1/admin/upstreams/up1", basicAuth(), nil, &up)
		return resp.StatusCode == 200 && up.Upstream.State == "UPSTREAM_STATE_BOUND"
	})
}

// metric reads smppgw_webhook_deliveries_total{outcome} from e's /metrics.
func metric(t *testing.T, e *env, outcome string) int {
	t.Helper()
	_, body := e.rest("GET", "/metrics", "", nil, nil)
	prefix := `smppgw_webhook_deliveries_total{outcome="` + outcome + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return int(n)
		}
	}
	return 0
}

func queueLen(t *testing.T, st store.Store, name string) int {
	t.Helper()
	n, err := st.QueueLen(context.Background(), store.Queue{Kind: store.DeliverQueue, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type createdHook struct {
	Webhook struct {
		WebhookID string `json:"webhookId"`
	} `json:"webhook"`
	SigningSecret string `json:"signingSecret"`
}

func submitFinal(t *testing.T, e *env, key, dest string, extra map[string]any) string {
	t.Helper()
	req := map[string]any{"source": "ACME", "destination": dest, "text": "hi " + dest, "registeredDelivery": "REGISTERED_DELIVERY_FINAL"}
	for k, v := range extra {
		req[k] = v
	}
	var sub submitAnswer
	e.mustREST(200, "POST", "/v1/messages", key, req, &sub)
	return sub.MessageID
}

// quiet waits long enough for any further POST (several claim and back-off cycles of the test
// configuration) to have been made.
func quiet() { time.Sleep(700 * time.Millisecond) }

// storeKind opens the same store data again after a restart.
type storeKind struct {
	name string
	open func(t *testing.T) func() store.Store
}

var storeKinds = []storeKind{
	{"embedded", func(t *testing.T) func() store.Store {
		path := filepath.Join(t.TempDir(), "smppgw.db")
		return func() store.Store {
			st, err := embedded.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
	{"redis", func(t *testing.T) func() store.Store {
		srv := redistest.Start(t, redistest.Options{})
		return func() store.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := redis.Open(ctx, redis.Config{Addrs: []string{srv.Addr()}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}
	}},
}

// A receipt's webhook delivery made while the target is down survives a restart of the gateway
// (API, gateway and store closed and opened again on the same data) and is delivered once after.
// (Its attempt number may restart at 1: the embedded store keeps attempt counts in memory.)
func TestWebhookSurvivesRestart(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			open := k.open(t)
			sim := startSim(t)
			target := newHookTarget(t) // down
			st1 := open()
			g1 := startGatewayAs(t, st1, sim.Addr(), "gw-1")
			e1 := startEnv(t, g1, st1, nil)
			e1.createAccount("acme", "pw1")
			key := e1.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
			waitBound(t, e1)
			var hook createdHook
			e1.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": target.url("/hook"), "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, &hook)
			id := submitFinal(t, e1, key, "4915112345678", nil)
			q := "webhook-queue:" + hook.Webhook.WebhookID
			eventually(t, "the delivery queued and tried against the down target", func() bool {
				return queueLen(t, st1, q) == 1 && metric(t, e1, "failed") >= 2
			})

			// Restart: everything closed, the store's data kept.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e1.srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			shutdownGateway(t, g1)
			if err := st1.Close(); err != nil {
				t.Fatal(err)
			}
			if _, ok := target.got("/hook"); ok != 0 {
				t.Fatal("delivered while the target was down")
			}

			st2 := open()
			target.start()
			g2 := startGatewayAs(t, st2, sim.Addr(), "gw-1")
			e2 := startEnv(t, g2, st2, nil)
			eventually(t, "the delivery after the restart", func() bool {
				_, ok := target.got("/hook")
				return ok == 1 && queueLen(t, st2, q) == 0
			})
			quiet()
			all, ok := target.got("/hook")
			if len(all) != 1 || ok != 1 {
				t.Fatalf("%d POSTs (%d delivered) after the restart, want exactly 1", len(all), ok)
			}
			d := decodePost(t, all[0])
			if d.Receipt == nil || d.Receipt.MessageID != id || d.Receipt.Status != "MESSAGE_STATUS_DELIVERED" || d.WebhookID != hook.Webhook.WebhookID || d.Attempt < 1 {
				t.Fatalf("delivered %s", all[0].body)
			}
			if !signedBy(all[0], hook.SigningSecret) {
				t.Fatalf("signature %q does not verify", all[0].sig)
			}
			if n := metric(t, e2, "delivered"); n != 1 {
				t.Fatalf("instance after restart counted %d delivered, want 1", n)
			}
			t.Logf("%s: delivered once after the restart, attempt %d", k.name, d.Attempt)
		})
	}
}

// A target answering 500 twice and then 200 sees 3 attempts of one event and counts one delivery.
func TestWebhookRetriesWithBackoff(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			st := k.open(t)()
			sim := startSim(t)
			target := newHookTarget(t)
			target.fail = []int{500, 500}
			target.start()
			g := startGatewayAs(t, st, sim.Addr(), "gw-1")
			e := startEnv(t, g, st, nil)
			e.createAccount("acme", "pw1")
			key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
			waitBound(t, e)
			// No webhook yet and no gateway callback_secret: a callback cannot be signed.
			raw := e.mustREST(400, "POST", "/v1/messages", key, map[string]any{"source": "ACME", "destination": "4915112345678", "text": "x", "callbackUrl": target.url("/cb")}, nil)
			if !strings.Contains(string(raw), "callback_url") {
				t.Fatalf("400 without naming callback_url: %s", raw)
			}
			var hook createdHook
			e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": target.url("/hook"), "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, &hook)
			id := submitFinal(t, e, key, "4915112345678", nil)
			eventually(t, "the delivery", func() bool { _, ok := target.got("/hook"); return ok == 1 })
			quiet()
			all, ok := target.got("/hook")
			if len(all) != 3 || ok != 1 {
				t.Fatalf("%d attempts, %d delivered; want 3 and 1", len(all), ok)
			}
			first := decodePost(t, all[0])
			for i, p := range all {
				d := decodePost(t, p)
				if d.Attempt != i+1 || d.EventID != first.EventID || d.Receipt == nil || d.Receipt.MessageID != id || !signedBy(p, hook.SigningSecret) {
					t.Fatalf("attempt %d: %s", i+1, p.body)
				}
			}
			if f, dl := metric(t, e, "failed"), metric(t, e, "delivered"); f != 2 || dl != 1 {
				t.Fatalf("metrics failed %d delivered %d, want 2 and 1", f, dl)
			}
			if n := queueLen(t, st, "webhook-queue:"+hook.Webhook.WebhookID); n != 0 {
				t.Fatalf("%d entries left in the webhook's queue", n)
			}
		})
	}
}

// Two gateway instances on one Redis with one webhook: N receipts are delivered N times in all,
// each once, and both instances did a share.
func TestWebhookSharedByInstances(t *testing.T) {
	const n = 40
	open := storeKinds[1].open(t)
	sim := startSim(t)
	target := newHookTarget(t)
	target.start()
	stA, stB := open(), open()
	gA := startGatewayAs(t, stA, sim.Addr(), "gw-a")
	gB := startGatewayAs(t, stB, sim.Addr(), "gw-b")
	cfg := func(name string) func(*api.Config) {
		return func(c *api.Config) { c.Instance = name; c.Webhooks.Workers = 2 }
	}
	eA := startEnv(t, gA, stA, cfg("api-a"))
	eB := startEnv(t, gB, stB, cfg("api-b"))
	eA.createAccount("acme", "pw1")
	key := eA.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	waitBound(t, eA)
	waitBound(t, eB)
	var hook createdHook
	eA.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": target.url("/hook"), "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, &hook)
	// Instance b reads the registrations every RefreshInterval (50ms here); a receipt reaching it
	// before then would find no webhook, as a webhook created on another instance takes effect only
	// at that refresh (WebhookConfig.RefreshInterval).
	time.Sleep(200 * time.Millisecond)
	want := map[string]bool{}
	for i := range n {
		want[submitFinal(t, eA, key, "49151"+strconv.Itoa(10000000+i), nil)] = true
	}
	for i := 0; ; i++ {
		if _, ok := target.got("/hook"); ok >= n {
			break
		}
		if i == 3000 {
			all, ok := target.got("/hook")
			seen := map[string]bool{}
			for _, p := range all {
				if d := decodePost(t, p); d.Receipt != nil {
					seen[d.Receipt.MessageID] = true
				}
			}
			for id := range want {
				if !seen[id] {
					raw := eA.mustREST(200, "GET", "/v1/messages/"+id, key, nil, nil)
					t.Logf("not posted: %s", raw)
				}
			}
			t.Fatalf("after 30s: %d delivered, queue %d, delivered a %d b %d, failed a %d b %d", ok, queueLen(t, stA, "webhook-queue:"+hook.Webhook.WebhookID),
				metric(t, eA, "delivered"), metric(t, eB, "delivered"), metric(t, eA, "failed"), metric(t, eB, "failed"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	quiet()
	all, ok := target.got("/hook")
	seen := map[string]int{}
	for _, p := range all {
		d := decodePost(t, p)
		if d.Receipt == nil || !want[d.Receipt.MessageID] {
			t.Fatalf("unexpected POST %s", p.body)
		}
		seen[d.Receipt.MessageID]++
	}
	a, b := metric(t, eA, "delivered"), metric(t, eB, "delivered")
	t.Logf("%d receipts: %d POSTs, instance a delivered %d, instance b %d", n, len(all), a, b)
	if len(all) != n || ok != n || len(seen) != n {
		t.Fatalf("%d POSTs (%d delivered) for %d distinct messages, want %d each", len(all), ok, len(seen), n)
	}
	if a+b != n || a == 0 || b == 0 {
		t.Fatalf("instances delivered %d and %d, want a share each summing to %d", a, b, n)
	}
}

// A message's callback URL receives its receipt, signed with the gateway's callback_secret while
// the account has no webhook and with the account's (oldest) webhook secret once it has one; a
// message without a callback URL sends nothing there. Bad callback URLs are refused with 400.
func TestCallbackURL(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			st := k.open(t)()
			sim := startSim(t)
			target := newHookTarget(t)
			target.start()
			g := startGatewayAs(t, st, sim.Addr(), "gw-1")
			e := startEnv(t, g, st, func(c *api.Config) { c.Webhooks.CallbackSecret = "gw-callback-secret" })
			e.createAccount("acme", "pw1")
			key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
			waitBound(t, e)
			for _, bad := range []string{"ftp://example.com/x", "/relative", "http://", "https://example.com/" + strings.Repeat("a", 2048), "http://[::1"} {
				raw := e.mustREST(400, "POST", "/v1/messages", key, map[string]any{"source": "ACME", "destination": "4915112345678", "text": "x", "callbackUrl": bad}, nil)
				if !strings.Contains(string(raw), "callback_url") {
					t.Fatalf("callback %.40q: 400 without naming callback_url: %s", bad, raw)
				}
			}

			with := submitFinal(t, e, key, "4915100000001", map[string]any{"callbackUrl": target.url("/cb1?ref=1")})
			without := submitFinal(t, e, key, "4915100000002", nil)
			eventually(t, "the callback", func() bool { _, ok := target.got("/cb1"); return ok == 1 })
			eventually(t, "the other message's receipt", func() bool {
				var got struct {
					Message struct {
						Status string `json:"status"`
					} `json:"message"`
				}
				e.mustREST(200, "GET", "/v1/messages/"+without, key, nil, &got)
				return got.Message.Status == "MESSAGE_STATUS_DELIVERED"
			})
			quiet()
			target.mu.Lock()
			total := len(target.posts)
			target.mu.Unlock()
			all, _ := target.got("/cb1")
			if total != 1 || len(all) != 1 {
				t.Fatalf("%d POSTs in all, %d to the callback; want 1 (the message without a callback sends nothing)", total, len(all))
			}
			d := decodePost(t, all[0])
			if d.Receipt == nil || d.Receipt.MessageID != with || d.WebhookID != "" || d.Event != "WEBHOOK_EVENT_RECEIPT" {
				t.Fatalf("callback body %s", all[0].body)
			}
			if !signedBy(all[0], "gw-callback-secret") {
				t.Fatalf("callback signature %q does not verify under the gateway's callback_secret", all[0].sig)
			}

			// With a webhook, the account's secret signs its callbacks.
			var hook createdHook
			e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": target.url("/hook"), "events": []string{"WEBHOOK_EVENT_MO"}}, &hook)
			third := submitFinal(t, e, key, "4915100000003", map[string]any{"callbackUrl": target.url("/cb2")})
			eventually(t, "the second callback", func() bool { _, ok := target.got("/cb2"); return ok == 1 })
			all, _ = target.got("/cb2")
			if d := decodePost(t, all[0]); d.Receipt == nil || d.Receipt.MessageID != third {
				t.Fatalf("second callback body %s", all[0].body)
			}
			if !signedBy(all[0], hook.SigningSecret) || signedBy(all[0], "gw-callback-secret") {
				t.Fatalf("second callback not signed with the account's webhook secret: %q", all[0].sig)
			}
			// The entry is acknowledged once the POST has returned, a moment after the target saw it.
			eventually(t, "the callback queue empty", func() bool { return queueLen(t, st, "callback-queue:all-accounts") == 0 })
		})
	}
}

// A webhook removed while its deliveries are being retried: its queue is emptied (counted dropped)
// and its target is posted nothing more.
func TestWebhookRemovedDropsItsQueue(t *testing.T) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) {
			st := k.open(t)()
			sim := startSim(t)
			target := newHookTarget(t)
			target.start()
			g := startGatewayAs(t, st, sim.Addr(), "gw-1")
			e := startEnv(t, g, st, nil)
			e.createAccount("acme", "pw1")
			key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
			waitBound(t, e)
			var hook createdHook
			e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": target.url("/down"), "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, &hook)
			submitFinal(t, e, key, "4915112345678", nil)
			submitFinal(t, e, key, "4915112345679", nil)
			q := "webhook-queue:" + hook.Webhook.WebhookID
			eventually(t, "both deliveries failing", func() bool { all, _ := target.got("/down"); return len(all) >= 4 && queueLen(t, st, q) == 2 })
			e.mustREST(200, "DELETE", "/v1/webhooks/"+hook.Webhook.WebhookID, key, nil, nil)
			eventually(t, "the removed webhook's queue emptied", func() bool { return queueLen(t, st, q) == 0 })
			before, _ := target.got("/down")
			quiet()
			after, _ := target.got("/down")
			if len(after) > len(before)+2 { // at most the two POSTs in flight at the removal
				t.Fatalf("%d POSTs after the removal", len(after)-len(before))
			}
			if n := metric(t, e, "dropped"); n != 2 {
				t.Fatalf("dropped %d, want 2", n)
			}
		})
	}
}
