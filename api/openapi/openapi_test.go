package openapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/api/openapi"
)

var services = []protoreflect.FullName{"smppgw.v1.MessageService", "smppgw.v1.AdminService"}

type route struct {
	method, path, operationID string
}

// httpRoutes returns the REST route of every method of the smppgw services, failing the test for a
// method without a google.api.http rule.
func httpRoutes(t *testing.T) []route {
	t.Helper()
	var routes []route
	for _, name := range services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			t.Fatalf("service %s is not registered: %v", name, err)
		}
		sd := d.(protoreflect.ServiceDescriptor)
		if sd.Methods().Len() == 0 {
			t.Fatalf("service %s has no methods", name)
		}
		for i := range sd.Methods().Len() {
			m := sd.Methods().Get(i)
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			if rule == nil {
				t.Errorf("%s has no google.api.http rule", m.FullName())
				continue
			}
			var verb, path string
			switch p := rule.GetPattern().(type) {
			case *annotations.HttpRule_Get:
				verb, path = "get", p.Get
			case *annotations.HttpRule_Post:
				verb, path = "post", p.Post
			case *annotations.HttpRule_Patch:
				verb, path = "patch", p.Patch
			case *annotations.HttpRule_Put:
				verb, path = "put", p.Put
			case *annotations.HttpRule_Delete:
				verb, path = "delete", p.Delete
			default:
				t.Errorf("%s: unexpected HTTP pattern %T", m.FullName(), p)
				continue
			}
			want := "/v1/messages"
			switch {
			case name == "smppgw.v1.AdminService":
				want = "/v1/admin/"
			case strings.Contains(string(m.Name()), "Webhook"):
				want = "/v1/webhooks"
			}
			if !strings.HasPrefix(path, want) {
				t.Errorf("%s: path %s is not under %s", m.FullName(), path, want)
			}
			routes = append(routes, route{verb, path, string(sd.Name()) + "_" + string(m.Name())})
		}
	}
	return routes
}

var pathParam = regexp.MustCompile(`\{([a-z0-9_.]+)\}`)

// openAPIPath turns a google.api.http template into the OpenAPI path protoc-gen-openapiv2 writes:
// field paths in lowerCamelCase JSON names.
func openAPIPath(p string) string {
	return pathParam.ReplaceAllStringFunc(p, func(s string) string {
		parts := strings.Split(strings.Trim(s, "{}"), ".")
		for i, part := range parts {
			words := strings.Split(part, "_")
			for j := 1; j < len(words); j++ {
				words[j] = strings.ToUpper(words[j][:1]) + words[j][1:]
			}
			parts[i] = strings.Join(words, "")
		}
		return "{" + strings.Join(parts, ".") + "}"
	})
}

func TestEveryMethodHasRESTRouteInOpenAPI(t *testing.T) {
	routes := httpRoutes(t)
	if len(routes) < 30 {
		t.Fatalf("found %d routes, want the whole API (at least 30)", len(routes))
	}
	var doc struct {
		Swagger string `json:"swagger"`
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
		Security            []map[string][]string `json:"security"`
		SecurityDefinitions map[string]struct {
			Type string `json:"type"`
		} `json:"securityDefinitions"`
	}
	if err := json.Unmarshal(openapi.JSON(), &doc); err != nil {
		t.Fatalf("OpenAPI document does not parse: %v", err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger = %q, want 2.0", doc.Swagger)
	}
	operations := 0
	for _, ops := range doc.Paths {
		operations += len(ops)
	}
	if operations != len(routes) {
		t.Errorf("OpenAPI lists %d operations, the services have %d methods", operations, len(routes))
	}
	for _, r := range routes {
		op, ok := doc.Paths[openAPIPath(r.path)][r.method]
		if !ok {
			t.Errorf("OpenAPI lacks %s %s (%s)", strings.ToUpper(r.method), openAPIPath(r.path), r.operationID)
			continue
		}
		if op.OperationID != r.operationID {
			t.Errorf("%s %s: operationId %q, want %q", r.method, r.path, op.OperationID, r.operationID)
		}
	}
	if doc.SecurityDefinitions["ApiKey"].Type != "apiKey" || doc.SecurityDefinitions["Basic"].Type != "basic" {
		t.Errorf("security definitions = %+v, want ApiKey (apiKey) and Basic (basic)", doc.SecurityDefinitions)
	}
	if len(doc.Security) != 2 {
		t.Errorf("security = %v, want ApiKey or Basic", doc.Security)
	}
}

func TestSecretsAreInputOnly(t *testing.T) {
	// Passwords are write-only; the only secrets in responses are the ones returned once on creation.
	once := []protoreflect.FullName{
		"smppgw.v1.CreateApiKeyResponse.secret",
		"smppgw.v1.CreateWebhookResponse.signing_secret",
	}
	fd, err := protoregistry.GlobalFiles.FindFileByPath("smppgw/v1/admin_service.proto")
	if err != nil {
		t.Fatal(err)
	}
	passwords := 0
	var walk func(protoreflect.MessageDescriptors)
	walk = func(msgs protoreflect.MessageDescriptors) {
		for i := range msgs.Len() {
			m := msgs.Get(i)
			for j := range m.Fields().Len() {
				f := m.Fields().Get(j)
				if !strings.Contains(string(f.Name()), "password") && !strings.Contains(string(f.Name()), "secret") {
					continue
				}
				if slices.Contains(once, f.FullName()) || f.Name() == "secret_prefix" {
					continue
				}
				passwords++
				behaviors, _ := proto.GetExtension(f.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior)
				if !slices.Contains(behaviors, annotations.FieldBehavior_INPUT_ONLY) {
					t.Errorf("%s is not INPUT_ONLY", f.FullName())
				}
			}
			walk(m.Messages())
		}
	}
	walk(fd.Messages())
	if passwords < 3 {
		t.Errorf("found %d password fields, want those of Account, Upstream and OutbindRequest", passwords)
	}
}

// messages answers GetMessage with the id it was asked for and SubmitBatch with one result a message;
// everything else is left unimplemented.
type messages struct {
	smppgwv1.UnimplementedMessageServiceServer
}

func (messages) GetMessage(_ context.Context, r *smppgwv1.GetMessageRequest) (*smppgwv1.GetMessageResponse, error) {
	if r.GetMessageId() == "missing" {
		return nil, status.Error(codes.NotFound, "message missing not found")
	}
	return &smppgwv1.GetMessageResponse{Message: &smppgwv1.Message{
		MessageId: r.GetMessageId(),
		Status:    smppgwv1.MessageStatus_MESSAGE_STATUS_DELIVERED,
	}}, nil
}

type admin struct {
	smppgwv1.UnimplementedAdminServiceServer
}

func (admin) UpdateAccount(_ context.Context, r *smppgwv1.UpdateAccountRequest) (*smppgwv1.UpdateAccountResponse, error) {
	a := proto.Clone(r.GetAccount()).(*smppgwv1.Account)
	a.Password = "" // write-only
	a.Description = strings.Join(r.GetUpdateMask().GetPaths(), ",")
	return &smppgwv1.UpdateAccountResponse{Account: a}, nil
}

func TestGatewayRoutesToServices(t *testing.T) {
	mux := runtime.NewServeMux()
	ctx := context.Background()
	if err := smppgwv1.RegisterMessageServiceHandlerServer(ctx, mux, messages{}); err != nil {
		t.Fatal(err)
	}
	if err := smppgwv1.RegisterAdminServiceHandlerServer(ctx, mux, admin{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tests := []struct {
		method, path, body string
		status             int
		want               []string
	}{
		{"GET", "/v1/messages/m-42", "", http.StatusOK,
			[]string{`"messageId":"m-42"`, `"status":"MESSAGE_STATUS_DELIVERED"`}},
		{"GET", "/v1/messages/missing", "", http.StatusNotFound, []string{`"code":5`}},
		{"POST", "/v1/messages", `{"source":"smppgw","destination":"+4790000000","text":"hi"}`,
			http.StatusNotImplemented, []string{`"code":12`}},
		{"POST", "/v1/messages", `{"text":`, http.StatusBadRequest, []string{`"code":3`}},
		{"PATCH", "/v1/admin/accounts/esme1", `{"password":"s3cret","maxBinds":2}`, http.StatusOK,
			// grpc-gateway fills update_mask from the fields present in a PATCH body.
			[]string{`"systemId":"esme1"`, `"description":"max_binds,password"`, `"maxBinds":2`, `"password":""`}},
		{"POST", "/v1/admin/upstreams/smsc-a:pause", `{}`, http.StatusNotImplemented, []string{`"code":12`}},
		{"GET", "/v1/nowhere", "", http.StatusNotFound, nil},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d (%s)", tt.method, tt.path, resp.StatusCode, tt.status, body)
		}
		compact := strings.Join(strings.Fields(string(body)), "")
		for _, want := range tt.want {
			if !strings.Contains(compact, want) {
				t.Errorf("%s %s: body %s lacks %s", tt.method, tt.path, body, want)
			}
		}
	}
}

func TestHandlerServesDocument(t *testing.T) {
	rec := httptest.NewRecorder()
	openapi.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET: status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !json.Valid(rec.Body.Bytes()) || rec.Body.Len() != len(openapi.JSON()) {
		t.Errorf("GET served %d bytes, not the %d-byte document", rec.Body.Len(), len(openapi.JSON()))
	}
	rec = httptest.NewRecorder()
	openapi.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/openapi.json", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", rec.Code)
	}
}

// receipts streams one receipt for each message id asked for.
type receipts struct {
	smppgwv1.UnimplementedMessageServiceServer
}

func (receipts) StreamReceipts(r *smppgwv1.StreamReceiptsRequest, s grpc.ServerStreamingServer[smppgwv1.StreamReceiptsResponse]) error {
	for _, id := range r.GetMessageIds() {
		err := s.Send(&smppgwv1.StreamReceiptsResponse{Receipt: &smppgwv1.Receipt{
			MessageId: id,
			PartIndex: 1,
			Status:    smppgwv1.MessageStatus_MESSAGE_STATUS_DELIVERED,
		}})
		if err != nil {
			return err
		}
	}
	return nil
}

func TestStreamReceiptsOverRESTIsNDJSON(t *testing.T) {
	lis := bufconn.Listen(1 << 16)
	gs := grpc.NewServer()
	smppgwv1.RegisterMessageServiceServer(gs, receipts{})
	go gs.Serve(lis)
	defer gs.Stop()

	conn, err := grpc.NewClient("passthrough:///bufconn",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mux := runtime.NewServeMux()
	if err := smppgwv1.RegisterMessageServiceHandler(context.Background(), mux, conn); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/messages:streamReceipts?messageIds=m-1&messageIds=m-2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var got []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var line struct {
			Result struct {
				Receipt struct {
					MessageID string `json:"messageId"`
					Status    string `json:"status"`
				} `json:"receipt"`
			} `json:"result"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q is not one JSON object: %v", sc.Text(), err)
		}
		got = append(got, line.Result.Receipt.MessageID+" "+line.Result.Receipt.Status)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"m-1 MESSAGE_STATUS_DELIVERED", "m-2 MESSAGE_STATUS_DELIVERED"}
	if !slices.Equal(got, want) {
		t.Errorf("stream lines = %q, want %q", got, want)
	}
}
