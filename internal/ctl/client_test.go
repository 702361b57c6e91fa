package ctl

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
)

// TestCallErrors: an error answer is one line with the method, path, HTTP status and the API's
// message; an answer that is not the API's JSON still says its status.
func TestCallErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/admin/upstreams/nope":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"code":5,"message":"no such upstream","details":[]}`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>proxy error</html>\n"))
		}
	}))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL, Key: "sgw_x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetUpstream(context.Background(), "nope")
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != 404 || err.Error() != "GET /v1/admin/upstreams/nope: 404 Not Found: no such upstream" {
		t.Errorf("got %v", err)
	}
	_, err = c.GetStats(context.Background())
	if err == nil || err.Error() != "GET /v1/admin/stats: 502 Bad Gateway: <html>proxy error</html>" {
		t.Errorf("got %v", err)
	}
}

// TestAuthAndPaths: Basic or Bearer as configured, path segments escaped, a base path kept.
func TestAuthAndPaths(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.EscapedPath()+"?"+r.URL.RawQuery+" "+r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"route":{"routeId":"r1","upstreams":["a"],"unknownFutureField":1},"matched":true,"selectedUpstream":"a"}`))
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL + "/gw/", User: "ops", Password: "pw"})
	r, err := c.TestRoute(context.Background(), "4477", "acme")
	if err != nil || r.SelectedUpstream != "a" || r.GetRoute().GetRouteId() != "r1" {
		t.Fatalf("%v %v", r, err)
	}
	k, _ := New(Config{URL: srv.URL, Key: "sgw_k"})
	if _, err := k.GetSession(context.Background(), "a/b"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /gw/v1/admin/routes:test?account=acme&destination=4477 Basic b3BzOnB3",
		"GET /v1/admin/sessions/a%2Fb? Bearer sgw_k",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStreamReceipts reads grpc-gateway's NDJSON: result lines, then an error line ends it with
// the HTTP status of its code.
func TestStreamReceipts(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "account=acme&messageIds=m1" {
			t.Errorf("query %q", r.URL.RawQuery)
		}
		_, _ = w.Write([]byte(`{"result":{"receipt":{"messageId":"m1","partIndex":1,"status":"MESSAGE_STATUS_DELIVERED","upstream":"sim"}}}` + "\n\n" +
			`{"error":{"code":14,"message":"store unavailable; retry later","details":[]}}` + "\n"))
	}))
	defer srv.Close()
	c, _ := New(Config{URL: srv.URL, Key: "sgw_k"})
	opened := false
	var lines []string
	err := c.StreamReceipts(context.Background(), ReceiptsRequest{Account: "acme", MessageIDs: []string{"m1"}, Opened: func() { opened = true }},
		func(r *smppgwv1.Receipt, raw json.RawMessage) error {
			lines = append(lines, ReceiptLine(r))
			return nil
		})
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || !opened {
		t.Errorf("stream ended with %v (opened %v)", err, opened)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], " delivered message=m1 part=1 upstream=sim") {
		t.Errorf("lines %q", lines)
	}
}

// TestTLS: --ca-file verifies the server against the given certificate; without it the same
// server is refused, and --insecure-skip-verify accepts it.
func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"upstreams":[]}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg Config
		ok  bool
	}{
		{Config{URL: srv.URL, Key: "k", CAFile: ca}, true},
		{Config{URL: srv.URL, Key: "k"}, false},
		{Config{URL: srv.URL, Key: "k", InsecureSkipVerify: true}, true},
	} {
		tc.cfg.Timeout = 5 * time.Second
		c, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListUpstreams(context.Background())
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
	if _, err := New(Config{URL: "ftp://x"}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := New(Config{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("missing CA file accepted")
	}
}

// TestStreamOpenTimeout: a gateway that never answers a stream is given up on after the timeout;
// one that answers is followed past it.
func TestStreamOpenTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("account") == "slow" {
			<-release
			return
		}
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		time.Sleep(300 * time.Millisecond) // longer than the timeout
		_, _ = w.Write([]byte(`{"result":{"receipt":{"messageId":"m1"}}}` + "\n"))
	}))
	defer srv.Close()
	defer close(release)
	c, _ := New(Config{URL: srv.URL, Key: "sgw_k", Timeout: 100 * time.Millisecond})
	err := c.StreamReceipts(context.Background(), ReceiptsRequest{Account: "slow"}, func(*smppgwv1.Receipt, json.RawMessage) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("silent gateway: %v", err)
	}
	errDone := errors.New("done")
	err = c.StreamReceipts(context.Background(), ReceiptsRequest{}, func(r *smppgwv1.Receipt, _ json.RawMessage) error {
		if r.MessageId != "m1" {
			t.Errorf("receipt %v", r)
		}
		return errDone
	})
	if !errors.Is(err, errDone) {
		t.Errorf("slow receipt: %v", err)
	}
}
