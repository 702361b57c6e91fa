package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/api"
)

func (e *env) get(path, auth string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsEndpoint: /metrics is open by default, asks for admin credentials with auth: true,
// and is gone with enabled: false.
func TestMetricsEndpoint(t *testing.T) {
	st := openEmbedded(t)
	open := startEnv(t, newFakeGateway(st), st, nil)
	code, body := open.get("/metrics", "")
	if code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_") {
		t.Errorf("GET /metrics: %d, want 200 with the Go and process metrics:\n%.500s", code, body)
	}

	authed := startEnv(t, newFakeGateway(st), st, func(c *api.Config) { c.Metrics.Auth = true })
	if code, _ := authed.get("/metrics", ""); code != 401 {
		t.Errorf("GET /metrics without credentials, auth on: %d, want 401", code)
	}
	if code, _ := authed.get("/metrics", basicAuth()); code != 200 {
		t.Errorf("GET /metrics as the operator, auth on: %d, want 200", code)
	}
	authed.createAccount("acme", "pw1")
	if code, _ := authed.get("/metrics", authed.createKey("acme", "SCOPE_SEND")); code != 403 {
		t.Errorf("GET /metrics with a send key, auth on: %d, want 403", code)
	}
	if code, _ := authed.get("/metrics", authed.createKey("", "SCOPE_ADMIN")); code != 200 {
		t.Errorf("GET /metrics with an admin key, auth on: %d, want 200", code)
	}

	off := false
	gone := startEnv(t, newFakeGateway(st), st, func(c *api.Config) { c.Metrics.Enabled = &off })
	if code, _ := gone.get("/metrics", basicAuth()); code != 404 {
		t.Errorf("GET /metrics, disabled: %d, want 404", code)
	}
}

// TestPProf: off by default (404); on, it takes admin credentials and serves profiles.
func TestPProf(t *testing.T) {
	st := openEmbedded(t)
	off := startEnv(t, newFakeGateway(st), st, nil)
	if code, _ := off.get("/debug/pprof/heap", basicAuth()); code != 404 {
		t.Errorf("GET /debug/pprof/heap, pprof off: %d, want 404", code)
	}

	on := startEnv(t, newFakeGateway(st), st, func(c *api.Config) { c.PProf = true })
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if code, _ := on.get(path, ""); code != 401 {
			t.Errorf("GET %s without credentials: %d, want 401", path, code)
		}
		if code, _ := on.get(path, "Basic b3BzOndyb25n"); code != 401 { // ops:wrong
			t.Errorf("GET %s with a wrong password: %d, want 401", path, code)
		}
	}
	if code, body := on.get("/debug/pprof/", basicAuth()); code != 200 || !strings.Contains(body, "heap") {
		t.Errorf("GET /debug/pprof/ as the operator: %d %.200s", code, body)
	}
	code, body := on.get("/debug/pprof/heap", basicAuth())
	if code != 200 || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b { // a gzipped profile.proto
		t.Errorf("GET /debug/pprof/heap as the operator: %d, %d bytes, want 200 and a gzipped profile", code, len(body))
	}
	start := time.Now()
	code, body = on.get("/debug/pprof/profile?seconds=1", on.createKey("", "SCOPE_ADMIN"))
	if code != 200 || len(body) < 2 || body[0] != 0x1f || time.Since(start) < time.Second {
		t.Errorf("GET a 1s CPU profile with an admin key: %d, %d bytes after %v", code, len(body), time.Since(start))
	}
}
