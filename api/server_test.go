package api_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/api"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Unit tests of the API layer: a real api.Server on loopback sockets, the embedded store, and
// fakeGateway in place of the running gateway (the end-to-end tests with the real gateway are in
// e2e_test.go).

func newFakeEnv(t *testing.T) (*env, *fakeGateway) {
	st := openEmbedded(t)
	gw := newFakeGateway(st)
	return startEnv(t, gw, st, nil), gw
}

type submitAnswer struct {
	MessageID  string `json:"messageId"`
	PartCount  int    `json:"partCount"`
	DataCoding string `json:"dataCoding"`
}

type restStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func TestRESTSubmitGetList(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")

	long := strings.Repeat("0123456789", 20) // 200 GSM characters: two parts
	var sub submitAnswer
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{
		"source": "ACME", "destination": "+4915112345678", "text": long,
		"registeredDelivery": "REGISTERED_DELIVERY_FINAL", "clientReference": "order-7", "priority": 1,
	}, &sub)
	if sub.MessageID == "" || sub.PartCount != 2 || sub.DataCoding != "DATA_CODING_GSM7" {
		t.Fatalf("submit answer %+v, want an id, 2 parts, GSM7", sub)
	}
	var got struct {
		Message struct {
			MessageID          string `json:"messageId"`
			Account            string `json:"account"`
			Text               string `json:"text"`
			Status             string `json:"status"`
			PartCount          int    `json:"partCount"`
			Parts              []any  `json:"parts"`
			ClientReference    string `json:"clientReference"`
			RegisteredDelivery string `json:"registeredDelivery"`
			Priority           int    `json:"priority"`
		} `json:"message"`
	}
	e.mustREST(200, "GET", "/v1/messages/"+sub.MessageID, key, nil, &got)
	m := got.Message
	stored, err := e.st.GetMessage(context.Background(), sub.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageID != sub.MessageID || m.Account != "acme" || m.Text != long || m.Status != "MESSAGE_STATUS_"+stored.Status.String() ||
		m.PartCount != 2 || len(m.Parts) != 2 || m.ClientReference != "order-7" || m.RegisteredDelivery != "REGISTERED_DELIVERY_FINAL" || m.Priority != 1 {
		t.Fatalf("GetMessage = %+v", m)
	}

	// A second message, then listing with and without filters, page by page.
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "ACME", "destination": "4915100000000", "text": "hi"}, &sub)
	var list struct {
		Messages []struct {
			MessageID       string `json:"messageId"`
			ClientReference string `json:"clientReference"`
		} `json:"messages"`
		NextPageToken string `json:"nextPageToken"`
	}
	e.mustREST(200, "GET", "/v1/messages?clientReference=order-7", key, nil, &list)
	if len(list.Messages) != 1 || list.Messages[0].ClientReference != "order-7" {
		t.Fatalf("filtered list = %+v", list)
	}
	e.mustREST(200, "GET", "/v1/messages?pageSize=1", key, nil, &list)
	if len(list.Messages) != 1 || list.NextPageToken == "" {
		t.Fatalf("first page = %+v", list)
	}
	first := list.Messages[0].MessageID
	e.mustREST(200, "GET", "/v1/messages?pageSize=1&pageToken="+list.NextPageToken, key, nil, &list)
	if len(list.Messages) != 1 || list.Messages[0].MessageID == first || list.NextPageToken != "" {
		t.Fatalf("second page = %+v (first %s)", list, first)
	}
	e.mustREST(200, "GET", "/v1/messages?status=MESSAGE_STATUS_DELIVERED", key, nil, &list)
	if len(list.Messages) != 0 {
		t.Fatalf("no message is delivered, list = %+v", list)
	}

	// Another account's key sees neither the message nor the listing.
	e.createAccount("other", "pw2")
	otherKey := e.createKey("other", "SCOPE_READ")
	e.mustREST(404, "GET", "/v1/messages/"+sub.MessageID, otherKey, nil, nil)
	e.mustREST(200, "GET", "/v1/messages", otherKey, nil, &list)
	if len(list.Messages) != 0 {
		t.Fatalf("other account lists %+v", list)
	}
	e.mustREST(403, "GET", "/v1/messages?account=acme", otherKey, nil, nil)
}

func TestGRPCSubmitBatchAndGet(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	ctx := withAuth(context.Background(), e.createKey("acme", "SCOPE_SEND", "SCOPE_READ"))

	resp, err := e.msg.Submit(ctx, &smppgwv1.SubmitRequest{Source: "123", Destination: "4917000000", Payload: &smppgwv1.SubmitRequest_Text{Text: "Grüße €"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.PartCount != 1 || resp.DataCoding != smppgwv1.DataCoding_DATA_CODING_GSM7 {
		t.Fatalf("Submit = %v", resp)
	}
	got, err := e.msg.GetMessage(ctx, &smppgwv1.GetMessageRequest{MessageId: resp.MessageId})
	if err != nil {
		t.Fatal(err)
	}
	if got.Message.GetText() != "Grüße €" {
		t.Fatalf("text round trip: %q", got.Message.GetText())
	}
	bin, err := e.msg.Submit(ctx, &smppgwv1.SubmitRequest{Source: "123", Destination: "4917000000", Payload: &smppgwv1.SubmitRequest_Binary{Binary: []byte{0, 1, 2, 0xff}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err = e.msg.GetMessage(ctx, &smppgwv1.GetMessageRequest{MessageId: bin.MessageId})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Message.GetBinary()) != "\x00\x01\x02\xff" || got.Message.DataCoding != smppgwv1.DataCoding_DATA_CODING_BINARY {
		t.Fatalf("binary round trip: %v", got.Message)
	}

	gw.failNext(gateway.ErrThrottled)                   // the second message of the batch is throttled
	_, _ = e.msg.Submit(ctx, &smppgwv1.SubmitRequest{}) // refused before the gateway: does not consume failNext
	gw.failNext(nil)
	batch, err := e.msg.SubmitBatch(ctx, &smppgwv1.SubmitBatchRequest{Messages: []*smppgwv1.SubmitRequest{
		{Source: "1", Destination: "491", Payload: &smppgwv1.SubmitRequest_Text{Text: "a"}},
		{Source: "1", Destination: "49x", Payload: &smppgwv1.SubmitRequest_Text{Text: "b"}},
		{Source: "1", Destination: "492", Payload: &smppgwv1.SubmitRequest_Text{Text: ""}},
		{Source: "1", Destination: "493", Payload: &smppgwv1.SubmitRequest_Text{Text: "d"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(batch.Results) != 4 {
		t.Fatalf("batch results: %v", batch.Results)
	}
	for i, want := range []codes.Code{codes.OK, codes.InvalidArgument, codes.InvalidArgument, codes.OK} {
		r := batch.Results[i]
		if r.Index != uint32(i) {
			t.Errorf("result %d has index %d", i, r.Index)
		}
		if want == codes.OK && r.GetAccepted().GetMessageId() == "" {
			t.Errorf("result %d: %v, want accepted", i, r)
		}
		if want != codes.OK && codes.Code(r.GetError().GetCode()) != want {
			t.Errorf("result %d: %v, want %v", i, r, want)
		}
	}
	if !strings.Contains(batch.Results[1].GetError().GetMessage(), "destination") || !strings.Contains(batch.Results[2].GetError().GetMessage(), "text") {
		t.Errorf("batch errors do not name the field: %v", batch.Results)
	}
	if _, err := e.msg.SubmitBatch(ctx, &smppgwv1.SubmitBatchRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty batch: %v", err)
	}
}

func TestBadInputsAndErrorMapping(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	ok := map[string]any{"source": "ACME", "destination": "4915112345678", "text": "hello"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for a, b := range ok {
			m[a] = b
		}
		for i := 0; i < len(kv); i += 2 {
			if k := kv[i].(string); kv[i+1] == nil {
				delete(m, k)
			} else {
				m[k] = kv[i+1]
			}
		}
		return m
	}
	cases := []struct {
		name  string
		body  any
		code  int
		field string
	}{
		{"bad number", with("destination", "49-abc"), 400, "destination"},
		{"missing destination", with("destination", nil), 400, "destination"},
		{"missing source", with("source", nil), 400, "source"},
		// The gateway's rules, the same a submit_sm is held to (gateway.TestSMPPAndAPIValidateAlike).
		{"destination not a number", with("destination", "not-a-number"), 400, "destination: not a number"},
		{"empty text and empty source", with("source", nil, "text", ""), 400, "source: is required"},
		{"alphanumeric sender too long", with("source", "ACMESHOPPING"), 400, "source: 12 characters, at most 11"},
		{"empty binary", with("text", nil, "binary", ""), 400, "binary: is empty"},
		{"empty text", with("text", ""), 400, "text"},
		{"no payload", with("text", nil), 400, "text"},
		{"too long", with("text", strings.Repeat("x", 153*255+1)), 400, "text"},
		{"unknown data coding", with("dataCoding", 42), 400, "data_coding"},
		{"binary coding with text", with("dataCoding", "DATA_CODING_BINARY"), 400, "data_coding"},
		{"priority", with("priority", 9), 400, "priority"},
		{"client reference", with("clientReference", strings.Repeat("r", 65)), 400, "client_reference"},
		{"validity", with("validityPeriod", "-5s"), 400, "validity_period"},
		{"malformed json", `{"source":`, 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, raw := e.rest("POST", "/v1/messages", key, c.body, nil)
			if resp.StatusCode != c.code {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, c.code, raw)
			}
			var st restStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatalf("error body %s: %v", raw, err)
			}
			if st.Code != int(codes.InvalidArgument) || !strings.HasPrefix(st.Message, c.field) {
				t.Fatalf("error %+v does not name %q", st, c.field)
			}
		})
	}
	for _, c := range []struct {
		err  error
		http int
		grpc codes.Code
	}{
		{gateway.ErrThrottled, 429, codes.ResourceExhausted},
		{fmt.Errorf("write: %w", store.ErrUnavailable), 503, codes.Unavailable},
		{gateway.ErrNoRoute, 400, codes.FailedPrecondition},
		{errBoom, 500, codes.Internal},
	} {
		gw.failNext(c.err)
		resp, raw := e.rest("POST", "/v1/messages", key, ok, nil)
		if resp.StatusCode != c.http || strings.Contains(string(raw), "boom") {
			t.Errorf("%v: HTTP %d %s, want %d without internals", c.err, resp.StatusCode, raw, c.http)
		}
		gw.failNext(c.err)
		_, err := e.msg.Submit(withAuth(context.Background(), key), &smppgwv1.SubmitRequest{Source: "a", Destination: "49", Payload: &smppgwv1.SubmitRequest_Text{Text: "x"}})
		if status.Code(err) != c.grpc {
			t.Errorf("%v: gRPC %v, want %v", c.err, err, c.grpc)
		}
	}
	e.mustREST(404, "GET", "/v1/messages/nope", key, nil, nil)
	e.mustREST(400, "GET", "/v1/messages?pageToken=%21%21", key, nil, nil)
}

func TestAuthFailures(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	send := e.createKey("acme", "SCOPE_SEND")
	read := e.createKey("acme", "SCOPE_READ")
	body := map[string]any{"source": "a", "destination": "49", "text": "x"}

	check401 := func(path, method, auth string, wantBasic bool) {
		t.Helper()
		resp, raw := e.rest(method, path, auth, nil, nil)
		if resp.StatusCode != 401 {
			t.Fatalf("%s %s with %q: HTTP %d, want 401: %s", method, path, auth, resp.StatusCode, raw)
		}
		ch := resp.Header.Values("WWW-Authenticate")
		if !slices.Contains(ch, `Bearer realm="smppgw"`) {
			t.Errorf("%s: WWW-Authenticate %q lacks Bearer", path, ch)
		}
		hasBasic := slices.ContainsFunc(ch, func(s string) bool { return strings.HasPrefix(s, "Basic ") })
		if hasBasic != wantBasic {
			t.Errorf("%s: WWW-Authenticate %q, Basic wanted: %v", path, ch, wantBasic)
		}
	}
	check401("/v1/messages", "GET", "", false)
	check401("/v1/messages", "GET", "Bearer sgw_0123456789abcdef_nope", false)
	check401("/v1/messages", "GET", "Bearer garbage", false)
	check401("/v1/messages", "GET", basicAuth(), false) // Basic is for admin endpoints only
	check401("/v1/admin/sessions", "GET", "", true)
	check401("/v1/admin/sessions", "GET", "Basic "+"b3BzOndyb25n", true) // ops:wrong
	check401("/v1/admin/sessions", "GET", strings.Replace(send, "sgw_", "sgw_x", 1), true)

	if resp, raw := e.rest("POST", "/v1/messages", read, body, nil); resp.StatusCode != 403 {
		t.Errorf("submit with a read key: HTTP %d %s", resp.StatusCode, raw)
	}
	if resp, raw := e.rest("GET", "/v1/messages", send, nil, nil); resp.StatusCode != 403 {
		t.Errorf("list with a send key: HTTP %d %s", resp.StatusCode, raw)
	}
	if resp, raw := e.rest("GET", "/v1/admin/stats", send, nil, nil); resp.StatusCode != 403 {
		t.Errorf("admin with a send key: HTTP %d %s", resp.StatusCode, raw)
	}
	e.mustREST(200, "POST", "/v1/messages", send, body, nil)
	e.mustREST(200, "PATCH", "/v1/admin/accounts/acme", basicAuth(), map[string]any{"disabled": true}, nil)
	check401("/v1/messages", "POST", send, false)
	e.mustREST(200, "PATCH", "/v1/admin/accounts/acme", basicAuth(), map[string]any{"disabled": false}, nil)
	e.mustREST(200, "POST", "/v1/messages", send, body, nil)

	// gRPC: the same codes.
	bg := context.Background()
	if _, err := e.msg.ListMessages(bg, &smppgwv1.ListMessagesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("gRPC without credentials: %v", err)
	}
	if _, err := e.msg.ListMessages(withAuth(bg, send), &smppgwv1.ListMessagesRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC list with a send key: %v", err)
	}
	if _, err := e.admin.GetStats(withAuth(bg, read), &smppgwv1.GetStatsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC admin with a read key: %v", err)
	}
	if _, err := e.admin.GetStats(withAuth(bg, basicAuth()), &smppgwv1.GetStatsRequest{}); err != nil {
		t.Errorf("gRPC admin with operator Basic: %v", err)
	}
	stream, err := e.msg.StreamReceipts(withAuth(bg, send), &smppgwv1.StreamReceiptsRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("gRPC stream with a send key: %v", err)
	}

	// An admin key works on admin endpoints and may act for any account; revoking it ends that.
	adminKey := e.createKey("", "SCOPE_ADMIN")
	e.mustREST(200, "GET", "/v1/admin/stats", adminKey, nil, nil)
	e.mustREST(200, "GET", "/v1/messages?account=acme", adminKey, nil, nil)
	e.mustREST(400, "POST", "/v1/messages", adminKey, body, nil) // no account of its own, none named
	e.mustREST(200, "POST", "/v1/messages", adminKey, map[string]any{"source": "a", "destination": "49", "text": "x", "account": "acme"}, nil)
	var keys struct {
		APIKeys []struct {
			KeyID        string   `json:"keyId"`
			SecretPrefix string   `json:"secretPrefix"`
			Scopes       []string `json:"scopes"`
		} `json:"apiKeys"`
	}
	e.mustREST(200, "GET", "/v1/admin/api-keys", basicAuth(), nil, &keys)
	if len(keys.APIKeys) != 3 {
		t.Fatalf("api keys: %+v", keys)
	}
	for _, k := range keys.APIKeys {
		if strings.HasPrefix(adminKey, "Bearer "+k.SecretPrefix+"_") {
			e.mustREST(200, "DELETE", "/v1/admin/api-keys/"+k.KeyID, basicAuth(), nil, nil)
		}
	}
	check401("/v1/admin/stats", "GET", adminKey, true)
}

func TestStreamReceiptsRESTAndGRPC(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	var sub submitAnswer
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "a", "destination": "491", "text": "x", "clientReference": "ref-1"}, &sub)

	// REST: the 200 and headers arrive once subscribed, lines follow as receipts come.
	req, err := http.NewRequest("GET", e.base+"/v1/messages:streamReceipts?messageIds="+sub.MessageID, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: HTTP %d %s", resp.StatusCode, raw)
	}
	// gRPC on the same account.
	gctx, gcancel := context.WithCancel(withAuth(context.Background(), key))
	defer gcancel()
	gs, err := e.msg.StreamReceipts(gctx, &smppgwv1.StreamReceiptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Header(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two stream subscribers and the webhook dispatcher", func() bool { return gw.subscribers() == 3 })

	now := time.Now()
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: "someone-else", Receipt: &store.Receipt{MessageID: "someone-else", State: pdu.DELIVERED}})
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "other", MessageID: sub.MessageID, Receipt: &store.Receipt{MessageID: sub.MessageID, State: pdu.UNDELIVERABLE}})
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: sub.MessageID, At: now,
		Receipt: &store.Receipt{MessageID: sub.MessageID, Upstream: "up1", UpstreamID: "U1", State: pdu.DELIVERED, Received: now}})

	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() {
		t.Fatalf("no NDJSON line: %v", lines.Err())
	}
	var line struct {
		Result struct {
			Receipt struct {
				MessageID         string `json:"messageId"`
				Status            string `json:"status"`
				UpstreamMessageID string `json:"upstreamMessageId"`
				ClientReference   string `json:"clientReference"`
			} `json:"receipt"`
		} `json:"result"`
	}
	if err := json.Unmarshal(lines.Bytes(), &line); err != nil {
		t.Fatalf("line %s: %v", lines.Bytes(), err)
	}
	r := line.Result.Receipt
	if r.MessageID != sub.MessageID || r.Status != "MESSAGE_STATUS_DELIVERED" || r.UpstreamMessageID != "U1" || r.ClientReference != "ref-1" {
		t.Fatalf("REST receipt %+v", r)
	}
	// The gRPC stream has no id filter: it gets acme's other receipt first, then this one.
	for _, want := range []string{"someone-else", sub.MessageID} {
		got, err := gs.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got.Receipt.MessageId != want {
			t.Fatalf("gRPC receipt for %s, want %s", got.Receipt.MessageId, want)
		}
	}
	cancel()
	gcancel()
	eventually(t, "streams to unsubscribe", func() bool { return gw.subscribers() == 1 })
}

// verifySignature checks a Smppgw-Signature header the way a receiver would.
func verifySignature(secret, header string, body []byte) error {
	var t, v1 string
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "t":
			t = v
		case "v1":
			v1 = v
		}
	}
	if _, err := strconv.ParseInt(t, 10, 64); err != nil {
		return fmt.Errorf("bad t in %q", header)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(t + "." + string(body)))
	if want := hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(want), []byte(v1)) {
		return fmt.Errorf("signature %s, want %s", v1, want)
	}
	return nil
}

type hookHit struct {
	body []byte
	sig  string
}

// hookServer answers the first fails POSTs with 500, then 204.
type hookServer struct {
	*httptest.Server
	mu    sync.Mutex
	fails int
	hits  []hookHit
}

func newHookServer(t *testing.T, fails int) *hookServer {
	h := &hookServer{fails: fails}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.hits = append(h.hits, hookHit{body: body, sig: r.Header.Get("Smppgw-Signature")})
		n := len(h.hits)
		h.mu.Unlock()
		if n <= h.fails {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) got() []hookHit {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.hits)
}

type delivery struct {
	EventID   string `json:"eventId"`
	WebhookID string `json:"webhookId"`
	Event     string `json:"event"`
	Attempt   int    `json:"attempt"`
	Receipt   *struct {
		MessageID string `json:"messageId"`
		Status    string `json:"status"`
	} `json:"receipt"`
	Mo *struct {
		Source string `json:"source"`
		Text   string `json:"text"`
	} `json:"mo"`
}

func TestWebhookSignedAndRetried(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	hook := newHookServer(t, 2)
	var created struct {
		Webhook struct {
			WebhookID string   `json:"webhookId"`
			Events    []string `json:"events"`
		} `json:"webhook"`
		SigningSecret string `json:"signingSecret"`
	}
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": hook.URL + "/hook", "events": []string{"WEBHOOK_EVENT_RECEIPT", "WEBHOOK_EVENT_MO"}}, &created)
	if created.SigningSecret == "" || len(created.Webhook.Events) != 2 {
		t.Fatalf("CreateWebhook = %+v", created)
	}
	eventually(t, "the dispatcher to subscribe", func() bool { return gw.subscribers() == 1 })
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: "m1", Receipt: &store.Receipt{MessageID: "m1", State: pdu.DELIVERED}, At: time.Now()})
	eventually(t, "three POSTs (two 500s, then success)", func() bool { return len(hook.got()) >= 3 })
	hits := hook.got()
	var eventID string
	for i, h := range hits[:3] {
		if err := verifySignature(created.SigningSecret, h.sig, h.body); err != nil {
			t.Fatalf("POST %d: %v", i+1, err)
		}
		var d delivery
		if err := json.Unmarshal(h.body, &d); err != nil {
			t.Fatal(err)
		}
		if d.Attempt != i+1 || d.Event != "WEBHOOK_EVENT_RECEIPT" || d.WebhookID != created.Webhook.WebhookID || d.Receipt == nil || d.Receipt.MessageID != "m1" {
			t.Fatalf("POST %d: %s", i+1, h.body)
		}
		if eventID == "" {
			eventID = d.EventID
		} else if d.EventID != eventID {
			t.Fatalf("retry carries event id %s, first was %s", d.EventID, eventID)
		}
	}
	// An MO for acme goes out too; events of other accounts do not.
	gw.Publish(gateway.Event{Kind: gateway.EventMO, Account: "other", MO: &store.Delivery{Account: "other", ShortMessage: []byte("no")}})
	gw.Publish(gateway.Event{Kind: gateway.EventMO, Account: "acme", MO: &store.Delivery{Account: "acme", Source: store.Address{Addr: "4917"}, ShortMessage: []byte("hello")}})
	eventually(t, "the MO POST", func() bool { return len(hook.got()) >= 4 })
	var d delivery
	if err := json.Unmarshal(hook.got()[3].body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Event != "WEBHOOK_EVENT_MO" || d.Mo == nil || d.Mo.Text != "hello" || d.Mo.Source != "4917" {
		t.Fatalf("MO delivery %s", hook.got()[3].body)
	}

	// Listing and removal: after DeleteWebhook nothing more is posted.
	var list struct {
		Webhooks []struct {
			WebhookID string `json:"webhookId"`
		} `json:"webhooks"`
	}
	e.mustREST(200, "GET", "/v1/webhooks", key, nil, &list)
	if len(list.Webhooks) != 1 {
		t.Fatalf("ListWebhooks = %+v", list)
	}
	e.mustREST(200, "GET", "/v1/webhooks/"+created.Webhook.WebhookID, key, nil, nil)
	e.mustREST(200, "DELETE", "/v1/webhooks/"+created.Webhook.WebhookID, key, nil, nil)
	e.mustREST(404, "GET", "/v1/webhooks/"+created.Webhook.WebhookID, key, nil, nil)
	e.mustREST(400, "POST", "/v1/webhooks", key, map[string]any{"url": "ftp://x", "events": []string{"WEBHOOK_EVENT_MO"}}, nil)
	e.mustREST(400, "POST", "/v1/webhooks", key, map[string]any{"url": hook.URL}, nil)
}

func TestWebhookGivesUpAfterRetryWindow(t *testing.T) {
	st := openEmbedded(t)
	gw := newFakeGateway(st)
	e := startEnv(t, gw, st, func(c *api.Config) { c.Webhooks.MaxRetryDuration = 300 * time.Millisecond })
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	hook := newHookServer(t, 1<<30)
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": hook.URL, "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, nil)
	eventually(t, "the dispatcher to subscribe", func() bool { return gw.subscribers() == 1 })
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: "m1", Receipt: &store.Receipt{State: pdu.DELIVERED}})
	eventually(t, "a retry", func() bool { return len(hook.got()) >= 2 })
	// Back-off is at most 100ms and the window 300ms, so the attempts stop; wait well past it.
	var n int
	eventually(t, "attempts to stop", func() bool {
		n = len(hook.got())
		time.Sleep(400 * time.Millisecond)
		return len(hook.got()) == n
	})
	if n > 12 {
		t.Fatalf("%d attempts within a 300ms window with >=10ms back-off", n)
	}
}

// TestWebhookDeletedStopsRetries: once a webhook is removed, its pending retries are dropped.
func TestWebhookDeletedStopsRetries(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	hook := newHookServer(t, 1<<30) // always 500
	var created struct {
		Webhook struct {
			WebhookID string `json:"webhookId"`
		} `json:"webhook"`
	}
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": hook.URL, "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, &created)
	eventually(t, "the dispatcher to subscribe", func() bool { return gw.subscribers() == 1 })
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: "m1", Receipt: &store.Receipt{State: pdu.DELIVERED}})
	eventually(t, "two attempts", func() bool { return len(hook.got()) >= 2 })
	e.mustREST(200, "DELETE", "/v1/webhooks/"+created.Webhook.WebhookID, key, nil, nil)
	// At most one attempt was already under way; back-off is at most 100ms, so 500ms of quiet
	// after that shows the retries stopped.
	n := len(hook.got())
	time.Sleep(500 * time.Millisecond)
	if got := len(hook.got()); got > n+1 {
		t.Fatalf("%d attempts after the webhook was deleted", got-n)
	}
}
