package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The REST side's own rules, around grpc-gateway: bodies and query parameters are read strictly
// (check.go), a call without credentials is refused before its body is read, an oversized body is
// 413 and a method a path does not serve is 405 with Allow.

// restRoute is one REST mapping of the contract: method, path template split into segments
// ("*" for a variable) and the custom verb of the last segment.
type restRoute struct {
	method string
	segs   []string
	verb   string
}

// restRoutes and bodyFields come from the google.api.http options of the services.
var restRoutes, bodyFields = readHTTPRules(smppgwv1.File_smppgw_v1_message_service_proto, smppgwv1.File_smppgw_v1_admin_service_proto)

// readHTTPRules returns the REST routes of files' services, and for the methods whose body is one
// field of the request (`body: "account"`), that field's name by the message it holds, so that
// errors in such a body name the field as the gRPC request does ("account.password").
func readHTTPRules(files ...protoreflect.FileDescriptor) ([]restRoute, map[protoreflect.FullName]string) {
	var routes []restRoute
	bodies := map[protoreflect.FullName]string{}
	for _, f := range files {
		for i := range f.Services().Len() {
			ms := f.Services().Get(i).Methods()
			for j := range ms.Len() {
				m := ms.Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if rule == nil {
					continue
				}
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					if rt, ok := parseRoute(r); ok {
						routes = append(routes, rt)
					}
					if b := r.GetBody(); b != "" && b != "*" {
						if fd := m.Input().Fields().ByName(protoreflect.Name(b)); fd != nil && fd.Message() != nil {
							bodies[fd.Message().FullName()] = b
						}
					}
				}
			}
		}
	}
	return routes, bodies
}

func parseRoute(r *annotations.HttpRule) (restRoute, bool) {
	var rt restRoute
	var tmpl string
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		rt.method, tmpl = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		rt.method, tmpl = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		rt.method, tmpl = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		rt.method, tmpl = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		rt.method, tmpl = http.MethodDelete, p.Delete
	default:
		return rt, false
	}
	if i := strings.LastIndexByte(tmpl, ':'); i > strings.LastIndexByte(tmpl, '}') && i > strings.LastIndexByte(tmpl, '/') {
		tmpl, rt.verb = tmpl[:i], tmpl[i+1:]
	}
	for _, s := range strings.Split(strings.TrimPrefix(tmpl, "/"), "/") {
		if strings.HasPrefix(s, "{") {
			s = "*"
		}
		rt.segs = append(rt.segs, s)
	}
	return rt, true
}

// matches reports whether path is served by rt's template, matching as grpc-gateway does: the
// verb is what follows the last ':' of the last segment, and a template without a verb takes the
// last segment whole.
func (rt restRoute) matches(path string) bool {
	comps := strings.Split(strings.TrimPrefix(path, "/"), "/")
	last := comps[len(comps)-1]
	if rt.verb != "" {
		i := strings.LastIndexByte(last, ':')
		if i <= 0 || last[i+1:] != rt.verb {
			return false
		}
		comps = append(comps[:len(comps)-1:len(comps)-1], last[:i])
	}
	if len(comps) != len(rt.segs) {
		return false
	}
	for i, s := range rt.segs {
		if s != "*" && s != comps[i] {
			return false
		}
	}
	return true
}

// allowedMethods lists the methods the contract serves on path, sorted.
func allowedMethods(path string) []string {
	var out []string
	for _, rt := range restRoutes {
		if rt.matches(path) && !slices.Contains(out, rt.method) {
			out = append(out, rt.method)
		}
	}
	slices.Sort(out)
	return out
}

// routingError answers a method the path does not serve with 405 and Allow (grpc-gateway says 501,
// Not Implemented, which tells a client the server cannot do it at all).
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if code != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	allow := allowedMethods(r.URL.Path)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	msg := "method " + r.Method + " is not served on this path"
	if len(allow) > 0 {
		msg += "; use " + strings.Join(allow, ", ")
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{
		HTTPStatus: http.StatusMethodNotAllowed, Err: status.Error(codes.Unimplemented, msg)})
}

// bodyLimit bounds a request body and remembers whether the bound was hit, so that the error
// handler answers 413 whichever layer tripped over it.
type bodyLimit struct {
	io.ReadCloser
	hit atomic.Bool
}

func (b *bodyLimit) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		b.hit.Store(true)
	}
	return n, err
}

type bodyLimitKey struct{}

var errBodyTooLarge = &runtime.HTTPStatusError{HTTPStatus: http.StatusRequestEntityTooLarge,
	Err: status.Errorf(codes.InvalidArgument, "request body: larger than %d bytes", maxRequestBody)}

// guard runs before grpc-gateway reads anything. grpc-gateway reads and decodes a body before the
// gRPC interceptor checks credentials, so a call without any is refused here, unread (every
// smppgw.v1 call needs credentials; whether they are good is the interceptor's to say), and the
// body is bounded as gRPC bounds its messages: without this an anonymous caller could make the
// server buffer any size (found in review: 256 MiB grew the heap by 1.3 GiB).
func guard(mux *runtime.ServeMux, m runtime.Marshaler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") == "" && strings.HasPrefix(r.URL.Path, "/v1/"):
			errorHandler(r.Context(), mux, m, w, r, errUnauthenticated)
			return
		case r.ContentLength > maxRequestBody:
			errorHandler(r.Context(), mux, m, w, r, errBodyTooLarge)
			return
		}
		lb := &bodyLimit{ReadCloser: http.MaxBytesReader(w, r.Body, maxRequestBody)}
		r.Body = lb
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitKey{}, lb)))
	})
}

// strictJSON is grpc-gateway's JSON marshaler, except that a request is checked against the
// contract (checkJSON) before protojson reads it: a field or enum value the contract does not
// define is refused naming the field, where grpc-gateway's default discards it and goes on.
type strictJSON struct {
	runtime.JSONPb
}

func newStrictJSON() *strictJSON {
	return &strictJSON{runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
	}}
}

// Unmarshal checks data, then reads it into v (a proto.Message, or a pointer to a nil one for a
// body that is one field of the request).
func (j *strictJSON) Unmarshal(data []byte, v any) error {
	if md, ok := descriptorOf(v); ok {
		field := bodyFields[md.FullName()]
		if err := checkJSON(field, md, data); err != nil {
			return err
		}
		if err := j.JSONPb.Unmarshal(data, v); err != nil {
			// checkJSON passed, so this is a case it does not know; say where without protojson's words.
			if field == "" {
				field = "request body"
			}
			return badField(field, "cannot be read as %s", md.Name())
		}
		return nil
	}
	return j.JSONPb.Unmarshal(data, v)
}

// NewDecoder reads one JSON value and unmarshals it with Unmarshal. An empty body is io.EOF, which
// grpc-gateway takes as no body.
func (j *strictJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		var raw json.RawMessage
		if err := json.NewDecoder(r).Decode(&raw); err != nil {
			var syntax *json.SyntaxError
			var tooLarge *http.MaxBytesError
			switch {
			case errors.Is(err, io.EOF), errors.As(err, &tooLarge):
				return err // no body; or too large, which the error handler answers with 413
			case errors.As(err, &syntax):
				return badField("request body", "not valid JSON (at byte %d)", syntax.Offset)
			case errors.Is(err, io.ErrUnexpectedEOF):
				return badField("request body", "incomplete JSON")
			}
			return badField("request body", "cannot be read")
		}
		return j.Unmarshal(raw, v)
	})
}

// strictQuery checks query parameters against the request message (checkQuery) before
// grpc-gateway's parser, which ignores names it does not know.
type strictQuery struct {
	runtime.DefaultQueryParser
}

func (q *strictQuery) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	if err := checkQuery(msg.ProtoReflect().Descriptor(), values, filter); err != nil {
		return err
	}
	if err := q.DefaultQueryParser.Parse(msg, values, filter); err != nil {
		return badField("query parameters", "cannot be read") // checkQuery passed: a case it does not know
	}
	return nil
}
