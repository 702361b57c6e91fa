package api_test

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
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

var consoleScreenshot = flag.String("console.screenshot", "", "TestConsoleBrowser also writes its PNG of the overview here (docs/console.png)")

// chromium returns Debian's Chromium, or skips the test where it is missing, except in CI
// (CI=true), where .ci/run installs it and a missing browser is a failure.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed, and CI must run the console's browser test (.ci/run installs the apt package chromium)")
	}
	t.Skip("chromium is not installed: apt-get install chromium to run the console's browser test")
	return ""
}

// bindESME binds an ESME to g over SMPP.
func bindESME(ctx context.Context, t *testing.T, g *gateway.Gateway, systemID, password string, bt session.BindType, h session.Handler) *session.Session {
	t.Helper()
	conn, err := net.Dial("tcp", g.Server().Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	s := session.New(conn, session.Options{Role: session.RoleESME, Handler: h, Logger: zerolog.Nop()})
	t.Cleanup(s.Close)
	if _, err := s.Bind(ctx, bt, session.BindParams{SystemID: systemID, Password: password}); err != nil {
		t.Fatalf("bind %s: %v", systemID, err)
	}
	return s
}

// TestConsoleBrowser drives the console in headless Chromium against the real gateway: a bound
// ESME appears, its Unbind button ends its session, the Pause button pauses the upstream, and the
// messages pages show receipts. It takes the screenshot of the overview (see -console.screenshot).
func TestConsoleBrowser(t *testing.T) {
	bin := chromium(t)
	st := openEmbedded(t)
	g := startGateway(t, st, startSim(t).Addr())
	e := startEnv(t, g, st, nil)
	e.createAccount("acme", "pw1")
	e.createAccount("shop", "pw2")
	eventually(t, "up1 bound", func() bool {
		us := g.Upstreams()
		return len(us) == 1 && us[0].Status.State == gateway.ClientBound
	})

	// Everything below, the browser included, ends within two minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := &countingESME{}
	acme := bindESME(ctx, t, g, "acme", "pw1", session.BindTransceiver, h)
	shop := bindESME(ctx, t, g, "shop", "pw2", session.BindTransmitter, nil)
	for i := range 3 {
		if _, err := acme.Send(ctx, &pdu.SubmitSM{SourceAddr: "ACME", DestinationAddr: fmt.Sprintf("491511234567%d", i), RegisteredDelivery: 1,
			ShortMessage: fmt.Appendf(nil, "Your order %d has shipped", i+1)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shop.Send(ctx, &pdu.SubmitSM{SourceAddr: "SHOP", DestinationAddr: "4917000000", ShortMessage: []byte("Sale today")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the receipts at acme", func() bool { return h.delivers.Load() == 3 })
	var acmeID uint64
	for _, si := range g.Sessions() {
		if si.SystemID == "acme" {
			acmeID = si.ID
		}
	}

	actx, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.WindowSize(1360, 900))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	// Basic credentials on every request of the tab, as the browser sends them once a person has
	// answered its prompt; the fetches of the refresh script included.
	auth := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Authorization": basicAuth()}})
		return err
	})
	if err := chromedp.Do(bctx, auth); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 20*time.Second)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	row := fmt.Sprintf("#session-%d", acmeID)
	step("open /console", chromedp.Navigate(e.base+"/console"), chromedp.WaitVisible(chromedp.CSS(row+" .sysid")))
	if got := text(row + " .sysid"); got != "acme" {
		t.Fatalf("the sessions table shows system_id %q for session %d, want acme", got, acmeID)
	}
	if got := text("#upstream-up1 .state"); !strings.HasPrefix(got, "bound") {
		t.Errorf("up1 shows as %q, want bound", got)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	for _, p := range []string{filepath.Join(t.TempDir(), "console.png"), *consoleScreenshot} {
		if p != "" {
			if err := os.WriteFile(p, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot of the overview: %s (%d bytes)", p, len(shot))
		}
	}

	step("unbind acme", chromedp.Click(chromedp.CSS(row+` button[name="unbind"]`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	select {
	case <-acme.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the ESME's session did not end after Unbind")
	}
	if got, want := text(".flash"), fmt.Sprintf("Session %d unbound.", acmeID); got != want {
		t.Errorf("flash %q, want %q", got, want)
	}
	// Gone from the table at the latest with the next refresh (every 2 s); shop's row stays.
	step("acme's row disappears", chromedp.WaitNotPresent(chromedp.CSS(row)), chromedp.WaitVisible(chromedp.CSS(`tr[data-system-id="shop"]`)))

	step("pause up1", chromedp.Click(chromedp.CSS(`#upstream-up1 button[name="pause"]`)), chromedp.WaitVisible(chromedp.CSS(`#upstream-up1[data-paused="true"]`)))
	var up struct {
		Upstream struct {
			State  string `json:"state"`
			Paused bool   `json:"paused"`
		} `json:"upstream"`
	}
	e.mustREST(200, "GET", "/v1/admin/upstreams/up1", basicAuth(), nil, &up)
	if up.Upstream.State != "UPSTREAM_STATE_PAUSED" || !up.Upstream.Paused {
		t.Errorf("after Pause the admin API reports up1 %+v, want paused", up.Upstream)
	}
	step("resume up1", chromedp.Click(chromedp.CSS(`#upstream-up1 button[name="resume"]`)), chromedp.WaitVisible(chromedp.CSS(`#upstream-up1[data-paused="false"]`)))
	if g.Upstreams()[0].Paused {
		t.Error("Resume left up1 paused")
	}
	// A change made elsewhere shows without a reload: the refresh script's fetch, with the tab's
	// credentials, under the page's Content-Security-Policy.
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:pause", basicAuth(), map[string]any{}, nil)
	step("the refresh shows up1 paused", chromedp.WaitVisible(chromedp.CSS(`#upstream-up1[data-paused="true"]`)))
	e.mustREST(200, "POST", "/v1/admin/upstreams/up1:resume", basicAuth(), map[string]any{}, nil)

	// Messages: newest first, acme's with their receipts; one click opens a message.
	step("open /console/messages", chromedp.Navigate(e.base+"/console/messages"), chromedp.WaitVisible(chromedp.CSS("#messages tbody tr")))
	if got := text("#messages tbody tr:first-child td:nth-child(3)"); got != "shop" {
		t.Errorf("the newest message is %q's, want shop's", got)
	}
	if got := text("#messages tbody tr:nth-child(2) td:last-child"); !strings.HasPrefix(got, "DELIVERED") {
		t.Errorf("acme's last message shows receipt %q, want DELIVERED", got)
	}
	step("open a message", chromedp.Click(chromedp.CSS("#messages tbody tr:nth-child(2) a")), chromedp.WaitVisible(chromedp.CSS("#receipts")))
	if got := text("pre.content"); got != "Your order 3 has shipped" {
		t.Errorf("message content %q", got)
	}
	if got := text("#receipts tbody tr td:nth-child(4)"); got != "DELIVERED" {
		t.Errorf("receipt state %q, want DELIVERED", got)
	}
	if err := chromedp.Cancel(bctx); err != nil {
		t.Logf("closing chromium: %v", err)
	}
}
