package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

// TestCtlUpstreamsUpdateAndNumberRules runs `smppgw ctl upstreams update` and `number-rules` against a
// real gateway and checks their effect, not only their output: an API-added upstream goes from one
// bind to two at its simulator and reports the new max TPS; a configured upstream is refused (changed
// in its file); an account's number rule set by ctl rewrites what the upstream receives ("+44..."
// arrives as "44..."), is listed, and is gone from the list once deleted.
func TestCtlUpstreamsUpdateAndNumberRules(t *testing.T) {
	var mu sync.Mutex
	var dests []string
	sim, err := smscsim.Start("127.0.0.1:0", smscsim.Options{SystemID: "sim", Accounts: map[string]string{"gwup": "uppw"},
		OnSubmit: func(_ *smscsim.Sim, sm *pdu.SubmitSM) {
			mu.Lock()
			dests = append(dests, sm.DestinationAddr)
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	extra := startSim(t, "gwx", "xpw", "12345")
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
	ctlRun := func(args ...string) (int, string, string) {
		t.Helper()
		return runCLI(append([]string{"ctl", "--url", url, "--user", "ops", "--password", "opspw"}, args...), "")
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := ctlRun(args...)
		if code != 0 {
			t.Fatalf("ctl %v: exit %d, stderr %q", args, code, errOut)
		}
		return out
	}

	// An upstream added through the API, one bind.
	host, port, _ := net.SplitHostPort(extra.Addr())
	body := fmt.Sprintf(`{"name":"extra","host":%q,"port":%s,"systemId":"gwx","password":"xpw","binds":1}`, host, port)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/admin/upstreams", strings.NewReader(body))
	req.SetBasicAuth("ops", "opspw")
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("add upstream: %s", resp.Status)
	}
	eventually(t, "extra bound once", func() bool { return extra.Bound() == 1 })

	out := must("upstreams", "update", "extra", "--binds", "2", "--max-tps", "30")
	if !strings.Contains(out, "extra") {
		t.Errorf("upstreams update:\n%s", out)
	}
	eventually(t, "extra bound twice at its simulator", func() bool { return extra.Bound() == 2 })
	var u struct {
		Binds               uint32 `json:"binds"`
		MaxSubmitsPerSecond uint32 `json:"maxSubmitsPerSecond"`
	}
	if err := json.Unmarshal([]byte(must("--json", "upstreams", "show", "extra")), &u); err != nil || u.Binds != 2 || u.MaxSubmitsPerSecond != 30 {
		t.Errorf("upstreams show extra after update: %+v %v; want binds 2, max TPS 30", u, err)
	}
	// Only the flag given changes.
	must("upstreams", "update", "extra", "--max-tps", "0")
	if err := json.Unmarshal([]byte(must("--json", "upstreams", "show", "extra")), &u); err != nil || u.Binds != 2 || u.MaxSubmitsPerSecond != 0 {
		t.Errorf("upstreams show extra after --max-tps 0: %+v %v; want binds 2, max TPS 0", u, err)
	}
	if code, _, errOut := ctlRun("upstreams", "update", "sim", "--binds", "2"); code != 1 || !strings.Contains(errOut, "configuration file") {
		t.Errorf("update of a configured upstream: exit %d, %q; want 1 and the configuration file named", code, errOut)
	}
	for _, args := range [][]string{{"upstreams", "update", "extra"}, {"upstreams", "update", "extra", "--binds", "0"}, {"number-rules", "set", "carrier", "x"}, {"number-rules", "delete", "account"}} {
		if code, _, errOut := ctlRun(args...); code != 2 || strings.Count(errOut, "\n") != 2 {
			t.Errorf("ctl %v: exit %d, %q; want a usage error (2)", args, code, errOut)
		}
	}

	// number-rules: set for acme, listed, applied to what it submits, deleted.
	out = must("number-rules", "set", "account", "acme", "--dest-strip-plus", "--dest-ton", "international")
	if r := row(out, "account"); !strings.Contains(r, "acme") || !strings.Contains(r, "strip+,ton=international") || !strings.Contains(r, " api") {
		t.Errorf("number-rules set:\n%s", out)
	}
	if r := row(must("number-rules", "list"), "account"); !strings.Contains(r, "acme") || !strings.Contains(r, "strip+") {
		t.Errorf("number-rules list after set: %q", r)
	}
	e, err := bindESME(t, addr, "acme", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	// The gateway reloads its rules every routing.reload_interval: resend until one arrives rewritten.
	eventually(t, "a submission to +447700900001 arriving as 447700900001", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_, _ = e.s.Send(ctx, &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: "+447700900001", ShortMessage: []byte("rule")})
		mu.Lock()
		defer mu.Unlock()
		for _, d := range dests {
			if d == "447700900001" {
				return true
			}
		}
		return false
	})
	if out = must("number-rules", "delete", "account", "acme"); strings.TrimSpace(out) != "number rules of account acme deleted" {
		t.Errorf("number-rules delete: %q", out)
	}
	if out = must("number-rules", "list"); strings.Contains(out, "acme") {
		t.Errorf("number-rules list after delete:\n%s", out)
	}
}
