// Package openapi holds the OpenAPI 2.0 document of the smppgw REST API, generated from
// proto/smppgw/v1 by scripts/gen-proto.sh (protoc-gen-openapiv2, merged into one file), and serves it.
//
// It is generated data plus a handler; it must not hold API behaviour of its own.
package openapi

import (
	"bytes"
	_ "embed"
	"net/http"
	"time"
)

//go:embed smppgw.swagger.json
var document []byte

// JSON returns the OpenAPI document. The slice is shared: callers must not modify it.
func JSON() []byte { return document }

// Handler serves the OpenAPI document as application/json (the server mounts it at /openapi.json).
// It answers GET and HEAD, with Range and conditional requests handled by http.ServeContent.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		http.ServeContent(w, r, "openapi.json", time.Time{}, bytes.NewReader(document))
	})
}
