package gateway

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/smppgw/smppgw/gateway/session"
)

// The config tests check, per config type, that the zero value gets the defaults its fields document,
// that a negative value disables where the doc says so (and is kept as it is), and that Validate
// refuses every other negative value with the field's name.

func TestServerConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  ServerConfig
		want ServerConfig
	}{
		{"zero", ServerConfig{}, ServerConfig{SystemID: "smppgw", FailureDelay: time.Second, FailureDelayMax: 10 * time.Second,
			FailureMemory: 10 * time.Minute, MaxPasswordChecks: runtime.GOMAXPROCS(0), CredentialCache: 10000}},
		{"negative disables", ServerConfig{SystemID: "gw", FailureDelay: -1, CredentialCache: -1}, ServerConfig{SystemID: "gw",
			FailureDelay: -1, FailureDelayMax: 10 * time.Second, FailureMemory: 10 * time.Minute, MaxPasswordChecks: runtime.GOMAXPROCS(0), CredentialCache: -1}},
		{"set", ServerConfig{SystemID: "gw", FailureDelay: 2 * time.Second, FailureDelayMax: 5 * time.Second, FailureMemory: time.Minute, MaxPasswordChecks: 3, CredentialCache: 7},
			ServerConfig{SystemID: "gw", FailureDelay: 2 * time.Second, FailureDelayMax: 5 * time.Second, FailureMemory: time.Minute, MaxPasswordChecks: 3, CredentialCache: 7}},
	} {
		got := tc.cfg.withDefaults()
		if got.SystemID != tc.want.SystemID || got.FailureDelay != tc.want.FailureDelay || got.FailureDelayMax != tc.want.FailureDelayMax ||
			got.FailureMemory != tc.want.FailureMemory || got.MaxPasswordChecks != tc.want.MaxPasswordChecks || got.CredentialCache != tc.want.CredentialCache {
			t.Errorf("%s: withDefaults() = %+v, want %+v", tc.name, got, tc.want)
		}
		if err := tc.cfg.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	ls := ServerConfig{Listeners: []ListenerConfig{{}, {TLS: &ServerTLSConfig{}}, {Address: "127.0.0.1:1"}}}.withDefaults().Listeners
	if ls[0].Address != ":2775" || ls[1].Address != ":3550" || ls[2].Address != "127.0.0.1:1" {
		t.Errorf("listener addresses %q, %q, %q; want :2775, :3550, 127.0.0.1:1", ls[0].Address, ls[1].Address, ls[2].Address)
	}
	if g := newBindGate(ServerConfig{CredentialCache: -1}.withDefaults()); g.cache != nil {
		t.Error("credential_cache -1: the cache is still on")
	}
	for _, tc := range []struct {
		cfg   ServerConfig
		field string
	}{
		{ServerConfig{FailureDelayMax: -1}, "failure_delay_max"},
		{ServerConfig{FailureMemory: -1}, "failure_memory"},
		{ServerConfig{MaxPasswordChecks: -1}, "max_password_checks"},
		{ServerConfig{Session: session.Config{Window: -1}}, "session.window"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestConfigClampsFailureDelayMax(t *testing.T) {
	cases := []struct {
		cfg  ServerConfig
		want time.Duration
	}{
		{ServerConfig{}, 10 * time.Second},
		{ServerConfig{FailureDelayMax: 30 * time.Second}, 29 * time.Second}, // the old default met bind_timeout
		{ServerConfig{FailureDelayMax: time.Minute, Session: session.Config{BindTimeout: 2 * time.Second}}, 1800 * time.Millisecond},
	}
	for _, c := range cases {
		if got := c.cfg.withDefaults(); got.FailureDelayMax != c.want || got.MaxPasswordChecks < 1 || got.CredentialCache != 10000 {
			t.Errorf("%+v: failure_delay_max %v (want %v), max_password_checks %d, credential_cache %d", c.cfg, got.FailureDelayMax, c.want, got.MaxPasswordChecks, got.CredentialCache)
		}
	}
	if err := (ServerConfig{MaxPasswordChecks: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "max_password_checks") {
		t.Errorf("negative max_password_checks: %v", err)
	}
}

func TestOutbindConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		cfg, want OutbindConfig
	}{
		{OutbindConfig{Address: "a:1"}, OutbindConfig{Address: "a:1", SystemID: "srv", DialTimeout: 10 * time.Second}},
		{OutbindConfig{Address: "a:1", SystemID: "me", DialTimeout: time.Second}, OutbindConfig{Address: "a:1", SystemID: "me", DialTimeout: time.Second}},
	} {
		if got := tc.cfg.withDefaults("srv"); got != tc.want {
			t.Errorf("withDefaults(%+v) = %+v, want %+v", tc.cfg, got, tc.want)
		}
		if err := tc.cfg.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", tc.cfg, err)
		}
	}
	for _, tc := range []struct {
		cfg   OutbindConfig
		field string
	}{
		{OutbindConfig{}, "address"},
		{OutbindConfig{Address: "a:1", SystemID: strings.Repeat("s", 16)}, "system_id"},
		{OutbindConfig{Address: "a:1", Password: "123456789"}, "password"},
		{OutbindConfig{Address: "a:1", DialTimeout: -1}, "dial_timeout"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestClientConfigDefaults(t *testing.T) {
	base := ClientConfig{Address: "up:2775", SystemID: "gw"}
	withNeg := base
	withNeg.MaxAttempts, withNeg.MaxAge = -1, -1
	outbindOnly := ClientConfig{SystemID: "gw", OutbindListen: ":2776"}
	for _, tc := range []struct {
		name string
		cfg  ClientConfig
		want ClientConfig
	}{
		{"zero", base, ClientConfig{Name: "gw@up:2775", Address: "up:2775", SystemID: "gw", BindType: session.BindTransceiver,
			DialTimeout: 10 * time.Second, ReconnectMin: time.Second, ReconnectMax: time.Minute, ThrottleDelay: 200 * time.Millisecond,
			ThrottleDelayMax: 10 * time.Second, MaxAttempts: 10, MaxAge: 48 * time.Hour, QueueSize: 10000, Binds: 1,
			Session: session.Config{Window: DefaultUpstreamWindow}, MaxUnsettled: DefaultMaxUnsettled}},
		{"negative disables", withNeg, ClientConfig{Name: "gw@up:2775", Address: "up:2775", SystemID: "gw", BindType: session.BindTransceiver,
			DialTimeout: 10 * time.Second, ReconnectMin: time.Second, ReconnectMax: time.Minute, ThrottleDelay: 200 * time.Millisecond,
			ThrottleDelayMax: 10 * time.Second, MaxAttempts: -1, MaxAge: -1, QueueSize: 10000, Binds: 1,
			Session: session.Config{Window: DefaultUpstreamWindow}, MaxUnsettled: DefaultMaxUnsettled}},
		{"outbind only", outbindOnly, ClientConfig{Name: "gw@:2776", SystemID: "gw", OutbindListen: ":2776", BindType: session.BindTransceiver,
			DialTimeout: 10 * time.Second, ReconnectMin: time.Second, ReconnectMax: time.Minute, ThrottleDelay: 200 * time.Millisecond,
			ThrottleDelayMax: 10 * time.Second, MaxAttempts: 10, MaxAge: 48 * time.Hour, QueueSize: 10000, Binds: 1,
			Session: session.Config{Window: DefaultUpstreamWindow}, MaxUnsettled: DefaultMaxUnsettled}},
		{"reconnect_max below reconnect_min", ClientConfig{Name: "up", Address: "up:2775", SystemID: "gw", BindType: session.BindReceiver, ReconnectMin: 2 * time.Minute},
			ClientConfig{Name: "up", Address: "up:2775", SystemID: "gw", BindType: session.BindReceiver,
				DialTimeout: 10 * time.Second, ReconnectMin: 2 * time.Minute, ReconnectMax: 2 * time.Minute, ThrottleDelay: 200 * time.Millisecond,
				ThrottleDelayMax: 10 * time.Second, MaxAttempts: 10, MaxAge: 48 * time.Hour, QueueSize: 10000, Binds: 1,
				Session: session.Config{Window: DefaultUpstreamWindow}, MaxUnsettled: DefaultMaxUnsettled}},
	} {
		if got := tc.cfg.withDefaults(); got != tc.want {
			t.Errorf("%s: withDefaults() =\n%+v, want\n%+v", tc.name, got, tc.want)
		}
		if err := tc.cfg.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		set   func(*ClientConfig)
		field string
	}{
		{func(c *ClientConfig) { c.DialTimeout = -1 }, "dial_timeout"},
		{func(c *ClientConfig) { c.ReconnectMin = -1 }, "reconnect_min"},
		{func(c *ClientConfig) { c.ReconnectMax = -1 }, "reconnect_max"},
		{func(c *ClientConfig) { c.ThrottleDelay = -1 }, "throttle_delay"},
		{func(c *ClientConfig) { c.ThrottleDelayMax = -1 }, "throttle_delay_max"},
		{func(c *ClientConfig) { c.QueueSize = -1 }, "queue_size"},
		{func(c *ClientConfig) { c.MaxUnsettled = -1 }, "max_unsettled"},
		{func(c *ClientConfig) { c.Session.InboundLimit = -1 }, "session.inbound_limit"},
	} {
		cfg := base
		tc.set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("Validate with a negative %s = %v, want an error naming it", tc.field, err)
		}
	}
	// max_unsettled below the window is the window: the window's parts are out unsettled anyway.
	for _, tc := range []struct{ window, unsettled, want int }{{20, 3, 20}, {0, 3, DefaultUpstreamWindow}, {10, 0, DefaultMaxUnsettled}, {10, 40, 40}} {
		c := ClientConfig{Address: "up:2775", SystemID: "gw", MaxUnsettled: tc.unsettled}
		c.Session.Window = tc.window
		if got := c.withDefaults().unsettled(); got != tc.want {
			t.Errorf("window %d, max_unsettled %d: %d parts out unsettled, want %d", tc.window, tc.unsettled, got, tc.want)
		}
	}
}

func TestRouterConfigDefaults(t *testing.T) {
	for _, tc := range []struct {
		cfg, want RouterConfig
	}{
		{RouterConfig{}, RouterConfig{DeliveryRetry: time.Second, MaxDeliveryAttempts: 10, LongMessages: "udh8"}},
		{RouterConfig{DeliveryRetry: time.Minute, MaxDeliveryAttempts: 3, LongMessages: "sar"}, RouterConfig{DeliveryRetry: time.Minute, MaxDeliveryAttempts: 3, LongMessages: "sar"}},
	} {
		got := tc.cfg.withDefaults()
		if got.DeliveryRetry != tc.want.DeliveryRetry || got.MaxDeliveryAttempts != tc.want.MaxDeliveryAttempts || got.LongMessages != tc.want.LongMessages {
			t.Errorf("withDefaults(%+v) = %+v, want %+v", tc.cfg, got, tc.want)
		}
		if err := tc.cfg.Validate(nil); err != nil {
			t.Errorf("Validate(%+v) = %v", tc.cfg, err)
		}
	}
	for _, tc := range []struct {
		cfg   RouterConfig
		field string
	}{
		{RouterConfig{DeliveryRetry: -1}, "delivery_retry"},
		{RouterConfig{MaxDeliveryAttempts: -1}, "max_delivery_attempts"},
	} {
		if err := tc.cfg.Validate(nil); err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestGatewayConfigDefaults(t *testing.T) {
	got, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.Instance == "" || got.Workers != 2*session.DefaultInboundLimit {
		t.Errorf("zero Config: instance %q, workers %d; want the host name and %d", got.Instance, got.Workers, 2*session.DefaultInboundLimit)
	}
	got, err = Config{Instance: "a", Workers: 7, Server: ServerConfig{Session: session.Config{InboundLimit: 5}}}.withDefaults()
	if err != nil || got.Instance != "a" || got.Workers != 7 {
		t.Errorf("set Config: instance %q, workers %d, %v; want a, 7", got.Instance, got.Workers, err)
	}
	if got, _ := (Config{Server: ServerConfig{Session: session.Config{InboundLimit: 5}}}).withDefaults(); got.Workers != 10 {
		t.Errorf("workers %d with inbound_limit 5, want 10", got.Workers)
	}
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Workers: -1}, "workers"},
		{Config{Upstreams: []ClientConfig{{Address: "a:1", SystemID: "gw", DialTimeout: -1}}}, "upstreams[0]: dial_timeout"},
		{Config{Routing: RouterConfig{DeliveryRetry: -1}}, "routing: delivery_retry"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.field+": ") {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestRouterConfigValidate(t *testing.T) {
	ups := []string{"a"}
	for _, tc := range []struct {
		cfg  RouterConfig
		want string
	}{
		{RouterConfig{Routes: []Route{{Prefix: "1"}}}, "routes[0].upstream is required"},
		{RouterConfig{Routes: []Route{{Upstream: "zz"}}}, `routes[0].upstream "zz" names no configured upstream`},
		{RouterConfig{Routes: []Route{{Upstream: "a", Accounts: []string{""}}}}, "routes[0].accounts[0] is empty"},
		{RouterConfig{MORoutes: []MORoute{{Prefix: "1"}}}, "mo_routes[0].account is required"},
		{RouterConfig{DeliveryRetry: -1}, "delivery_retry"},
		{RouterConfig{MaxDeliveryAttempts: -1}, "max_delivery_attempts"},
		{RouterConfig{LongMessages: "smoke"}, "long_messages"},
	} {
		err := tc.cfg.Validate(ups)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if err := (RouterConfig{Routes: []Route{{Upstream: "a"}}, MORoutes: []MORoute{{Account: "x"}}, LongMessages: "sar"}).Validate(ups); err != nil {
		t.Errorf("valid config: %v", err)
	}
	dup := Config{Upstreams: []ClientConfig{simUpstream("a", "127.0.0.1:1"), simUpstream("a", "127.0.0.1:2")}}
	if _, err := New(dup, newEmbedded(t), zerolog.Nop()); err == nil {
		t.Error("New accepted two upstreams of the same name")
	}
}

func TestConfigFromYAML(t *testing.T) {
	const doc = `
system_id: gw
listeners:
  - address: 127.0.0.1:2775
  - address: 127.0.0.1:3550
    tls: {cert_file: c.pem, key_file: k.pem}
session: {window: 50, response_timeout: 3s, enquire_link: 45s, throttle_inbound: true}
failure_delay: 500ms
`
	var sc ServerConfig
	if err := yaml.Unmarshal([]byte(doc), &sc); err != nil {
		t.Fatal(err)
	}
	if sc.SystemID != "gw" || len(sc.Listeners) != 2 || sc.Listeners[1].TLS.KeyFile != "k.pem" || sc.Session.Window != 50 ||
		sc.Session.ResponseTimeout != 3*time.Second || sc.Session.EnquireLink != 45*time.Second || !sc.Session.ThrottleInbound || sc.FailureDelay != 500*time.Millisecond {
		t.Fatalf("server config %+v", sc)
	}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	const cdoc = `
name: carrier-a
address: smsc.example.net:2775
tls: {server_name: smsc.example.net}
system_id: acme
password: pw
bind_type: tx
session: {window: 100}
reconnect_min: 2s
reconnect_max: 1m
`
	var cc ClientConfig
	if err := yaml.Unmarshal([]byte(cdoc), &cc); err != nil {
		t.Fatal(err)
	}
	if cc.BindType != session.BindTransmitter || cc.TLS.ServerName != "smsc.example.net" || cc.ReconnectMin != 2*time.Second || cc.Session.Window != 100 {
		t.Fatalf("client config %+v", cc)
	}
	if err := cc.Validate(); err != nil {
		t.Fatal(err)
	}
	var bad ClientConfig
	if err := yaml.Unmarshal([]byte("bind_type: sideways"), &bad); err == nil {
		t.Fatal("unknown bind type accepted")
	}
	var acct Account
	if err := yaml.Unmarshal([]byte("{system_id: a, bind_types: [transmitter, receiver], allowed_ips: [10.0.0.0/8]}"), &acct); err != nil || len(acct.BindTypes) != 2 || acct.BindTypes[1] != session.BindReceiver {
		t.Fatalf("account %+v %v", acct, err)
	}
}
