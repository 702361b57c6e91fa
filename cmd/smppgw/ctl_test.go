package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// syncBuffer is a bytes.Buffer written by a command running in another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// apiHTTPAddr is the REST address serve logged.
func apiHTTPAddr(t *testing.T, lt *logTail) string {
	t.Helper()
	for _, m := range lt.seen {
		if s, _ := m["message"].(string); s == "api listening" {
			a, _ := m["http"].(string)
			return a
		}
	}
	a, _ := lt.until(t, "api listening")["http"].(string)
	return a
}

// row returns the line of a table whose first column is first, or "".
func row(out, first string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == first {
			return l
		}
	}
	return ""
}

// eventually retries f until it is true or the wait is over.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCtl runs `smppgw ctl` against a real gateway (SMPP and REST on loopback, the upstream
// simulated by internal/smscsim) and checks what an operator does daily, by value.
func TestCtl(t *testing.T) {
	sim := startSim(t, "gwup", "uppw", "12345")
	addr, lt, _ := startServe(t, fmt.Sprintf(`
log: {level: debug, format: json}
smpp:
  listen: 127.0.0.1:0
  accounts:
    - {system_id: acme, password_hash: %q}
api:
  admin_users:
    - {name: ops, password_hash: %q}
upstreams:
  - name: sim
    address: %s
    system_id: gwup
    password: uppw
    reconnect_min: 50ms
    reconnect_max: 200ms
routing:
  routes:
    - {prefix: "44", upstream: sim}
shutdown_timeout: 5s
`, bcryptHash(t, "s3cret"), bcryptHash(t, "opspw"), sim.Addr()))
	lt.until(t, "bound")
	url := "http://" + apiHTTPAddr(t, lt)
	ctlRun := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		return runCLI(append([]string{"ctl", "--url", url, "--user", "ops", "--password", "opspw"}, args...), stdin)
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := ctlRun(stdin, args...)
		if code != 0 {
			t.Fatalf("ctl %v: exit %d, stderr %q", args, code, errOut)
		}
		return out
	}

	// A wrong password: the API's 401 and message in one line, exit 1.
	code, out, errOut := runCLI([]string{"ctl", "--url", url, "--user", "ops", "--password", "wrong", "sessions"}, "")
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "missing or unknown credentials") {
		t.Errorf("wrong password: exit %d, stdout %q, stderr %q; want 1 and one line with 401", code, out, errOut)
	}

	// sessions list shows the bound ESME; show has its fields.
	e, err := bindESME(t, addr, "acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	out = must("", "sessions", "list")
	if !strings.HasPrefix(out, "ID") || !strings.Contains(out, " acme ") || !strings.Contains(out, "transceiver") {
		t.Fatalf("sessions list:\n%s", out)
	}
	var sessions struct {
		Sessions []struct {
			SessionID string `json:"sessionId"`
			SystemID  string `json:"systemId"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(must("", "sessions", "list", "--json")), &sessions); err != nil || len(sessions.Sessions) != 1 || sessions.Sessions[0].SystemID != "acme" {
		t.Fatalf("sessions list --json: %+v %v", sessions, err)
	}
	sid := sessions.Sessions[0].SessionID
	if out = must("", "sessions", "show", sid); !strings.Contains(out, "system id:") || row(out, "system") == "" || !strings.Contains(row(out, "system"), "acme") {
		t.Errorf("sessions show %s:\n%s", sid, out)
	}

	// pause: the upstream and stats say paused; resume: bound again.
	if out = must("", "upstreams", "pause", "sim"); !strings.Contains(row(out, "sim"), " paused ") {
		t.Errorf("upstreams pause:\n%s", out)
	}
	if out = must("", "stats"); !strings.Contains(row(out, "sim"), " paused ") {
		t.Errorf("stats after pause:\n%s", out)
	}
	if out = must("", "upstreams", "resume", "sim"); !strings.Contains(row(out, "sim"), " bound ") {
		t.Errorf("upstreams resume:\n%s", out)
	}

	// reconnect: the simulator sees a second bind, and the upstream is bound again.
	before, _ := sim.Binds()
	must("", "upstreams", "reconnect", "sim")
	eventually(t, "a new bind after reconnect", func() bool {
		n, _ := sim.Binds()
		_, out, _ := ctlRun("", "upstreams", "show", "sim")
		return n > before && strings.Contains(out, "bound")
	})

	// accounts create, with the password on stdin; the account binds over SMPP.
	if out = must("b0bpw\n", "accounts", "create", "bob", "--max-binds", "3", "--description", "bob's app"); !strings.Contains(row(out, "bob"), " 3 ") {
		t.Errorf("accounts create:\n%s", out)
	}
	if out = must("", "accounts", "list"); row(out, "bob") == "" || row(out, "acme") == "" {
		t.Errorf("accounts list:\n%s", out)
	}
	if _, err := bindESME(t, addr, "bob", "b0bpw"); err != nil {
		t.Fatalf("bind with the account ctl created: %v", err)
	}
	if out = must("", "accounts", "update", "bob", "--max-binds", "0", "--disabled=false"); !strings.Contains(row(out, "bob"), " none ") {
		t.Errorf("accounts update:\n%s", out)
	}
	// api_receipts_over_smpp is set, shown, and cleared again.
	for _, c := range []struct{ flag, want string }{{"--api-receipts-over-smpp", "yes"}, {"--api-receipts-over-smpp=false", "no"}} {
		must("", "accounts", "update", "bob", c.flag)
		if out = must("", "accounts", "show", "bob"); !strings.Contains(out, "API receipts over SMPP: "+c.want+"\n") {
			t.Errorf("accounts show after update %s, want %s:\n%s", c.flag, c.want, out)
		}
	}
	if code, _, errOut = ctlRun("", "accounts", "create", "carol"); code != 2 || !strings.Contains(errOut, "nothing on stdin") {
		t.Errorf("accounts create without a password: exit %d, %q", code, errOut)
	}

	// keys create prints the secret alone; the key submits over REST.
	code, secret, errOut := ctlRun("", "keys", "create", "--account", "bob", "--scopes", "send,read", "--name", "test")
	secret = strings.TrimSpace(secret)
	if code != 0 || !strings.HasPrefix(secret, "sgw_") || strings.Contains(secret, "\n") || !strings.Contains(errOut, "shown only now") {
		t.Fatalf("keys create: exit %d, stdout %q, stderr %q", code, secret, errOut)
	}
	if out = must("", "keys", "list", "--account", "bob"); !strings.Contains(out, "read,send") && !strings.Contains(out, "send,read") {
		t.Errorf("keys list:\n%s", out)
	}

	// routes test names the upstream; a created route is used, then deleted.
	if out = must("", "routes", "test", "--account", "bob", "447700900001"); !strings.Contains(out, "selected upstream: sim") {
		t.Errorf("routes test:\n%s", out)
	}
	if out = must("", "routes", "test", "33612345678"); !strings.Contains(out, "no route") {
		t.Errorf("routes test, unrouted:\n%s", out)
	}
	var route struct {
		RouteID string `json:"routeId"`
	}
	if err := json.Unmarshal([]byte(must("", "--json", "routes", "create", "--prefix", "33", "--upstreams", "sim")), &route); err != nil || route.RouteID == "" {
		t.Fatalf("routes create --json: %v", err)
	}
	if out = must("", "routes", "test", "33612345678"); !strings.Contains(out, "selected upstream: sim") {
		t.Errorf("routes test after create:\n%s", out)
	}
	must("", "routes", "delete", route.RouteID)
	if out = must("", "routes", "list"); strings.Contains(out, route.RouteID) {
		t.Errorf("routes list after delete:\n%s", out)
	}
	// A weighted route lists its weights; MO routes are created, listed and deleted.
	if err := json.Unmarshal([]byte(must("", "--json", "routes", "create", "--prefix", "34", "--upstreams", "sim", "--weights", "5")), &route); err != nil || route.RouteID == "" {
		t.Fatalf("routes create --weights --json: %v", err)
	}
	if out = must("", "routes", "list"); !strings.Contains(out, "sim:5") {
		t.Errorf("routes list with a weighted route:\n%s", out)
	}
	if code, _, errOut = ctlRun("", "routes", "create", "--upstreams", "sim", "--weights", "x"); code != 2 || !strings.Contains(errOut, "--weights") {
		t.Errorf("routes create --weights x: exit %d, %q", code, errOut)
	}
	var moRoute struct {
		MoRouteID string `json:"moRouteId"`
	}
	if err := json.Unmarshal([]byte(must("", "--json", "mo-routes", "create", "--prefix", "777", "--account", "acme")), &moRoute); err != nil || moRoute.MoRouteID == "" {
		t.Fatalf("mo-routes create --json: %v", err)
	}
	if out = must("", "mo-routes", "list"); !strings.Contains(out, moRoute.MoRouteID) || !strings.Contains(out, " 777 ") {
		t.Errorf("mo-routes list:\n%s", out)
	}
	must("", "mo-routes", "delete", moRoute.MoRouteID)
	if out = must("", "mo-routes", "list"); strings.Contains(out, moRoute.MoRouteID) {
		t.Errorf("mo-routes list after delete:\n%s", out)
	}

	// receipts tail follows bob's receipts; a message submitted with bob's key shows up.
	if code, _, errOut = ctlRun("", "receipts", "tail"); code != 2 || !strings.Contains(errOut, "--key") {
		t.Errorf("receipts tail with a password: exit %d, %q", code, errOut)
	}
	var tailOut, tailErr syncBuffer
	tailed := make(chan int, 1)
	go func() {
		tailed <- run([]string{"ctl", "--url", url, "--key", secret, "receipts", "tail", "--count", "1"}, strings.NewReader(""), &tailOut, &tailErr)
	}()
	eventually(t, "the tail opened", func() bool { return strings.Contains(tailErr.String(), "following receipts") })
	body := `{"source":"12345","destination":"447700900001","text":"hello","registeredDelivery":"REGISTERED_DELIVERY_FINAL"}`
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sub struct {
		MessageID string `json:"messageId"`
	}
	err = json.NewDecoder(resp.Body).Decode(&sub)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || sub.MessageID == "" {
		t.Fatalf("REST submit with the ctl-made key: %s %v", resp.Status, err)
	}
	select {
	case code := <-tailed:
		line := strings.TrimSpace(tailOut.String())
		if code != 0 || strings.Count(line, "\n") != 0 || !strings.Contains(line, " delivered message="+sub.MessageID+" part=1") || !strings.Contains(line, "upstream=sim") {
			t.Errorf("receipts tail: exit %d, stdout %q, stderr %q", code, line, tailErr.String())
		}
	case <-time.After(wait):
		t.Fatalf("receipts tail printed no receipt for %s: %q", sub.MessageID, tailOut.String())
	}

	// unbind: the ESME sees the gateway's unbind, and the session is gone from the list.
	if out = must("", "sessions", "unbind", sid); strings.TrimSpace(out) != "session "+sid+" unbound" {
		t.Errorf("sessions unbind: %q", out)
	}
	select {
	case reason := <-e.closed:
		if !errors.Is(reason, session.ErrPeerUnbound) {
			t.Errorf("the ESME's session ended with %v, want the gateway's unbind", reason)
		}
	case <-time.After(wait):
		t.Fatal("the ESME was not unbound")
	}
	eventually(t, "the session gone from the list", func() bool {
		return !strings.Contains(must("", "sessions", "list", "--account", "acme"), " acme ")
	})
	if code, _, errOut = ctlRun("", "sessions", "show", sid); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("sessions show of an ended session: exit %d, %q", code, errOut)
	}

	// outbind: an ESME waiting for outbinds binds back as acme; ctl prints its session.
	esme2, err := gateway.NewClient(gateway.ClientConfig{OutbindListen: "127.0.0.1:0", OutbindPassword: "ob", SystemID: "acme", Password: "s3cret"},
		ackDeliveries{}, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := esme2.Start(); err != nil {
		t.Fatal(err)
	}
	defer esme2.Unbind(context.Background())
	eventually(t, "the ESME waiting for an outbind", func() bool { return esme2.Status().State == gateway.ClientWaiting })
	obAddr := esme2.Status().OutbindAddr
	if out = must("ob\n", "outbind", "--account", "acme", "--password", "--bind-timeout", "5s", obAddr); !strings.Contains(out, " acme ") || !strings.Contains(out, obAddr) {
		t.Errorf("outbind:\n%s", out)
	}
	eventually(t, "the ESME bound after the outbind", esme2.Bound)

	// delete revokes the account's key.
	must("", "accounts", "delete", "bob")
	code, _, errOut = runCLI([]string{"ctl", "--url", url, "--key", secret, "receipts", "tail"}, "")
	if code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("tail with the deleted account's key: exit %d, %q", code, errOut)
	}
}

// TestCtlUsage: help for every command, usage mistakes exit 2 with one line and a hint, before
// anything is sent.
func TestCtlUsage(t *testing.T) {
	code, out, _ := runCLI([]string{"ctl", "--help"}, "")
	if code != 0 || !strings.Contains(out, "receipts") || !strings.Contains(out, "SMPPGW_CTL_KEY") {
		t.Errorf("ctl --help: exit %d\n%s", code, out)
	}
	for name, g := range ctlGroups {
		for _, args := range [][]string{{"ctl", name, "--help"}, {"ctl", name, g.actions[0], "--help"}} {
			code, out, _ := runCLI(args, "")
			if code != 0 || !strings.HasPrefix(out, "Usage: smppgw ctl "+name) {
				t.Errorf("%v: exit %d\n%s", args, code, out)
			}
		}
	}
	url := []string{"ctl", "--url", "http://127.0.0.1:1", "--user", "ops", "--password", "x"}
	for _, tc := range []struct {
		args       []string
		line, hint string
	}{
		{[]string{"ctl"}, "smppgw ctl: a command is required", "run 'smppgw ctl --help'"},
		{[]string{"ctl", "frob"}, `smppgw ctl: unknown command "frob"`, "run 'smppgw ctl --help'"},
		{[]string{"ctl", "--nope"}, "smppgw ctl: flag provided but not defined: -nope", "run 'smppgw ctl --help'"},
		{append(url, "sessions", "kick"), `smppgw ctl sessions: unknown action "kick"`, "run 'smppgw ctl sessions --help'"},
		{append(url, "sessions", "show"), "smppgw ctl sessions: missing the session ID", "run 'smppgw ctl sessions --help'"},
		{append(url, "upstreams", "pause", "a", "b"), `smppgw ctl upstreams: unexpected argument "b"`, "run 'smppgw ctl upstreams --help'"},
		{append(url, "keys", "create", "--account", "a", "--scopes", "write"), `smppgw ctl keys: --scopes: unknown scope "write"`, "run 'smppgw ctl keys --help'"},
		{append(url, "accounts", "update", "bob"), "smppgw ctl accounts: nothing to change", "run 'smppgw ctl accounts --help'"},
		{append(url, "routes", "create", "--prefix", "44"), "smppgw ctl routes: --upstreams is required", "run 'smppgw ctl routes --help'"},
		{[]string{"ctl", "--url", "http://127.0.0.1:1", "stats"}, "smppgw ctl stats: no credentials", "run 'smppgw ctl stats --help'"},
		{[]string{"ctl", "--url", "ftp://x", "--key", "k", "stats"}, `smppgw ctl stats: url "ftp://x"`, "run 'smppgw ctl stats --help'"},
	} {
		code, out, errOut := runCLI(tc.args, "")
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if code != 2 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], tc.line) || !strings.Contains(lines[1], tc.hint) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q + a hint with %q", tc.args[1:], code, out, errOut, tc.line, tc.hint)
		}
	}
	// Nothing listens on port 1: exit 1 with the reason.
	if code, _, errOut := runCLI(append(url, "stats"), ""); code != 1 || !strings.Contains(errOut, "GET /v1/admin/stats") {
		t.Errorf("unreachable API: exit %d, %q", code, errOut)
	}
}

// TestCtlEnvLeavesServeAlone: ctl's variables share serve's SMPPGW_ prefix, and serve does not
// take them for unknown settings.
func TestCtlEnvLeavesServeAlone(t *testing.T) {
	env := []string{"SMPPGW_CTL_URL=http://x:8080", "SMPPGW_CTL_USER=ops", "SMPPGW_CTL_PASSWORD=pw", "SMPPGW_CTL_KEY=sgw_x"}
	if _, err := loadConfig("", env); err != nil {
		t.Errorf("serve's configuration with ctl's variables set: %v", err)
	}
	if _, err := loadConfig("", []string{"SMPPGW_CTL_NOPE=1"}); err == nil {
		t.Error("an unknown SMPPGW_ variable was accepted")
	}
}

// ackDeliveries is the DeliverHandler of a test's ESME: it answers every deliver_sm ESME_ROK.
type ackDeliveries struct{}

func (ackDeliveries) HandleDeliver(_ string, _ session.Request, respond func(pdu.CommandStatus)) {
	respond(pdu.ESME_ROK)
}
