package ctl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Config says where the API is and who calls it.
type Config struct {
	// URL is the API's base URL, scheme and host:port (a path prefix is kept). Empty means
	// http://127.0.0.1:8080.
	URL string
	// User and Password are an operator's HTTP Basic credentials (api.admin_users); they are
	// accepted on /v1/admin only.
	User, Password string
	// Key is an API key secret (sgw_...), sent as a bearer token; it wins over User.
	Key string
	// Timeout bounds each call, and the wait for a stream's first response. 0 means 30s.
	Timeout time.Duration
	// CAFile is a PEM file of the certificates to verify an https URL against, instead of the
	// system's.
	CAFile string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
}

// DefaultURL is where `smppgw serve` answers REST with its default configuration.
const DefaultURL = "http://127.0.0.1:8080"

// Client calls one gateway's REST API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	auth    string
	timeout time.Duration
	hc      *http.Client
}

// New checks cfg and returns a Client; nothing is sent yet.
func New(cfg Config) (*Client, error) {
	raw := cfg.URL
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("url %q: want http://host:port or https://host:port", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	c := &Client{base: u, timeout: cfg.Timeout}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	switch {
	case cfg.Key != "":
		c.auth = "Bearer " + cfg.Key
	case cfg.User != "":
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password))
	}
	tc := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // the operator asked for it
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificate in it", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	c.hc = &http.Client{Transport: tr}
	return c, nil
}

// Error is a call the API answered with an error status.
type Error struct {
	Method, Path string
	Status       int    // HTTP status code
	Message      string // the API's message (google.rpc.Status message), or the body's start
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = "(no message)"
	}
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), msg)
}

// errorFrom reads the API's error body: the google.rpc.Status JSON grpc-gateway writes.
func errorFrom(method, path string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &Error{Method: method, Path: path, Status: resp.StatusCode}
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(b, &st) == nil && st.Message != "" {
		e.Message = st.Message
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
	}
	return e
}

var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true} // a newer gateway may say more

// request builds a call of path (escaped, under the base URL) with query and a JSON body: a proto.Message
// in the API's JSON, anything else through encoding/json, or none when nil.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u := *c.base
	// path is escaped already (esc): a segment may hold a '/' or '%'.
	u.RawPath = c.base.EscapedPath() + path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("path %q: %w", path, err)
	}
	u.Path = p
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		var b []byte
		if m, ok := body.(proto.Message); ok {
			b, err = protojson.Marshal(m)
		} else {
			b, err = json.Marshal(body)
		}
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	return req, nil
}

// call sends one request and reads the answer into out.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, body any, out proto.Message) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := c.request(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errorFrom(method, path, resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if err := unmarshal.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not a %s: %w", method, path, out.ProtoReflect().Descriptor().Name(), err)
	}
	return nil
}

// unwrapURLError drops *url.Error's repetition of the method and URL, which the caller says itself.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func pageQuery(token string, extra ...string) url.Values {
	q := url.Values{}
	if token != "" {
		q.Set("pageToken", token)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] != "" {
			q.Set(extra[i], extra[i+1])
		}
	}
	return q
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// Sessions.

// ListSessions returns every session bound to the instance that answers, of account when it is
// not empty, following the pages.
func (c *Client) ListSessions(ctx context.Context, account string) (*smppgwv1.ListSessionsResponse, error) {
	all := &smppgwv1.ListSessionsResponse{}
	for token := ""; ; {
		page := &smppgwv1.ListSessionsResponse{}
		if err := c.call(ctx, http.MethodGet, "/v1/admin/sessions", pageQuery(token, "systemId", account), nil, page); err != nil {
			return nil, err
		}
		all.Sessions = append(all.Sessions, page.Sessions...)
		if token = page.NextPageToken; token == "" {
			return all, nil
		}
	}
}

// GetSession returns one session.
func (c *Client) GetSession(ctx context.Context, id string) (*smppgwv1.Session, error) {
	out := &smppgwv1.GetSessionResponse{}
	err := c.call(ctx, http.MethodGet, "/v1/admin/sessions/"+esc(id), nil, nil, out)
	return out.GetSession(), err
}

// UnbindSession ends a session: unbind, or with force a close at once.
func (c *Client) UnbindSession(ctx context.Context, id string, force bool) error {
	return c.call(ctx, http.MethodPost, "/v1/admin/sessions/"+esc(id)+":unbind", nil,
		&smppgwv1.UnbindSessionRequest{Force: force}, &smppgwv1.UnbindSessionResponse{})
}

// Upstreams.

// ListUpstreams returns every upstream with its state.
func (c *Client) ListUpstreams(ctx context.Context) (*smppgwv1.ListUpstreamsResponse, error) {
	out := &smppgwv1.ListUpstreamsResponse{}
	return out, c.call(ctx, http.MethodGet, "/v1/admin/upstreams", nil, nil, out)
}

// GetUpstream returns one upstream.
func (c *Client) GetUpstream(ctx context.Context, name string) (*smppgwv1.Upstream, error) {
	out := &smppgwv1.GetUpstreamResponse{}
	err := c.call(ctx, http.MethodGet, "/v1/admin/upstreams/"+esc(name), nil, nil, out)
	return out.GetUpstream(), err
}

// UpstreamAction is one of the verbs on an upstream: pause, resume or reconnect.
type UpstreamAction string

// The upstream actions.
const (
	Pause     UpstreamAction = "pause"
	Resume    UpstreamAction = "resume"
	Reconnect UpstreamAction = "reconnect"
)

// ActOnUpstream pauses, resumes or reconnects an upstream and returns it as it is after.
func (c *Client) ActOnUpstream(ctx context.Context, name string, a UpstreamAction) (*smppgwv1.Upstream, error) {
	switch a {
	case Pause, Resume, Reconnect:
	default:
		return nil, fmt.Errorf("unknown upstream action %q", a)
	}
	// The three answers have the same shape: one upstream.
	out := &smppgwv1.PauseUpstreamResponse{}
	err := c.call(ctx, http.MethodPost, "/v1/admin/upstreams/"+esc(name)+":"+string(a), nil, struct{}{}, out)
	return out.GetUpstream(), err
}

// UpdateUpstream changes the fields of upstream name present in fields, keyed by their JSON names
// (binds, maxSubmitsPerSecond); only upstreams added through the API can be changed.
func (c *Client) UpdateUpstream(ctx context.Context, name string, fields map[string]any) (*smppgwv1.Upstream, error) {
	out := &smppgwv1.UpdateUpstreamResponse{}
	err := c.call(ctx, http.MethodPatch, "/v1/admin/upstreams/"+esc(name), nil, fields, out)
	return out.GetUpstream(), err
}

// Accounts.

// ListAccounts returns every account, following the pages.
func (c *Client) ListAccounts(ctx context.Context) (*smppgwv1.ListAccountsResponse, error) {
	all := &smppgwv1.ListAccountsResponse{}
	for token := ""; ; {
		page := &smppgwv1.ListAccountsResponse{}
		if err := c.call(ctx, http.MethodGet, "/v1/admin/accounts", pageQuery(token), nil, page); err != nil {
			return nil, err
		}
		all.Accounts = append(all.Accounts, page.Accounts...)
		if token = page.NextPageToken; token == "" {
			return all, nil
		}
	}
}

// GetAccount returns one account.
func (c *Client) GetAccount(ctx context.Context, systemID string) (*smppgwv1.Account, error) {
	out := &smppgwv1.GetAccountResponse{}
	err := c.call(ctx, http.MethodGet, "/v1/admin/accounts/"+esc(systemID), nil, nil, out)
	return out.GetAccount(), err
}

// CreateAccount creates a; its password is required.
func (c *Client) CreateAccount(ctx context.Context, a *smppgwv1.Account) (*smppgwv1.Account, error) {
	out := &smppgwv1.CreateAccountResponse{}
	err := c.call(ctx, http.MethodPost, "/v1/admin/accounts", nil, a, out)
	return out.GetAccount(), err
}

// UpdateAccount changes the fields of account systemID present in fields, keyed by their JSON
// names (maxBinds, disabled, ...): a field present with its zero value is set to it, which the
// API's protojson body would leave out.
func (c *Client) UpdateAccount(ctx context.Context, systemID string, fields map[string]any) (*smppgwv1.Account, error) {
	out := &smppgwv1.UpdateAccountResponse{}
	err := c.call(ctx, http.MethodPatch, "/v1/admin/accounts/"+esc(systemID), nil, fields, out)
	return out.GetAccount(), err
}

// DeleteAccount deletes an account, unbinds its sessions and revokes its keys.
func (c *Client) DeleteAccount(ctx context.Context, systemID string) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/accounts/"+esc(systemID), nil, nil, &smppgwv1.DeleteAccountResponse{})
}

// API keys.

// ListAPIKeys returns every key, of account when it is not empty, following the pages.
func (c *Client) ListAPIKeys(ctx context.Context, account string) (*smppgwv1.ListApiKeysResponse, error) {
	all := &smppgwv1.ListApiKeysResponse{}
	for token := ""; ; {
		page := &smppgwv1.ListApiKeysResponse{}
		if err := c.call(ctx, http.MethodGet, "/v1/admin/api-keys", pageQuery(token, "account", account), nil, page); err != nil {
			return nil, err
		}
		all.ApiKeys = append(all.ApiKeys, page.ApiKeys...)
		if token = page.NextPageToken; token == "" {
			return all, nil
		}
	}
}

// CreateAPIKey creates a key; the answer carries its secret, the only time it is shown.
func (c *Client) CreateAPIKey(ctx context.Context, k *smppgwv1.ApiKey) (*smppgwv1.CreateApiKeyResponse, error) {
	out := &smppgwv1.CreateApiKeyResponse{}
	return out, c.call(ctx, http.MethodPost, "/v1/admin/api-keys", nil, k, out)
}

// RevokeAPIKey revokes a key.
func (c *Client) RevokeAPIKey(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/api-keys/"+esc(id), nil, nil, &smppgwv1.RevokeApiKeyResponse{})
}

// Routes.

// ListRoutes returns the routing table in evaluation order.
func (c *Client) ListRoutes(ctx context.Context) (*smppgwv1.ListRoutesResponse, error) {
	out := &smppgwv1.ListRoutesResponse{}
	return out, c.call(ctx, http.MethodGet, "/v1/admin/routes", nil, nil, out)
}

// GetRoute returns one route.
func (c *Client) GetRoute(ctx context.Context, id string) (*smppgwv1.Route, error) {
	out := &smppgwv1.GetRouteResponse{}
	err := c.call(ctx, http.MethodGet, "/v1/admin/routes/"+esc(id), nil, nil, out)
	return out.GetRoute(), err
}

// CreateRoute adds a route.
func (c *Client) CreateRoute(ctx context.Context, r *smppgwv1.Route) (*smppgwv1.Route, error) {
	out := &smppgwv1.CreateRouteResponse{}
	err := c.call(ctx, http.MethodPost, "/v1/admin/routes", nil, r, out)
	return out.GetRoute(), err
}

// DeleteRoute removes a route.
func (c *Client) DeleteRoute(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/routes/"+esc(id), nil, nil, &smppgwv1.DeleteRouteResponse{})
}

// Number rules.

// ListNumberRules returns the number normalisation rules in force, by scope then name.
func (c *Client) ListNumberRules(ctx context.Context) (*smppgwv1.ListNumberRulesResponse, error) {
	out := &smppgwv1.ListNumberRulesResponse{}
	return out, c.call(ctx, http.MethodGet, "/v1/admin/number-rules", nil, nil, out)
}

// SetNumberRules sets the rules of r.Scope ("account" or "upstream") and r.Name, replacing any
// configured or stored before.
func (c *Client) SetNumberRules(ctx context.Context, r *smppgwv1.NumberRules) (*smppgwv1.NumberRules, error) {
	out := &smppgwv1.SetNumberRulesResponse{}
	err := c.call(ctx, http.MethodPut, "/v1/admin/number-rules/"+esc(r.GetScope())+"/"+esc(r.GetName()), nil, r, out)
	return out.GetRules(), err
}

// DeleteNumberRules removes the stored rules of scope and name.
func (c *Client) DeleteNumberRules(ctx context.Context, scope, name string) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/number-rules/"+esc(scope)+"/"+esc(name), nil, nil, &smppgwv1.DeleteNumberRulesResponse{})
}

// ListMoRoutes returns the MO routing table in evaluation order.
func (c *Client) ListMoRoutes(ctx context.Context) (*smppgwv1.ListMoRoutesResponse, error) {
	out := &smppgwv1.ListMoRoutesResponse{}
	return out, c.call(ctx, http.MethodGet, "/v1/admin/mo-routes", nil, nil, out)
}

// CreateMoRoute adds an MO route.
func (c *Client) CreateMoRoute(ctx context.Context, r *smppgwv1.MoRoute) (*smppgwv1.MoRoute, error) {
	out := &smppgwv1.CreateMoRouteResponse{}
	err := c.call(ctx, http.MethodPost, "/v1/admin/mo-routes", nil, r, out)
	return out.GetMoRoute(), err
}

// DeleteMoRoute removes an MO route.
func (c *Client) DeleteMoRoute(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/admin/mo-routes/"+esc(id), nil, nil, &smppgwv1.DeleteMoRouteResponse{})
}

// TestRoute tells where a message to destination from account (empty: routes for every account)
// would go, sending nothing.
func (c *Client) TestRoute(ctx context.Context, destination, account string) (*smppgwv1.TestRouteResponse, error) {
	out := &smppgwv1.TestRouteResponse{}
	q := pageQuery("", "destination", destination, "account", account)
	return out, c.call(ctx, http.MethodGet, "/v1/admin/routes:test", q, nil, out)
}

// Outbind asks an ESME to bind to the gateway and returns the session it bound.
func (c *Client) Outbind(ctx context.Context, req *smppgwv1.OutbindRequest) (*smppgwv1.Session, error) {
	out := &smppgwv1.OutbindResponse{}
	// The gateway waits for the ESME's bind up to bind_timeout (default 30s): wait a little longer.
	wait := 30 * time.Second
	if d := req.GetBindTimeout(); d != nil {
		wait = d.AsDuration()
	}
	cc := *c
	cc.timeout = max(c.timeout, wait+5*time.Second)
	err := cc.call(ctx, http.MethodPost, "/v1/admin/outbind", nil, req, out)
	return out.GetSession(), err
}

// GetStats returns the gateway's statistics.
func (c *Client) GetStats(ctx context.Context) (*smppgwv1.GetStatsResponse, error) {
	out := &smppgwv1.GetStatsResponse{}
	return out, c.call(ctx, http.MethodGet, "/v1/admin/stats", nil, nil, out)
}

// Receipts.

// ReceiptsRequest says which receipts to follow.
type ReceiptsRequest struct {
	// Account whose receipts to follow; empty for the key's own account. Another account needs
	// a key with the admin scope.
	Account string
	// MessageIDs limits the stream to these messages; empty for all of the account's.
	MessageIDs []string
	// Opened, when set, is called once the gateway has subscribed the stream: receipts received
	// from then on are not missed.
	Opened func()
}

// StreamReceipts follows the receipt stream (GET /v1/messages:streamReceipts, newline-delimited
// JSON) and calls fn with each receipt and its JSON until ctx ends (then it returns nil), the
// stream ends or fn returns an error (which it returns). The REST message API takes API keys
// only, not an operator's Basic credentials.
func (c *Client) StreamReceipts(ctx context.Context, r ReceiptsRequest, fn func(rec *smppgwv1.Receipt, raw json.RawMessage) error) error {
	const path = "/v1/messages:streamReceipts"
	q := url.Values{}
	if r.Account != "" {
		q.Set("account", r.Account)
	}
	for _, id := range r.MessageIDs {
		q.Add("messageIds", id)
	}
	// The stream lasts until ctx ends; only the wait for its first answer is bounded.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	late := time.AfterFunc(c.timeout, cancel)
	req, err := c.request(sctx, http.MethodGet, path, q, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if !late.Stop() && ctx.Err() == nil {
		if err == nil {
			resp.Body.Close()
		}
		return fmt.Errorf("GET %s: no answer within %v", path, c.timeout)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("GET %s: %w", path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return errorFrom(http.MethodGet, path, resp)
	}
	if r.Opened != nil {
		r.Opened()
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		// grpc-gateway wraps each message: {"result": {...}} or, when the stream fails, {"error": {...}}.
		var msg struct {
			Result *struct {
				Receipt json.RawMessage `json:"receipt"`
			} `json:"result"`
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return fmt.Errorf("GET %s: a line of the stream is not JSON: %w", path, err)
		}
		if msg.Error != nil {
			// The stream's 200 is sent already: give the status the code would have had.
			return &Error{Method: http.MethodGet, Path: path, Status: runtime.HTTPStatusFromCode(codes.Code(msg.Error.Code)), Message: msg.Error.Message}
		}
		if msg.Result == nil || len(msg.Result.Receipt) == 0 {
			continue
		}
		rec := &smppgwv1.Receipt{}
		if err := unmarshal.Unmarshal(msg.Result.Receipt, rec); err != nil {
			return fmt.Errorf("GET %s: a receipt of the stream cannot be read: %w", path, err)
		}
		if err := fn(rec, msg.Result.Receipt); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("GET %s: %w", path, err)
	}
	return fmt.Errorf("GET %s: the gateway ended the stream", path)
}
