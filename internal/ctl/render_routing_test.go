package ctl

import (
	"bytes"
	"strings"
	"testing"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
)

// TestWriteRoutesWeightsAndBinds: a weighted route lists its upstreams with their weights, and an
// upstream of several binds shows how many of them are up.
func TestWriteRoutesWeightsAndBinds(t *testing.T) {
	var b bytes.Buffer
	if err := WriteRoutes(&b, []*smppgwv1.Route{
		{RouteId: "w", Prefix: "44", Upstreams: []string{"a", "b"}, Weights: []uint32{70, 30}},
		{RouteId: "p", Prefix: "49", Upstreams: []string{"a", "b"}},
	}); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); !strings.Contains(out, "a:70,b:30") || !strings.Contains(out, " a,b ") {
		t.Errorf("WriteRoutes:\n%s", out)
	}
	b.Reset()
	if err := WriteUpstreams(&b, []*smppgwv1.Upstream{{Name: "three", Binds: 3, BoundBinds: 2}, {Name: "one", Binds: 1, BoundBinds: 1}}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) < 3 || !strings.Contains(lines[1], " 2/3 ") || strings.Contains(lines[2], "/") {
		t.Errorf("WriteUpstreams:\n%s", b.String())
	}
}
