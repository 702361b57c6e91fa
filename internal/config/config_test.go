package config

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// mode is an enum written by name, whose zero value reads "none", like gateway.BindType.
type mode uint8

func (m mode) MarshalText() ([]byte, error) { return []byte([]string{"none", "fast", "slow"}[m]), nil }

func (m *mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "", "none":
		*m = 0
	case "fast":
		*m = 1
	case "slow":
		*m = 2
	default:
		return fmt.Errorf("unknown mode %q", b)
	}
	return nil
}

type tlsSection struct {
	ServerName string `yaml:"server_name"`
	Insecure   bool   `yaml:"insecure"`
}

type Common struct {
	ID string `yaml:"id"`
}

type inner struct {
	Window  int           `yaml:"window"`
	Timeout time.Duration `yaml:"timeout"`
	Ratio   float64       `yaml:"ratio"`
	Limit   uint16        `yaml:"limit"`
	Small   int8          `yaml:"small"`
}

type sample struct {
	Common  `yaml:",inline"`
	Name    string      `yaml:"name"`
	On      bool        `yaml:"on"`
	Mode    mode        `yaml:"mode"`
	Session inner       `yaml:"session"`
	TLS     *tlsSection `yaml:"tls"`
	List    []string    `yaml:"list"`
	Map     map[string]string
	Skipped string `yaml:"-"`
	Untaged string
	private string
}

func TestApplyEnv(t *testing.T) {
	s := sample{Name: "file", Session: inner{Window: 3}}
	err := ApplyEnv(&s, "APP_", []string{
		"APP_ID=gw1", // a field of the inlined section
		"APP_ON=true",
		"APP_MODE=slow",
		"APP_SESSION_TIMEOUT=45s",
		"APP_SESSION_RATIO=0.5",
		"APP_SESSION_LIMIT=0x10",
		"APP_SESSION_SMALL=-7",
		"APP_UNTAGED=lower-cased field name",
		"APP_CONFIG=ignored",
		"HOME=/root", // not ours
	}, "APP_CONFIG")
	if err != nil {
		t.Fatal(err)
	}
	want := sample{Common: Common{ID: "gw1"}, Name: "file", On: true, Mode: 2,
		Session: inner{Window: 3, Timeout: 45 * time.Second, Ratio: 0.5, Limit: 16, Small: -7}, Untaged: "lower-cased field name"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v\nwant %+v", s, want)
	}
}

func TestApplyEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env     string
		want    string
		unknown bool
	}{
		{"APP_SESSION_TIMEOUT=soon", `APP_SESSION_TIMEOUT="soon"`, false},
		{"APP_SESSION_SMALL=300", "APP_SESSION_SMALL", false},
		{"APP_MODE=warp", `unknown mode "warp"`, false},
		{"APP_NAMe=x", "unknown environment override APP_NAMe", true},
		{"APP_TLS_SERVER_NAME=x", "APP_TLS_SERVER_NAME", true}, // optional sections are file-only
		{"APP_LIST=a", "APP_LIST", true},                       // so are lists
		{"APP_SKIPPED=x", "APP_SKIPPED", true},
	} {
		s := sample{TLS: &tlsSection{}}
		err := ApplyEnv(&s, "APP_", []string{tc.env})
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, ErrUnknownEnv) != tc.unknown {
			t.Errorf("%s: %v, want an error containing %q (unknown %v)", tc.env, err, tc.want, tc.unknown)
		}
	}
}

func TestEnvNames(t *testing.T) {
	want := []string{"APP_ID", "APP_NAME", "APP_ON", "APP_MODE", "APP_SESSION_WINDOW", "APP_SESSION_TIMEOUT",
		"APP_SESSION_RATIO", "APP_SESSION_LIMIT", "APP_SESSION_SMALL", "APP_UNTAGED"}
	// The names do not depend on the value: a set pointer section stays file-only.
	for _, v := range []any{sample{}, &sample{TLS: &tlsSection{}}} {
		if got := EnvNames(v, "APP_"); !slices.Equal(got, want) {
			t.Errorf("EnvNames(%T) = %v\nwant %v", v, got, want)
		}
	}
}

func TestDecode(t *testing.T) {
	var s sample
	if err := Decode([]byte("id: a\nsession:\n  timeout: 2s\ntls:\n  insecure: true\n"), &s); err != nil {
		t.Fatal(err)
	}
	if s.ID != "a" || s.Session.Timeout != 2*time.Second || s.TLS == nil || !s.TLS.Insecure {
		t.Errorf("decoded %+v", s)
	}
	if err := Decode(nil, &s); err != nil || s.ID != "a" {
		t.Errorf("an empty document: %v, %+v", err, s)
	}
	if err := Decode([]byte("sesion:\n  window: 1\n"), &s); err == nil || !strings.Contains(err.Error(), "field sesion not found") {
		t.Errorf("a misspelt key: %v", err)
	}
}

func TestFlattenRoundTrip(t *testing.T) {
	in := sample{Common: Common{ID: "0123"}, Name: "none", Mode: 1, On: true,
		Session: inner{Window: 5, Timeout: -time.Second, Ratio: 1.5}, TLS: &tlsSection{ServerName: "smsc.example"},
		List: []string{"lists are not flattened"}, Map: map[string]string{"nor": "maps"}}
	flat, err := Flatten(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"id": "0123", "name": "none", "on": "true", "mode": "fast", "session.window": "5",
		"session.timeout": "-1s", "session.ratio": "1.5", "tls.server_name": "smsc.example"}
	if !reflect.DeepEqual(flat, want) {
		t.Errorf("Flatten = %v\nwant %v", flat, want)
	}
	var out sample
	if err := Unflatten(flat, &out); err != nil {
		t.Fatal(err)
	}
	in.List, in.Map = nil, nil
	if !reflect.DeepEqual(out, in) {
		t.Errorf("Unflatten = %+v\nwant %+v", out, in)
	}

	if flat, err := Flatten(&sample{}); err != nil || len(flat) != 0 {
		t.Errorf("Flatten(zero) = %v, %v; want nothing (a zero mode is not written as none)", flat, err)
	}
	if err := Unflatten(map[string]string{"session": "1", "session.window": "2"}, &out); err == nil {
		t.Error("Unflatten took a key that is both a value and a section")
	}
}
