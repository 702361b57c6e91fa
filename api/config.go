package api

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
)

// Config configures the API server. Every zero value means the documented default, so an empty
// Config serves plain gRPC on 127.0.0.1:9090 and REST on 127.0.0.1:8080 with API keys only.
type Config struct {
	// GRPCListen is the gRPC listener's host:port. Empty means 127.0.0.1:9090.
	GRPCListen string `yaml:"grpc_listen"`
	// HTTPListen is the REST listener's host:port (REST API, /v1/admin, /healthz, /readyz,
	// /openapi.json, /metrics, /debug/pprof/ when on). Empty means 127.0.0.1:8080.
	HTTPListen string `yaml:"http_listen"`
	// TLS, when set, serves both ports over TLS with this certificate.
	TLS *TLSConfig `yaml:"tls"`
	// AdminUsers are the operators allowed on the admin endpoints (AdminService over gRPC and
	// /v1/admin over REST) with HTTP Basic credentials, besides API keys with the admin scope.
	// Empty means Basic is refused and only admin API keys work.
	AdminUsers []AdminUser `yaml:"admin_users"`
	// Instance names this gateway process in session listings. Empty means the host name.
	Instance string `yaml:"instance"`
	// ReadyInterval is how often the gRPC health status is refreshed from the gateway's and the
	// store's readiness. 0 means 5s.
	ReadyInterval time.Duration `yaml:"ready_interval"`
	// Webhooks tunes the webhook dispatcher.
	Webhooks WebhookConfig `yaml:"webhooks"`
	// Metrics serves Prometheus metrics at /metrics on the HTTP port.
	Metrics MetricsConfig `yaml:"metrics"`
	// PProf serves net/http/pprof's CPU, heap and other profiles under /debug/pprof/ on the HTTP
	// port, to the same credentials as the admin endpoints (operator Basic or an admin-scope key),
	// so a live gateway can be measured. Off by default.
	PProf bool `yaml:"pprof"`
}

// MetricsConfig configures /metrics.
type MetricsConfig struct {
	// Enabled serves /metrics. Unset means true; false serves nothing there (404).
	Enabled *bool `yaml:"enabled"`
	// Auth asks /metrics for admin credentials, as the admin endpoints do. False (the default, as
	// Prometheus scrapers usually expect) serves it to anyone who reaches the HTTP port.
	Auth bool `yaml:"auth"`
	// Collectors are added to the registry /metrics serves, besides the Go runtime's, the
	// process's and the webhook dispatcher's: the daemon adds the gateway's and the store's.
	Collectors []prometheus.Collector `yaml:"-"`
}

// enabled reports whether /metrics is served.
func (m MetricsConfig) enabled() bool { return m.Enabled == nil || *m.Enabled }

// TLSConfig is the server certificate of both API ports.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"` // PEM certificate chain; required
	KeyFile  string `yaml:"key_file"`  // PEM private key; required
	// MinVersion is "1.2" or "1.3". Empty means 1.2.
	MinVersion string `yaml:"min_version"`
}

// AdminUser is an operator who may call the admin endpoints with HTTP Basic credentials.
// The password is kept only as a bcrypt hash (`smppgw hash-password` prints one).
type AdminUser struct {
	Name         string `yaml:"name"`
	PasswordHash string `yaml:"password_hash"` // bcrypt
}

// WebhookConfig tunes webhook deliveries.
type WebhookConfig struct {
	// Workers bounds how many POSTs are in flight at once for one webhook (and for the per-message
	// callbacks): each instance claims at most this many deliveries of a webhook's queue at a time.
	// 0 means 8.
	Workers int `yaml:"workers"`
	// QueueSize is no longer used: deliveries wait in the store. Kept so that configurations
	// naming it still load.
	QueueSize int `yaml:"queue_size"`
	// Timeout bounds one POST. 0 means 10s.
	Timeout time.Duration `yaml:"timeout"`
	// RetryMin is the first back-off after a failed POST; it doubles per attempt (with jitter)
	// up to RetryMax. 0 means 1s; RetryMax 0 means 10m.
	RetryMin time.Duration `yaml:"retry_min"`
	RetryMax time.Duration `yaml:"retry_max"`
	// MaxRetryDuration is how long a failing delivery is retried before it is dropped, for every
	// webhook (the store keeps no per-webhook value), counted from when it was queued. 0 means 24h;
	// at most 72h.
	MaxRetryDuration time.Duration `yaml:"max_retry_duration"`
	// RefreshInterval is how often the webhook registrations are re-read from the store, so
	// changes made through another instance take effect. 0 means 10s.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// CallbackSecret signs the per-message callbacks (SubmitRequest.callback_url) of an account that
	// has no enabled webhook; an account with one signs them with its oldest one's secret. Empty:
	// such an account's messages may not ask for a callback.
	CallbackSecret string `yaml:"callback_secret"`
}

// Defaults of Config.
const (
	DefaultGRPCListen = "127.0.0.1:9090"
	DefaultHTTPListen = "127.0.0.1:8080"
	maxWebhookRetry   = 72 * time.Hour
)

func (c Config) withDefaults() Config {
	if c.GRPCListen == "" {
		c.GRPCListen = DefaultGRPCListen
	}
	if c.HTTPListen == "" {
		c.HTTPListen = DefaultHTTPListen
	}
	if c.ReadyInterval == 0 {
		c.ReadyInterval = 5 * time.Second
	}
	w := &c.Webhooks
	if w.Workers == 0 {
		w.Workers = 8
	}
	if w.QueueSize == 0 {
		w.QueueSize = 10000
	}
	if w.Timeout == 0 {
		w.Timeout = 10 * time.Second
	}
	if w.RetryMin == 0 {
		w.RetryMin = time.Second
	}
	if w.RetryMax == 0 {
		w.RetryMax = 10 * time.Minute
	}
	if w.MaxRetryDuration == 0 {
		w.MaxRetryDuration = 24 * time.Hour
	}
	if w.RefreshInterval == 0 {
		w.RefreshInterval = 10 * time.Second
	}
	return c
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	c = c.withDefaults()
	for _, l := range []struct{ name, addr string }{{"grpc_listen", c.GRPCListen}, {"http_listen", c.HTTPListen}} {
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			return fmt.Errorf("api: %s: %w", l.name, err)
		}
	}
	if c.TLS != nil {
		if _, err := c.TLS.load(); err != nil {
			return err
		}
	}
	for i, u := range c.AdminUsers {
		if u.Name == "" {
			return fmt.Errorf("api: admin_users[%d].name: empty", i)
		}
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			return fmt.Errorf("api: admin_users[%d].password_hash: not a bcrypt hash: %w", i, err)
		}
	}
	if c.ReadyInterval < 0 {
		return errors.New("api: ready_interval: negative")
	}
	w := c.Webhooks
	switch {
	case w.Workers < 0:
		return errors.New("api: webhooks.workers: negative")
	case w.QueueSize < 0:
		return errors.New("api: webhooks.queue_size: negative")
	case w.Timeout < 0:
		return errors.New("api: webhooks.timeout: negative")
	case w.RetryMin < 0 || w.RetryMax < w.RetryMin:
		return errors.New("api: webhooks.retry_min, retry_max: need 0 <= retry_min <= retry_max")
	case w.MaxRetryDuration < 0 || w.MaxRetryDuration > maxWebhookRetry:
		return errors.New("api: webhooks.max_retry_duration: must be between 0 and 72h")
	case w.RefreshInterval < 0:
		return errors.New("api: webhooks.refresh_interval: negative")
	}
	return nil
}

func (t *TLSConfig) load() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("api: tls.cert_file and tls.key_file: both required")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("api: tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch t.MinVersion {
	case "", "1.2":
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf("api: tls.min_version: %q is not 1.2 or 1.3", t.MinVersion)
	}
	return cfg, nil
}
