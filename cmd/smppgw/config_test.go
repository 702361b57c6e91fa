package main

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
)

const examplePath = "../../deploy/smppgw.example.yaml"

// TestExampleConfigLoads keeps deploy/smppgw.example.yaml valid and its values the ones it documents.
func TestExampleConfigLoads(t *testing.T) {
	cfg, err := loadConfig(examplePath, nil)
	if err != nil {
		t.Fatalf("the example config does not load: %v", err)
	}
	if cfg.SMPP.Listen != "127.0.0.1:2775" || cfg.SMPP.SystemID != "smppgw" || cfg.Log.Format != "console" {
		t.Errorf("smpp/log = %+v %+v", cfg.SMPP.Listen, cfg.Log)
	}
	if len(cfg.SMPP.Accounts) != 1 || cfg.SMPP.Accounts[0].SystemID != "acme" || cfg.SMPP.Accounts[0].Throughput != 100 {
		t.Errorf("accounts = %+v", cfg.SMPP.Accounts)
	}
	if len(cfg.Upstreams) != 1 || cfg.Upstreams[0].BindType != session.BindTransceiver || cfg.Upstreams[0].ThrottleDelay != 200*time.Millisecond {
		t.Errorf("upstreams = %+v", cfg.Upstreams)
	}
	if len(cfg.Routing.Routes) != 2 || cfg.Routing.MaxDeliveryAttempts != 10 || cfg.ShutdownTimeout != 30*time.Second {
		t.Errorf("routing = %+v, shutdown_timeout %v", cfg.Routing, cfg.ShutdownTimeout)
	}
	if cfg.Demo.Disabled || cfg.Demo.Listen != defaultDemoListen || cfg.Demo.ReceiptDelay != defaultDemoReceiptDelay {
		t.Errorf("demo = %+v: the example shows the defaults", cfg.Demo)
	}
	if cfg.Store.Path != "data/smppgw.db" || len(cfg.Store.Redis.Addrs) != 0 || cfg.Store.IDMapTTL != 72*time.Hour {
		t.Errorf("store = %+v: the example uses the embedded store", cfg.Store)
	}
	// The documented password of the example account is the one its hash holds.
	auth, err := gateway.NewMemoryAuthenticator(cfg.SMPP.Accounts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, st := auth.Authenticate(t.Context(), gateway.BindRequest{SystemID: "acme", Password: "s3cret", BindType: session.BindTransceiver, Remote: loopback}); st != 0 {
		t.Errorf("acme/s3cret refused with %v", st)
	}
}

// TestExampleConfigCoversEveryField: every YAML key of Config, at any depth (lists and optional
// sections included), appears in the example, as a setting or in a commented-out block.
func TestExampleConfigCoversEveryField(t *testing.T) {
	b, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	var missing []string
	for _, k := range yamlKeys(reflect.TypeFor[Config](), -1, map[reflect.Type]bool{}) {
		if !strings.Contains(text, k+":") {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("deploy/smppgw.example.yaml does not mention %v", missing)
	}
}

// yamlKeys are the keys of a configuration struct (or of a list's item, or a pointer's target),
// those of inlined structs included, and of the structs under them down to depth levels more
// (negative: every level); each struct type once.
func yamlKeys(t reflect.Type, depth int, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] || t == reflect.TypeFor[time.Duration]() {
		return nil
	}
	seen[t] = true
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case f.Anonymous && strings.Contains(opts, "inline"):
			out = append(out, yamlKeys(f.Type, depth, seen)...)
		default:
			out = append(out, name)
			if depth != 0 {
				out = append(out, yamlKeys(f.Type, depth-1, seen)...)
			}
		}
	}
	return out
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SMPP.Listen != defaultListen || cfg.Log.Level != "info" || cfg.Log.Format != "console" || cfg.ShutdownTimeout != 30*time.Second || cfg.GCPercent != 100 {
		t.Errorf("defaults = %+v", cfg)
	}
	if got := cfg.listeners(); len(got) != 1 || got[0].Address != "127.0.0.1:2775" {
		t.Errorf("listeners = %+v", got)
	}
	// A file with only TLS listeners does not also get the default plain one.
	path := writeConfig(t, "smpp:\n  listeners:\n    - address: 127.0.0.1:3550\n      tls: {cert_file: c.pem, key_file: k.pem}\n")
	cfg, err = loadConfig(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.listeners(); len(got) != 1 || got[0].TLS == nil {
		t.Errorf("listeners = %+v, want the TLS one only", got)
	}
}

func TestConfigEnvOverrides(t *testing.T) {
	path := writeConfig(t, "log:\n  level: warn\nsmpp:\n  listen: 127.0.0.1:9999\n  session:\n    window: 3\n")
	cfg, err := loadConfig(path, []string{
		"SMPPGW_LOG_LEVEL=debug",
		"SMPPGW_LOG_FORMAT=json",
		"SMPPGW_SMPP_LISTEN=127.0.0.1:2776",
		"SMPPGW_SMPP_SYSTEM_ID=gw1",                 // a field of the inlined ServerConfig
		"SMPPGW_SMPP_SESSION_ENQUIRE_LINK=45s",      // nested duration
		"SMPPGW_SMPP_SESSION_THROTTLE_INBOUND=true", // bool
		"SMPPGW_SMPP_MAX_PASSWORD_CHECKS=3",         // bind authentication knobs
		"SMPPGW_SMPP_CREDENTIAL_CACHE=-1",
		"SMPPGW_SMPP_FAILURE_DELAY_MAX=5s",
		"SMPPGW_ROUTING_MAX_DELIVERY_ATTEMPTS=77",
		"SMPPGW_STORE_REDIS_ADDRS=127.0.0.1:6379, 127.0.0.1:6380", // a list, comma-separated
		"SMPPGW_STORE_REDIS_DB=2",
		"SMPPGW_SHUTDOWN_TIMEOUT=2s",
		"SMPPGW_CONFIG=ignored-here",
		"HOME=/root", // not ours
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Log.Level != "debug" || cfg.Log.Format != "json" || cfg.SMPP.Listen != "127.0.0.1:2776" || cfg.SMPP.SystemID != "gw1" {
		t.Errorf("log %+v listen %q system_id %q", cfg.Log, cfg.SMPP.Listen, cfg.SMPP.SystemID)
	}
	if s := cfg.SMPP.Session; s.Window != 3 || s.EnquireLink != 45*time.Second || !s.ThrottleInbound {
		t.Errorf("session = %+v: file value kept, env values set", s)
	}
	if cfg.SMPP.MaxPasswordChecks != 3 || cfg.SMPP.CredentialCache != -1 || cfg.SMPP.FailureDelayMax != 5*time.Second {
		t.Errorf("max_password_checks %d, credential_cache %d, failure_delay_max %v", cfg.SMPP.MaxPasswordChecks, cfg.SMPP.CredentialCache, cfg.SMPP.FailureDelayMax)
	}
	if cfg.Routing.MaxDeliveryAttempts != 77 || cfg.ShutdownTimeout != 2*time.Second {
		t.Errorf("routing.max_delivery_attempts %d, shutdown_timeout %v", cfg.Routing.MaxDeliveryAttempts, cfg.ShutdownTimeout)
	}
	if r := cfg.Store.Redis; !slices.Equal(r.Addrs, []string{"127.0.0.1:6379", "127.0.0.1:6380"}) || r.DB != 2 {
		t.Errorf("store.redis = %+v", r)
	}

	names := envNames()
	for _, want := range []string{"SMPPGW_LOG_LEVEL", "SMPPGW_SMPP_LISTEN", "SMPPGW_SMPP_SESSION_WINDOW", "SMPPGW_ROUTING_DELIVERY_RETRY", "SMPPGW_STORE_PATH", "SMPPGW_STORE_REDIS_PASSWORD"} {
		if !slices.Contains(names, want) {
			t.Errorf("envNames lacks %s", want)
		}
	}
	for _, n := range names {
		if strings.Contains(n, "ACCOUNTS") || strings.Contains(n, "UPSTREAMS") || strings.Contains(n, "TLS") {
			t.Errorf("envNames has %s: lists and optional sections are file-only", n)
		}
	}
}

// TestStorePath: the embedded store's file is store.path, else under $XDG_STATE_HOME, else ./data; a
// YAML list of Redis addresses reads as the comma-separated form does.
func TestStorePath(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		c    StoreConfig
		env  map[string]string
		want string
	}{
		{StoreConfig{Path: "/var/lib/smppgw/db"}, map[string]string{"XDG_STATE_HOME": "/x"}, "/var/lib/smppgw/db"},
		{StoreConfig{}, map[string]string{"XDG_STATE_HOME": "/home/u/.local/state"}, "/home/u/.local/state/smppgw/smppgw.db"},
		{StoreConfig{}, nil, "data/smppgw.db"},
	} {
		if got := tc.c.storePath(env(tc.env)); got != tc.want {
			t.Errorf("storePath(%+v, %v) = %q, want %q", tc.c, tc.env, got, tc.want)
		}
	}
	cfg, err := loadConfig(writeConfig(t, "store:\n  redis:\n    addrs: [127.0.0.1:1, 127.0.0.1:2]\n    password: pw\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Store.Redis.Addrs, []string{"127.0.0.1:1", "127.0.0.1:2"}) || cfg.Store.Redis.Password != "pw" {
		t.Errorf("store.redis = %+v", cfg.Store.Redis)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"unknown key", "smpp:\n  lisen: x\n", nil, "field lisen not found"},
		{"bad level", "log:\n  level: loud\n", nil, "log.level"},
		{"bad format", "log:\n  format: xml\n", nil, "log.format"},
		{"bad env duration", "", []string{"SMPPGW_SHUTDOWN_TIMEOUT=soon"}, "SMPPGW_SHUTDOWN_TIMEOUT"},
		{"unknown env", "", []string{"SMPPGW_SMPP_LISEN=x"}, "unknown environment override SMPPGW_SMPP_LISEN"},
		{"bad hash", "smpp:\n  accounts:\n    - system_id: a\n      password_hash: plain\n", nil, "password_hash"},
		{"duplicate account", "smpp:\n  accounts:\n    - {system_id: a, password_hash: $2a$10$3NIiout.MTSucrBqRqBnXuTUMlOkEtEBkfWY9fa2m7iV/brCs5MCS}\n    - {system_id: a, password_hash: $2a$10$3NIiout.MTSucrBqRqBnXuTUMlOkEtEBkfWY9fa2m7iV/brCs5MCS}\n", nil, "appears twice"},
		{"route to nowhere", "routing:\n  routes:\n    - {prefix: '1', upstream: ghost}\n", nil, `"ghost" names no configured upstream`},
		{"mo to unknown account", "smpp:\n  accounts:\n    - {system_id: a, password_hash: $2a$10$3NIiout.MTSucrBqRqBnXuTUMlOkEtEBkfWY9fa2m7iV/brCs5MCS}\nrouting:\n  mo_routes:\n    - {prefix: '1', account: b}\n", nil, `account "b" is not in smpp.accounts`},
		{"negative store duration", "store:\n  park_ttl: -1s\n", nil, "store durations"},
		{"redis prefix with a hash tag", "store:\n  redis:\n    prefix: '{x}'\n", nil, "store.redis.prefix"},
		{"duplicate upstream", "upstreams:\n  - {name: u, address: '127.0.0.1:1', system_id: x}\n  - {name: u, address: '127.0.0.1:2', system_id: y}\n", nil, "appears twice"},
		{"demo listen without a port", "", []string{"SMPPGW_DEMO_LISTEN=localhost"}, "demo.listen"},
		{"negative demo receipt delay", "demo:\n  receipt_delay: -1s\n", nil, "demo.receipt_delay"},
		{"gc_percent too small", "gc_percent: 5\n", nil, "gc_percent 5: want 10 to 10000"},
		{"gc_percent from the environment, negative", "", []string{"SMPPGW_GC_PERCENT=-1"}, "gc_percent -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeConfig(t, tc.yaml)
			}
			_, err := loadConfig(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadConfig = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "absent.yaml"), nil); err == nil {
		t.Error("a missing config file was accepted")
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smppgw.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestGCPercent: gc_percent (from the environment here) reaches the garbage collector, unless GOGC
// is set, which wins.
func TestGCPercent(t *testing.T) {
	cfg, err := loadConfig("", []string{"SMPPGW_GC_PERCENT=150"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GCPercent != 150 {
		t.Fatalf("gc_percent = %d from SMPPGW_GC_PERCENT=150", cfg.GCPercent)
	}
	was := debug.SetGCPercent(100)
	defer debug.SetGCPercent(was)
	setGCPercent(cfg.GCPercent, zerolog.Nop())
	if got := debug.SetGCPercent(100); got != 150 {
		t.Errorf("the collector's percent is %d after gc_percent 150, want 150", got)
	}
	t.Setenv("GOGC", "100")
	setGCPercent(300, zerolog.Nop())
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("the collector's percent is %d with GOGC=100 set and gc_percent 300, want GOGC's 100", got)
	}
}
