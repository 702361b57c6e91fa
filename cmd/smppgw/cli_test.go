package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/api"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		code, out, errOut := runCLI(args, "")
		if code != 0 || !strings.HasPrefix(out, "smppgw ") || !strings.Contains(out, runtime.Version()) || strings.Count(out, "\n") != 1 {
			t.Errorf("%v: code %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if code, _, _ := runCLI([]string{"version", "extra"}, ""); code != 2 {
		t.Errorf("version extra: code %d, want 2", code)
	}

	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/smppgw/smppgw", Version: "v1.2.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-28T03:01:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "smppgw v1.2.0 (revision 0123abcd, 2026-11-28T03:01:00Z, modified) go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH
	if got := buildVersion(info, true); got != want {
		t.Errorf("build info version:\n got %q\nwant %q", got, want)
	}
	if got := buildVersion(&debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true); !strings.HasPrefix(got, "smppgw (devel) go1.26.8") {
		t.Errorf("devel build: %q", got)
	}
	// A release build's -ldflags -X values win over what the toolchain stamped.
	version, revision = "v9.9.9", "feedface"
	defer func() { version, revision = "", "" }()
	if got := buildVersion(info, true); !strings.HasPrefix(got, "smppgw v9.9.9 (revision feedface, 2026-11-28T03:01:00Z, modified) go1.26.8") {
		t.Errorf("ldflags override: %q", got)
	}
	if got := buildVersion(nil, false); !strings.HasPrefix(got, "smppgw v9.9.9 (revision feedface) "+runtime.Version()) {
		t.Errorf("no build info: %q", got)
	}
}

// TestUsageErrors: a mistake on the command line gets one line saying what is wrong and one line of
// hint, exit code 2; never the whole help.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		line, hint string
	}{
		{[]string{"frobnicate"}, `smppgw: unknown command "frobnicate"`, "run 'smppgw --help'"},
		{[]string{"--nope"}, "smppgw: unknown flag --nope", "'smppgw serve --help'"},
		{[]string{"serve", "--nope"}, "smppgw serve: flag provided but not defined: -nope", "run 'smppgw serve --help'"},
		{[]string{"serve", "extra"}, `smppgw serve: unexpected argument "extra"`, "run 'smppgw serve --help'"},
		{[]string{"hash-password", "x"}, "smppgw hash-password: takes no arguments", "run 'smppgw hash-password --help'"},
		{[]string{"healthcheck", "--nope"}, "smppgw healthcheck: flag provided but not defined: -nope", "run 'smppgw healthcheck --help'"},
	} {
		code, out, errOut := runCLI(tc.args, "")
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		if code != 2 || out != "" || len(lines) != 2 || !strings.HasPrefix(lines[0], tc.line) || !strings.Contains(lines[1], tc.hint) {
			t.Errorf("%v: code %d, stdout %q, stderr %q; want 2 and %q + a hint with %q", tc.args, code, out, errOut, tc.line, tc.hint)
		}
	}
}

// TestServeHelpCoversEveryConfigSection: serve --help has a line for every top-level section of the
// file, and the section's text names every key in it: those of a struct inlined into it (smpp's
// server settings, api's api.Config) and, for a list, an item's (upstreams); "failure_delay*"
// names failure_delay and failure_delay_max. A nested section (api.metrics, api.tls,
// upstreams.session, ...) is named as a key; api.metrics's own keys are named too.
func TestServeHelpCoversEveryConfigSection(t *testing.T) {
	_, out, _ := runCLI([]string{"serve", "--help"}, "")
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		name, _, _ := strings.Cut(ct.Field(i).Tag.Get("yaml"), ",")
		text, ok := helpSection(out, name)
		if !ok {
			t.Errorf("serve --help has no line for the %q section", name)
			continue
		}
		for _, key := range yamlKeys(ct.Field(i).Type, 0, map[reflect.Type]bool{}) {
			if !mentions(text, key) {
				t.Errorf("serve --help: the %s section does not mention %s.%s", name, name, key)
			}
		}
	}
	apiText, _ := helpSection(out, "api")
	for _, key := range yamlKeys(reflect.TypeFor[api.MetricsConfig](), 0, map[reflect.Type]bool{}) {
		if !mentions(apiText, key) {
			t.Errorf("serve --help: the api section does not mention api.metrics.%s", key)
		}
	}
	for _, want := range []string{"/healthz", "/readyz", "/metrics", "/debug/pprof/"} {
		if !strings.Contains(apiText, want) {
			t.Errorf("serve --help does not mention api's %q", want)
		}
	}
}

// helpSection is the text of a section of serve --help's configuration list: its line
// ("  name:  ...") and the indented lines that continue it.
func helpSection(help, name string) (string, bool) {
	_, rest, ok := strings.Cut(help, "\n  "+name+":")
	if !ok {
		return "", false
	}
	lines := strings.Split(rest, "\n")
	text := lines[0]
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "   ") {
			break
		}
		text += "\n" + l
	}
	return text, true
}

// mentions reports whether text names key as a word of its own (not inside a path: "/metrics" is
// not the key metrics), or a word ending in "*" is its prefix.
func mentions(text, key string) bool {
	if regexp.MustCompile(`(^|[^a-z_/])` + regexp.QuoteMeta(key) + `($|[^a-z_/])`).MatchString(text) {
		return true
	}
	for _, m := range regexp.MustCompile(`[a-z_]+\*`).FindAllString(text, -1) {
		if strings.HasPrefix(key, strings.TrimSuffix(m, "*")) {
			return true
		}
	}
	return false
}

func TestColour(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if colour(f, env()) {
		t.Error("colour on a plain file")
	}
	if colour(&strings.Builder{}, env()) {
		t.Error("colour on a buffer")
	}
	// A pseudo-terminal's master side answers the terminal ioctl as a terminal does.
	tty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here to check the positive case: %v", err)
	}
	defer tty.Close()
	if !colour(tty, env("TERM", "xterm")) {
		t.Error("no colour on a terminal")
	}
	if colour(tty, env("NO_COLOR", "1")) || colour(tty, env("TERM", "dumb")) {
		t.Error("colour on a terminal despite NO_COLOR or TERM=dumb")
	}
	// What the daemon logs to a non-terminal carries no escape sequences.
	var b strings.Builder
	log := newLogger(LogConfig{Level: "info", Format: "console"}, &b)
	log.Info().Str("k", "v").Msg("hello")
	if strings.Contains(b.String(), "\x1b[") || !strings.Contains(b.String(), "hello") {
		t.Errorf("console log to a buffer: %q", b.String())
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	// The configuration listens on every address; the check goes to loopback.
	t.Setenv("SMPPGW_CONFIG", writeConfig(t, "api:\n  http_listen: 0.0.0.0:"+port+"\n"))
	if code, _, errOut := runCLI([]string{"healthcheck"}, ""); code != 0 {
		t.Errorf("healthy: code %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI([]string{"healthcheck", "--ready"}, ""); code != 0 {
		t.Errorf("ready: code %d, %q", code, errOut)
	}
	if strings.Join(paths, " ") != "/healthz /readyz" {
		t.Errorf("paths %v", paths)
	}
	status = http.StatusServiceUnavailable
	if code, _, errOut := runCLI([]string{"healthcheck", "--ready"}, ""); code != 1 || !strings.Contains(errOut, "503") {
		t.Errorf("not ready: code %d, %q", code, errOut)
	}
	if code, _, _ := runCLI([]string{"healthcheck", "--url", srv.URL + "/healthz"}, ""); code != 1 {
		t.Errorf("--url to a 503: code %d", code)
	}
	srv.Close()
	if code, _, errOut := runCLI([]string{"healthcheck", "--timeout", "1s"}, ""); code != 1 || errOut == "" {
		t.Errorf("nothing listening: code %d, %q", code, errOut)
	}
	t.Setenv("SMPPGW_API_DISABLED", "true")
	if code, _, errOut := runCLI([]string{"healthcheck"}, ""); code != 1 || !strings.Contains(errOut, "disabled") {
		t.Errorf("API disabled: code %d, %q", code, errOut)
	}
	if code, out, _ := runCLI([]string{"healthcheck", "--help"}, ""); code != 0 || !strings.Contains(out, "/healthz") {
		t.Errorf("healthcheck --help: code %d, %q", code, out)
	}
}

func TestHealthURL(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"", "http://127.0.0.1:8080/healthz"},
		{"api: {http_listen: ':8081'}", "http://127.0.0.1:8081/healthz"},
		{"api: {http_listen: '[::]:8082'}", "http://127.0.0.1:8082/healthz"},
		{"api: {http_listen: '[::1]:8083'}", "http://[::1]:8083/healthz"},
		{"api: {http_listen: 'gw.internal:8084'}", "http://gw.internal:8084/healthz"},
	} {
		cfg, err := loadConfig(writeConfig(t, tc.yaml+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := healthURL(cfg, false); err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.yaml, got, err, tc.want)
		}
	}
}
