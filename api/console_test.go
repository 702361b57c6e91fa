package api_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/store"
)

// consoleClient is a browser stand-in for the console: a cookie jar, Basic credentials, and no
// redirects followed, so a test sees each answer.
type consoleClient struct {
	t    *testing.T
	base string
	auth string
	hc   *http.Client
}

func newConsoleClient(t *testing.T, base, auth string) *consoleClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &consoleClient{t: t, base: base, auth: auth, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *consoleClient) do(method, path string, form url.Values, hdr map[string]string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(raw)
}

func (c *consoleClient) get(path string, want int) string {
	c.t.Helper()
	resp, body := c.do("GET", path, nil, nil)
	if resp.StatusCode != want {
		c.t.Fatalf("GET %s: HTTP %d, want %d: %s", path, resp.StatusCode, want, body)
	}
	return body
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field in the page:\n%s", page)
	}
	return m[1]
}

// TestConsoleHTTP checks the console without a browser: who gets in, that actions need the form
// token and a same-origin request, and that what the gateway reports is escaped.
func TestConsoleHTTP(t *testing.T) {
	st := openEmbedded(t)
	fg := newFakeGateway(st)
	fg.sessions = []session.Info{
		{ID: 7, Role: session.RoleSMSC, SystemID: "acme", RemoteAddr: "127.0.0.1:4000", BindType: session.BindTransceiver, State: session.StateBound, WindowSize: 10, BoundAt: time.Now()},
		{ID: 8, Role: session.RoleSMSC, SystemID: `<script>alert("x")</script>`, RemoteAddr: "127.0.0.1:4001", BindType: session.BindReceiver, State: session.StateBound},
	}
	if err := fg.AddUpstream(context.Background(), gateway.ClientConfig{Name: "up1", Address: "127.0.0.1:2775", SystemID: "gw"}); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, fg, st, nil)

	anon := newConsoleClient(t, e.base, "")
	for _, path := range []string{"/console", "/console/messages", "/console/static/console.js"} {
		resp, _ := anon.do("GET", path, nil, nil)
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("GET %s without credentials: HTTP %d, WWW-Authenticate %q; want 401 with a Basic challenge", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp, _ := anon.do("POST", "/console/sessions/7/unbind", url.Values{"csrf": {"x"}}, nil); resp.StatusCode != 401 {
		t.Errorf("POST without credentials: HTTP %d, want 401", resp.StatusCode)
	}
	wrong := newConsoleClient(t, e.base, "Basic "+basicCred(operator, "wrong"))
	if resp, _ := wrong.do("GET", "/console", nil, nil); resp.StatusCode != 401 {
		t.Errorf("wrong password: HTTP %d, want 401", resp.StatusCode)
	}

	op := newConsoleClient(t, e.base, basicAuth())
	resp, page := op.do("GET", "/console", nil, nil)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /console: HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{`<tr id="session-7" data-system-id="acme">`, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`,
		`<tr id="upstream-up1" data-paused="false">`, `action="/console/upstreams/up1/pause"`, "0.50/s"} {
		if !strings.Contains(page, want) {
			t.Errorf("the overview lacks %s", want)
		}
	}
	if strings.Contains(page, `<script>alert`) {
		t.Error("a system_id reached the page unescaped")
	}
	token := csrfOf(t, page)

	// Every refused action leaves the session bound.
	noCookie := newConsoleClient(t, e.base, basicAuth())
	for _, tc := range []struct {
		name string
		c    *consoleClient
		form url.Values
		hdr  map[string]string
	}{
		{"no token", op, url.Values{}, nil},
		{"wrong token", op, url.Values{"csrf": {token[:len(token)-2] + "xx"}}, nil},
		{"token without its cookie", noCookie, url.Values{"csrf": {token}}, nil},
		{"cross-site", op, url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"foreign origin", op, url.Values{"csrf": {token}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		resp, body := tc.c.do("POST", "/console/sessions/7/unbind", tc.form, tc.hdr)
		if resp.StatusCode != 403 {
			t.Errorf("%s: HTTP %d, want 403: %s", tc.name, resp.StatusCode, body)
		}
	}
	if len(fg.unbound) != 0 {
		t.Fatalf("a refused action unbound %v", fg.unbound)
	}

	resp, body := op.do("POST", "/console/sessions/7/unbind", url.Values{"csrf": {token}}, map[string]string{"Origin": e.base, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/console?done=unbind&name=7" {
		t.Fatalf("unbind: HTTP %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	if !slices.Equal(fg.unbound, []uint64{7}) {
		t.Fatalf("unbound %v, want [7]", fg.unbound)
	}
	page = op.get(resp.Header.Get("Location"), 200)
	if !strings.Contains(page, "Session 7 unbound.") || strings.Contains(page, `id="session-7"`) {
		t.Error("after the unbind the overview should report it and no longer list session 7")
	}
	if resp, _ := op.do("POST", "/console/sessions/7/unbind", url.Values{"csrf": {token}}, nil); resp.StatusCode != 404 {
		t.Errorf("unbinding it again: HTTP %d, want 404", resp.StatusCode)
	}

	for _, act := range []string{"pause", "resume", "reconnect"} {
		resp, _ := op.do("POST", "/console/upstreams/up1/"+act, url.Values{"csrf": {token}}, nil)
		if resp.StatusCode != 303 {
			t.Fatalf("%s: HTTP %d", act, resp.StatusCode)
		}
		if act == "pause" && !fg.Upstreams()[0].Paused {
			t.Error("pause did not pause up1")
		}
		if act == "resume" && fg.Upstreams()[0].Paused {
			t.Error("resume did not resume up1")
		}
	}
	if resp, _ := op.do("POST", "/console/upstreams/up1/explode", url.Values{"csrf": {token}}, nil); resp.StatusCode != 400 {
		t.Errorf("unknown action: HTTP %d, want 400", resp.StatusCode)
	}
	if resp, _ := op.do("POST", "/console/upstreams/nope/pause", url.Values{"csrf": {token}}, nil); resp.StatusCode != 404 {
		t.Errorf("unknown upstream: HTTP %d, want 404", resp.StatusCode)
	}

	// The refresh script fetches the live part alone.
	frag := op.get("/console?fragment=live", 200)
	if strings.Contains(frag, "<html") || !strings.Contains(frag, `id="upstreams"`) {
		t.Errorf("the fragment should be the live part only:\n%s", frag)
	}
	if js := op.get("/console/static/console.js", 200); !strings.Contains(js, "fragment") {
		t.Error("console.js is not served")
	}
	op.get("/console/messages/nosuchmessage", 404)
}

func basicCred(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// TestConsoleMessages: the messages page lists the 50 newest, newest first, however far apart
// in time they are, and escapes what the submitter chose.
func TestConsoleMessages(t *testing.T) {
	st := openEmbedded(t)
	ctx := context.Background()
	now := time.Now()
	// 70 messages: one a minute over the last 10 minutes, then hours and days back.
	var ids []string // oldest first
	for i := range 70 {
		age := time.Duration(69-i) * time.Minute
		if i < 20 {
			age = time.Duration(200-i) * time.Hour
		}
		id := fmt.Sprintf("msg%03d", i)
		m := &store.Message{ID: id, Account: "acme", Source: store.Address{Addr: "<b>ACME</b>"}, Destination: store.Address{Addr: "4915112345678"},
			Upstream: "up1", CreatedAt: now.Add(-age), Parts: []store.Part{{ShortMessage: []byte("hi")}}}
		if i == 69 {
			m.Account = "other"
		}
		if err := st.AcceptMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	e := startEnv(t, newFakeGateway(st), st, nil)
	op := newConsoleClient(t, e.base, basicAuth())
	rowID := regexp.MustCompile(`<tr id="msg-(msg\d+)">`)
	listed := func(page string) []string {
		var out []string
		for _, m := range rowID.FindAllStringSubmatch(page, -1) {
			out = append(out, m[1])
		}
		return out
	}
	page := op.get("/console/messages", 200)
	want := slices.Clone(ids[20:])
	slices.Reverse(want)
	if got := listed(page); !slices.Equal(got, want) {
		t.Errorf("listed %v,\nwant %v", got, want)
	}
	if strings.Contains(page, "<b>ACME</b>") || !strings.Contains(page, "&lt;b&gt;ACME&lt;/b&gt;") {
		t.Error("source address not escaped")
	}
	page = op.get("/console/messages?account=other", 200)
	if got := listed(page); !slices.Equal(got, []string{"msg069"}) {
		t.Errorf("account other: listed %v, want [msg069]", got)
	}
	page = op.get("/console/messages/msg005", 200)
	if !strings.Contains(page, "<h1>Message <code>msg005</code></h1>") || !strings.Contains(page, "No receipt yet.") || !strings.Contains(page, ">hi</pre>") {
		t.Errorf("message page:\n%s", page)
	}
}
