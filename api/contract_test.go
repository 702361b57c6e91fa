package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/api/openapi"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Tests of the contract's edges: what REST and gRPC refuse, with which status and in which words.

// goPrefix matches the start of an error text from a Go package ("pdu: submit_sm: ...",
// "proto: (line 1:5): ...", "strconv.ParseInt: ...", `parse "x": ...`), which API users must not see.
var goPrefix = regexp.MustCompile(`(^|: )(proto|protojson|gateway|store|pdu|api|json|http|grpc|runtime|strconv\.\w+|parse "[^"]*"):`)

// in is e reporting to t, for subtests.
func (e *env) in(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// wantRefusal checks that resp/raw is HTTP code with a google.rpc.Status body whose message starts
// with field and carries no Go package prefix.
func wantRefusal(t *testing.T, resp *http.Response, raw []byte, code int, field string) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, code, raw)
	}
	var st restStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("error body %s: %v", raw, err)
	}
	if !strings.HasPrefix(st.Message, field) {
		t.Errorf("message %q does not start with %q", st.Message, field)
	}
	if goPrefix.MatchString(st.Message) {
		t.Errorf("message %q carries a Go package prefix", st.Message)
	}
}

// TestRESTRefusesWhatItDoesNotUnderstand: unknown enum names, unknown numbers and unknown fields
// are refused with 400 naming the field, rather than read as the default (issue 11, defect 12:
// "FINAL" was stored as NONE and the receipt lost, "UTF8" sent GSM7, "foo" was accepted).
func TestRESTRefusesWhatItDoesNotUnderstand(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	with := func(k string, v any) map[string]any {
		return map[string]any{"source": "ACME", "destination": "4915112345678", "text": "hello", k: v}
	}
	for _, c := range []struct {
		name   string
		method string
		path   string
		auth   string
		body   any
		field  string
	}{
		{"enum name without prefix", "POST", "/v1/messages", key, with("registeredDelivery", "FINAL"), "registered_delivery"},
		{"unknown enum name", "POST", "/v1/messages", key, with("dataCoding", "UTF8"), "data_coding"},
		{"unknown enum number", "POST", "/v1/messages", key, with("registeredDelivery", 7), "registered_delivery"},
		{"unknown field", "POST", "/v1/messages", key, with("foo", 1), "foo"},
		{"unknown field in a batch", "POST", "/v1/messages:submitBatch", key,
			map[string]any{"messages": []any{with("dataCoding", "DATA_CODING_GSM7"), with("fooBar", true)}}, "messages[1].fooBar"},
		{"enum of a repeated field", "POST", "/v1/webhooks", key, map[string]any{"url": "https://example.test/", "events": []string{"RECEIPT"}}, "webhook.events[0]"},
		{"unknown field of a body field", "POST", "/v1/admin/accounts", basicAuth(), map[string]any{"systemId": "x", "password": "p", "maxBindz": 2}, "account.maxBindz"},
		{"unknown field in a patch", "PATCH", "/v1/admin/accounts/acme", basicAuth(), map[string]any{"nope": true}, "account.nope"},
		{"output-only enum with an unknown number", "POST", "/v1/admin/upstreams", basicAuth(),
			map[string]any{"name": "u", "host": "h", "port": 1, "systemId": "s", "state": 99}, "upstream.state"},
		{"wrong type", "POST", "/v1/messages", key, with("priority", "high"), "priority"},
		{"bytes not base64", "POST", "/v1/messages", key, map[string]any{"source": "A", "destination": "49", "binary": "*"}, "binary"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := e.in(t)
			resp, raw := e.rest(c.method, c.path, c.auth, c.body, nil)
			wantRefusal(t, resp, raw, 400, c.field)
		})
	}
	// Nothing was accepted on the way.
	if msgs, _, err := e.st.ListMessages(context.Background(), store.MessageFilter{Limit: 10}); err != nil || len(msgs) != 0 {
		t.Fatalf("messages stored: %d %v", len(msgs), err)
	}
	// The full names still work, as names and as numbers.
	e.mustREST(200, "POST", "/v1/messages", key, with("registeredDelivery", "REGISTERED_DELIVERY_FINAL"), nil)
	e.mustREST(200, "POST", "/v1/messages", key, with("registeredDelivery", 2), nil)
}

// TestGRPCRefusesUnknownEnumNumbers: proto3 enums are open, so a gRPC caller can send any number;
// every enum field of a request, wherever it is, must hold a value the contract defines.
func TestGRPCRefusesUnknownEnumNumbers(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	ctx := withAuth(context.Background(), key)
	admin := withAuth(context.Background(), basicAuth())
	text := &smppgwv1.SubmitRequest_Text{Text: "x"}
	for _, c := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"submit", func() error {
			_, err := e.msg.Submit(ctx, &smppgwv1.SubmitRequest{Source: "a", Destination: "49", Payload: text, RegisteredDelivery: 9})
			return err
		}, "registered_delivery"},
		{"batch", func() error {
			_, err := e.msg.SubmitBatch(ctx, &smppgwv1.SubmitBatchRequest{Messages: []*smppgwv1.SubmitRequest{
				{Source: "a", Destination: "49", Payload: text}, {Source: "a", Destination: "49", Payload: text, DataCoding: 42}}})
			return err
		}, "messages[1].data_coding"},
		{"output-only field", func() error {
			_, err := e.admin.AddUpstream(admin, &smppgwv1.AddUpstreamRequest{Upstream: &smppgwv1.Upstream{Name: "u", Host: "h", Port: 1, SystemId: "s", State: 99}})
			return err
		}, "upstream.state"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), c.field) {
				t.Fatalf("%v, want InvalidArgument naming %s", err, c.field)
			}
		})
	}
}

// TestWebhookReceiptCarriesClientReference: the contract says a receipt echoes the submitter's
// client_reference, in webhooks as in the receipt stream (issue 11, defect 14).
func TestWebhookReceiptCarriesClientReference(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	hook := newHookServer(t, 0)
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": hook.URL, "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, nil)
	var sub submitAnswer
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "ACME", "destination": "4915112345678", "text": "hi", "clientReference": "order-42"}, &sub)
	eventually(t, "the dispatcher to subscribe", func() bool { return gw.subscribers() == 1 })
	gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: sub.MessageID,
		Receipt: &store.Receipt{MessageID: sub.MessageID, State: pdu.DELIVERED}, At: time.Now()})
	eventually(t, "the receipt POST", func() bool { return len(hook.got()) >= 1 })
	var d struct {
		Receipt struct {
			MessageID       string `json:"messageId"`
			ClientReference string `json:"clientReference"`
		} `json:"receipt"`
	}
	if err := json.Unmarshal(hook.got()[0].body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Receipt.MessageID != sub.MessageID || d.Receipt.ClientReference != "order-42" {
		t.Fatalf("webhook body %s: want message %s with clientReference order-42", hook.got()[0].body, sub.MessageID)
	}
}

// countingReader hands out n bytes of JSON string content and counts what was read.
type countingReader struct {
	n    int64
	read atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	left := c.n - c.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), left)]
	for i := range p {
		p[i] = 'a'
	}
	c.read.Add(int64(len(p)))
	return len(p), nil
}

// TestRESTStatuses: an oversized body is 413, a body without credentials is refused with 401
// before it is read, a wrong method is 405 with Allow (issue 11, defect 15: 400 and 501 before).
func TestRESTStatuses(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")

	t.Run("oversized body", func(t *testing.T) {
		e := e.in(t)
		resp, raw := e.rest("POST", "/v1/messages", key, `{"source":"`+strings.Repeat("a", 5<<20)+`"}`, nil)
		wantRefusal(t, resp, raw, http.StatusRequestEntityTooLarge, "request body")
	})

	t.Run("no credentials, big body", func(t *testing.T) {
		e := e.in(t)
		// With Expect: 100-continue the client sends the body only once the server starts reading it.
		body := &countingReader{n: 64 << 20}
		req, err := http.NewRequest("POST", e.base+"/v1/messages", io.MultiReader(strings.NewReader(`{"text":"`), body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Expect", "100-continue")
		client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{ExpectContinueTimeout: 20 * time.Second}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantRefusal(t, resp, raw, http.StatusUnauthorized, "")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Error("401 without WWW-Authenticate")
		}
		if n := body.read.Load(); n != 0 {
			t.Errorf("the server read %d bytes of an unauthenticated body", n)
		}
	})

	t.Run("wrong method", func(t *testing.T) {
		e := e.in(t)
		for _, c := range []struct{ method, path, allow string }{
			{"PUT", "/v1/messages", "GET, POST"},
			{"DELETE", "/v1/messages/m123", "GET"},
			{"PATCH", "/v1/messages:submitBatch", "POST"},
			{"POST", "/v1/admin/accounts/acme", "DELETE, GET, PATCH"},
		} {
			auth := key
			if strings.HasPrefix(c.path, "/v1/admin/") {
				auth = basicAuth()
			}
			resp, raw := e.rest(c.method, c.path, auth, nil, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != c.allow {
				t.Errorf("%s %s: HTTP %d Allow %q, want 405 Allow %q: %s", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), c.allow, raw)
			}
		}
		e.mustREST(404, "GET", "/v1/nothing-here", key, nil, nil)
	})
}

// TestErrorMessagesInUserTerms: what an API user reads names the field in the API's terms, never a
// Go package ("proto: ...", "gateway: client password ...", `parse "...": ...`) (issue 11, defect 16).
func TestErrorMessagesInUserTerms(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	op := basicAuth()
	for _, c := range []struct {
		name, method, path, auth string
		body                     any
		field                    string
	}{
		{"malformed json", "POST", "/v1/messages", key, `{"source":`, "request body"},
		{"not an object", "POST", "/v1/messages", key, `[1]`, "request body"},
		{"bad timestamp", "POST", "/v1/messages", key, map[string]any{"source": "A", "destination": "49", "text": "x", "scheduleTime": "tomorrow"}, "schedule_time"},
		{"bad duration", "POST", "/v1/messages", key, map[string]any{"source": "A", "destination": "49", "text": "x", "validityPeriod": "1 day"}, "validity_period"},
		{"bad url", "POST", "/v1/webhooks", key, map[string]any{"url": "http://[::1", "events": []string{"WEBHOOK_EVENT_MO"}}, "webhook.url"},
		{"long upstream password", "POST", "/v1/admin/upstreams", op, map[string]any{"name": "u", "host": "h", "port": 1, "systemId": "s", "password": "123456789"}, "upstream.password"},
		{"long upstream system_type", "POST", "/v1/admin/upstreams", op, map[string]any{"name": "u", "host": "h", "port": 1, "systemId": "s", "systemType": "abcdefghijklm"}, "upstream.system_type"},
		{"long upstream system_id", "POST", "/v1/admin/upstreams", op, map[string]any{"name": "u", "host": "h", "port": 1, "systemId": "abcdefghijklmnop"}, "upstream.system_id"},
		{"account id with NUL", "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "a\x00b", "password": "p"}, "account.system_id"},
		{"query of the wrong type", "GET", "/v1/messages?pageSize=abc", key, nil, "page_size"},
		{"unknown query enum", "GET", "/v1/messages?status=DELIVERED", key, nil, "status"},
		{"unknown query parameter", "GET", "/v1/messages?pagesize=10", key, nil, "pagesize"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := e.in(t)
			resp, raw := e.rest(c.method, c.path, c.auth, c.body, nil)
			wantRefusal(t, resp, raw, 400, c.field)
		})
	}
}

// TestContractFieldsRoundTrip: every field the contract advertises is kept, or is gone from the
// contract (issue 11, defect 17). Descriptions are kept; the rest is not in the proto or OpenAPI.
func TestContractFieldsRoundTrip(t *testing.T) {
	e, _ := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	op := basicAuth()
	e.mustREST(200, "POST", "/v1/admin/upstreams", op, map[string]any{"name": "up1", "host": "127.0.0.1", "port": 2775, "systemId": "gw"}, nil)

	t.Run("account description", func(t *testing.T) {
		e := e.in(t)
		e.mustREST(200, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "bob", "password": "p", "description": "Bob's shop"}, nil)
		var got struct {
			Account struct {
				Description string `json:"description"`
			} `json:"account"`
		}
		e.mustREST(200, "GET", "/v1/admin/accounts/bob", op, nil, &got)
		if got.Account.Description != "Bob's shop" {
			t.Fatalf("description read back %q", got.Account.Description)
		}
		e.mustREST(200, "PATCH", "/v1/admin/accounts/bob", op, map[string]any{"description": "closed"}, nil)
		e.mustREST(200, "GET", "/v1/admin/accounts/bob", op, nil, &got)
		if got.Account.Description != "closed" {
			t.Fatalf("description after update %q", got.Account.Description)
		}
	})
	t.Run("route description and account", func(t *testing.T) {
		e := e.in(t)
		var created struct {
			Route struct {
				RouteID     string `json:"routeId"`
				Description string `json:"description"`
				Account     string `json:"account"`
			} `json:"route"`
		}
		e.mustREST(200, "POST", "/v1/admin/routes", op, map[string]any{"prefix": "49", "upstreams": []string{"up1"}, "account": "acme", "description": "Germany"}, &created)
		var got = created
		e.mustREST(200, "GET", "/v1/admin/routes/"+created.Route.RouteID, op, nil, &got)
		if got.Route.Description != "Germany" || got.Route.Account != "acme" {
			t.Fatalf("route read back %+v", got.Route)
		}
	})
	t.Run("webhook description", func(t *testing.T) {
		e := e.in(t)
		var created struct {
			Webhook struct {
				WebhookID   string `json:"webhookId"`
				Description string `json:"description"`
			} `json:"webhook"`
		}
		e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": "https://example.test/", "events": []string{"WEBHOOK_EVENT_MO"}, "description": "CRM"}, &created)
		var got = created
		e.mustREST(200, "GET", "/v1/webhooks/"+created.Webhook.WebhookID, key, nil, &got)
		if got.Webhook.Description != "CRM" {
			t.Fatalf("webhook description read back %q", got.Webhook.Description)
		}
	})
	t.Run("fields out of the contract", func(t *testing.T) {
		e := e.in(t)
		var doc struct {
			Definitions map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"definitions"`
		}
		if err := json.Unmarshal(openapi.JSON(), &doc); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			msg    proto.Message
			def    string
			fields []protoreflect.Name
		}{
			{&smppgwv1.Account{}, "Account", []protoreflect.Name{"window_size"}},
			{&smppgwv1.Route{}, "Route", []protoreflect.Name{"disabled", "accounts"}},
			{&smppgwv1.SubmitRequest{}, "SubmitRequest", []protoreflect.Name{"udhi"}},
		} {
			fields := c.msg.ProtoReflect().Descriptor().Fields()
			props, ok := doc.Definitions[c.def]
			if !ok {
				t.Fatalf("OpenAPI has no %s", c.def)
			}
			for _, f := range c.fields {
				if fd := fields.ByName(f); fd != nil {
					t.Errorf("%s.%s is still in the proto", c.def, f)
				}
				for p := range props.Properties {
					if strings.EqualFold(p, strings.ReplaceAll(string(f), "_", "")) {
						t.Errorf("%s.%s is still in the OpenAPI document", c.def, p)
					}
				}
			}
		}
		resp, raw := e.rest("POST", "/v1/admin/accounts", op, map[string]any{"systemId": "w", "password": "p", "windowSize": 5}, nil)
		wantRefusal(t, resp, raw, 400, "account.windowSize")
	})
}
