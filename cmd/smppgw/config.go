package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"gopkg.in/yaml.v3"

	"github.com/smppgw/smppgw/api"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/internal/config"
)

// envPrefix starts every environment override: SMPPGW_ then the setting's YAML path in upper case,
// levels joined by "_" (smpp.session.window is SMPPGW_SMPP_SESSION_WINDOW).
const envPrefix = "SMPPGW_"

// defaultListen is where the daemon accepts binds when the configuration names no listener: loopback
// only, so that a first run exposes nothing.
const defaultListen = "127.0.0.1:2775"

// Defaults of the demo section: the built-in SMSC simulator listens next to the gateway's port, on
// loopback, and answers each submit_sm with a receipt a second later.
const (
	defaultDemoListen       = "127.0.0.1:2776"
	defaultDemoReceiptDelay = time.Second
)

// Config is the daemon's configuration file. deploy/smppgw.example.yaml documents every field.
type Config struct {
	Log  LogConfig  `yaml:"log"`
	SMPP SMPPConfig `yaml:"smpp"`
	// Upstreams are the SMSCs the gateway binds to (ESME role), one supervised bind each.
	Upstreams []gateway.ClientConfig `yaml:"upstreams"`
	// Routing sends submissions to upstreams and MO messages to accounts.
	Routing gateway.RouterConfig `yaml:"routing"`
	// Store is where messages, queues, receipts and accounts are kept: the embedded file by default,
	// Redis when store.redis.addrs is set.
	Store StoreConfig `yaml:"store"`
	// Cluster tunes how instances sharing one Redis coordinate: the lease each upstream bind is held
	// under (one instance binds it at a time) and how often each instance publishes its state for the
	// admin API's cluster view (/v1/admin/cluster). Unused with the embedded store.
	Cluster gateway.OwnershipConfig `yaml:"cluster"`
	// API serves applications (gRPC and REST Submit, receipts) and operators (admin endpoints).
	API APIConfig `yaml:"api"`
	// Demo is what a first run gets so that a message goes end to end with no configuration.
	Demo DemoConfig `yaml:"demo"`
	// ShutdownTimeout bounds the graceful drain after SIGTERM/SIGINT. 0 means 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// GCPercent is the Go garbage collector's target (GOGC): how far the heap may grow over what
	// the last collection kept before the next one runs. 0 means defaultGCPercent. The GOGC
	// environment variable, when set, wins over it.
	GCPercent int `yaml:"gc_percent"`
}

// defaultGCPercent is gc_percent's default, Go's own. Measured for issue 13 (bench row 7, 60 s,
// embedded store): 200 forwarded 3.7% more messages a second for 35% more peak RSS (656 against
// 485 MB), and the gap widens as the store grows (1.2 GB after 2 minutes), so it is a choice for
// the operator, not a default.
const defaultGCPercent = 100

// DemoConfig is the demo a first run gets: when no upstreams are configured and the gateway makes
// the demo account (no accounts configured, none but demo in the store), it also starts a built-in
// SMSC simulator, binds to it as the upstream "demo-smsc", routes every destination of the demo
// account there, and makes an API key for the demo account (send, read and admin scopes), printed
// once in the log; the previous run's demo key is revoked.
type DemoConfig struct {
	// Disabled turns the demo off: the demo account is still made, with no upstream, route or key.
	Disabled bool `yaml:"disabled"`
	// Listen is the simulator's host:port. Empty means 127.0.0.1:2776.
	Listen string `yaml:"listen"`
	// ReceiptDelay is how long after answering a submit_sm the simulator sends its delivery receipt.
	// 0 means 1s.
	ReceiptDelay time.Duration `yaml:"receipt_delay"`
}

// LogConfig chooses what is logged and how.
type LogConfig struct {
	// Level is trace, debug, info, warn or error. Empty means info.
	Level string `yaml:"level"`
	// Format is console (human, coloured on a terminal) or json (one object a line). Empty means console.
	Format string `yaml:"format"`
}

// SMPPConfig is the SMSC side: where ESMEs bind and who may.
type SMPPConfig struct {
	// Listen is a plain TCP address to accept binds on. When neither listen nor listeners is set, it
	// is 127.0.0.1:2775.
	Listen string `yaml:"listen"`
	// The server's settings: system_id, listeners (more addresses, TLS), session tuning, bind failure
	// slow-down.
	gateway.ServerConfig `yaml:",inline"`
	// Accounts may bind. With none, a demo account with a random password is made at start-up and
	// printed once in the log.
	Accounts []gateway.Account `yaml:"accounts"`
}

// APIConfig is the API server's configuration, on by default on loopback addresses.
type APIConfig struct {
	// Disabled turns the API off (SMPP only).
	Disabled   bool `yaml:"disabled"`
	api.Config `yaml:",inline"`
}

// StoreConfig chooses and tunes the store.
type StoreConfig struct {
	// Path is the embedded store's file, created (with its directory) when missing. Empty means
	// $XDG_STATE_HOME/smppgw/smppgw.db when XDG_STATE_HOME is set, else ./data/smppgw.db. Ignored with
	// Redis.
	Path  string      `yaml:"path"`
	Redis RedisConfig `yaml:"redis"`
	// VisibilityTimeout: a claimed queue entry not acknowledged within it is handed out again. 0: 30s.
	VisibilityTimeout time.Duration `yaml:"visibility_timeout"`
	// IDMapTTL: how long an upstream message id stays resolvable, waiting for its receipt. 0: 72h.
	IDMapTTL time.Duration `yaml:"id_map_ttl"`
	// ParkTTL: how long a receipt that came before its submit_sm_resp waits for it. 0: 1h.
	ParkTTL time.Duration `yaml:"park_ttl"`
	// MessageTTL: how long messages and their receipts are kept; 0 keeps them for ever.
	MessageTTL time.Duration `yaml:"message_ttl"`
}

// RedisConfig is the Redis store (production, several instances). Run Redis with appendonly yes.
type RedisConfig struct {
	// Addrs are host:port: one for a single node, the seeds of a Cluster, or the Sentinels with
	// master_name. A YAML list, or one comma-separated string (as SMPPGW_STORE_REDIS_ADDRS takes it).
	Addrs      AddrList `yaml:"addrs"`
	MasterName string   `yaml:"master_name"` // Sentinel master name
	Cluster    bool     `yaml:"cluster"`     // treat addrs as a Redis Cluster even with one address
	Username   string   `yaml:"username"`
	Password   string   `yaml:"password"`
	DB         int      `yaml:"db"`
	// Prefix starts every key. Empty means "smppgw:".
	Prefix string `yaml:"prefix"`
}

// AddrList is a list of addresses written as a YAML list or as one comma-separated string.
type AddrList []string

// UnmarshalText reads "host:port,host:port".
func (a *AddrList) UnmarshalText(b []byte) error {
	*a = nil
	for _, s := range strings.Split(string(b), ",") {
		if s = strings.TrimSpace(s); s != "" {
			*a = append(*a, s)
		}
	}
	return nil
}

// UnmarshalYAML reads a list or a comma-separated string.
func (a *AddrList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return a.UnmarshalText([]byte(n.Value))
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*a = l
	return nil
}

// storePath is where the embedded store lives: store.path, else under $XDG_STATE_HOME, else ./data.
func (c *StoreConfig) storePath(getenv func(string) string) string {
	switch {
	case c.Path != "":
		return c.Path
	case getenv("XDG_STATE_HOME") != "":
		return filepath.Join(getenv("XDG_STATE_HOME"), "smppgw", "smppgw.db")
	}
	return filepath.Join("data", "smppgw.db")
}

// loadConfig reads the YAML file at path (none when path is empty), applies the environment
// overrides from environ (os.Environ's form), fills defaults and validates.
func loadConfig(path string, environ []string) (Config, error) {
	var cfg Config
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := config.Decode(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	// Lists and optional (pointer) sections are file-only; SMPPGW_CONFIG names the file itself.
	if err := config.ApplyEnv(&cfg, envPrefix, environ, append([]string{envPrefix + "CONFIG"}, ctlEnvNames...)...); err != nil {
		if errors.Is(err, config.ErrUnknownEnv) {
			err = fmt.Errorf("%w (see smppgw serve --help)", err)
		}
		return cfg, err
	}
	cfg.fillDefaults()
	if err := cfg.validate(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func (c *Config) fillDefaults() {
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "console"
	}
	if c.SMPP.Listen == "" && len(c.SMPP.Listeners) == 0 {
		c.SMPP.Listen = defaultListen
	}
	if c.Demo.Listen == "" {
		c.Demo.Listen = defaultDemoListen
	}
	if c.Demo.ReceiptDelay == 0 {
		c.Demo.ReceiptDelay = defaultDemoReceiptDelay
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.GCPercent == 0 {
		c.GCPercent = defaultGCPercent
	}
}

// listeners is every address the server opens: listen first, then listeners.
func (c *Config) listeners() []gateway.ListenerConfig {
	var out []gateway.ListenerConfig
	if c.SMPP.Listen != "" {
		out = append(out, gateway.ListenerConfig{Address: c.SMPP.Listen})
	}
	return append(out, c.SMPP.Listeners...)
}

// upstreamName is how routes refer to an upstream: its name, or system_id@address as the client
// labels an unnamed one (system_id@outbind_listen for one that only takes outbinds).
func upstreamName(u gateway.ClientConfig) string {
	switch {
	case u.Name != "":
		return u.Name
	case u.Address == "":
		return u.SystemID + "@" + u.OutbindListen
	}
	return u.SystemID + "@" + u.Address
}

func (c *Config) validate() error {
	if _, err := zerolog.ParseLevel(c.Log.Level); err != nil || c.Log.Level == "" {
		return fmt.Errorf("config: log.level %q: want trace, debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "console" && c.Log.Format != "json" {
		return fmt.Errorf("config: log.format %q: want console or json", c.Log.Format)
	}
	if c.Store.VisibilityTimeout < 0 || c.Store.IDMapTTL < 0 || c.Store.ParkTTL < 0 || c.Store.MessageTTL < 0 {
		return errors.New("config: store durations must not be negative")
	}
	if c.Store.Redis.DB < 0 {
		return errors.New("config: store.redis.db must not be negative")
	}
	if strings.ContainsAny(c.Store.Redis.Prefix, "{}") {
		return errors.New("config: store.redis.prefix must not contain { or }")
	}
	if !c.API.Disabled {
		if err := c.API.Config.Validate(); err != nil {
			return fmt.Errorf("config: api: %w", err)
		}
	}
	if err := c.Cluster.Validate(); err != nil {
		return fmt.Errorf("config: cluster.%w", err)
	}
	if c.ShutdownTimeout < 0 {
		return errors.New("config: shutdown_timeout must not be negative")
	}
	if c.GCPercent < 10 || c.GCPercent > 10000 {
		return fmt.Errorf("config: gc_percent %d: want 10 to 10000", c.GCPercent)
	}
	if !c.Demo.Disabled {
		if _, _, err := net.SplitHostPort(c.Demo.Listen); err != nil {
			return fmt.Errorf("config: demo.listen %q: want host:port", c.Demo.Listen)
		}
		if c.Demo.ReceiptDelay < 0 {
			return errors.New("config: demo.receipt_delay must not be negative")
		}
	}
	srv := c.SMPP.ServerConfig
	srv.Listeners = c.listeners()
	if err := srv.Validate(); err != nil {
		return fmt.Errorf("config: smpp: %w", err)
	}
	seen := map[string]bool{}
	for i, a := range c.SMPP.Accounts {
		if a.SystemID == "" {
			return fmt.Errorf("config: smpp.accounts[%d].system_id is required", i)
		}
		if seen[a.SystemID] {
			return fmt.Errorf("config: smpp.accounts[%d]: system_id %q appears twice", i, a.SystemID)
		}
		seen[a.SystemID] = true
	}
	// The checks the server makes of an account, without hashing anything at start-up.
	for _, a := range c.SMPP.Accounts {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("config: smpp.accounts: %w", err)
		}
	}
	names := make([]string, 0, len(c.Upstreams))
	for i, u := range c.Upstreams {
		if err := u.Validate(); err != nil {
			return fmt.Errorf("config: upstreams[%d]: %w", i, err)
		}
		n := upstreamName(u)
		for _, m := range names {
			if m == n {
				return fmt.Errorf("config: upstreams[%d]: name %q appears twice", i, n)
			}
		}
		names = append(names, n)
	}
	if err := c.Routing.Validate(names); err != nil {
		return fmt.Errorf("config: routing: %w", err)
	}
	for i, r := range c.Routing.MORoutes {
		if len(c.SMPP.Accounts) > 0 && !seen[r.Account] {
			return fmt.Errorf("config: routing.mo_routes[%d].account %q is not in smpp.accounts", i, r.Account)
		}
	}
	return nil
}

// envNames lists every environment override, for --help.
func envNames() []string { return config.EnvNames(Config{}, envPrefix) }
