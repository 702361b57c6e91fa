package gateway

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// ListenerConfig is one address the server accepts binds on.
type ListenerConfig struct {
	// Address is host:port. Empty means ":2775", or ":3550" when TLS is set.
	Address string `yaml:"address"`
	// TLS, when set, makes this a TLS listener.
	TLS *ServerTLSConfig `yaml:"tls"`
}

func (c ListenerConfig) withDefaults() ListenerConfig {
	if c.Address == "" {
		c.Address = ":2775"
		if c.TLS != nil {
			c.Address = ":3550"
		}
	}
	return c
}

// Zero values and negative durations, the same for every config type of this package: a zero value
// means the default its field documents, and withDefaults (one per type) is the only place it is
// applied. A negative value disables what the field bounds or delays, where its doc says so (the bind
// failure slow-down, the credential cache, a part's attempts and age; session.Config.EnquireLink);
// any other negative value is refused by Validate, with the field's name.

// ServerConfig configures the SMSC role. The zero value listens on nothing (use Serve with your own
// listener) and uses the defaults below.
type ServerConfig struct {
	// SystemID is ours, sent in bind_resp and outbind. Empty means "smppgw".
	SystemID string `yaml:"system_id"`
	// Listeners are opened by Start. Empty means none: the caller serves its own (Serve).
	Listeners []ListenerConfig `yaml:"listeners"`
	// Session tunes every accepted session; its zero values mean session.Config's defaults.
	Session session.Config `yaml:"session"`
	// FailureDelay is how long the answer to a failed bind is held back, counted from the bind's
	// arrival, for an address (and a system_id) that just failed; it doubles with each further failure
	// of that address (system_id) up to FailureDelayMax. Until then the address is in a penalty window:
	// its binds are refused with ESME_RBINDFAIL when the window ends, with no password check; the
	// system_id's binds likewise, unless their credentials are in the cache of verified ones.
	// 0 means 1s; negative disables the slow-down.
	FailureDelay time.Duration `yaml:"failure_delay"`
	// FailureDelayMax caps FailureDelay. 0 means 10s. It is clamped below Session.BindTimeout
	// (session.Config), so that a refused bind always gets its bind_resp before the connection is
	// closed for not binding.
	FailureDelayMax time.Duration `yaml:"failure_delay_max"`
	// FailureMemory is how long failures of an address (system_id) are remembered after the last one.
	// 0 means 10m. At most 65536 addresses and as many system_ids are remembered.
	FailureMemory time.Duration `yaml:"failure_memory"`
	// MaxPasswordChecks bounds the bcrypt comparisons running at once; a bind that needs one beyond it
	// is refused at once with ESME_RSYSERR (to be retried) rather than queued. 0 means GOMAXPROCS.
	MaxPasswordChecks int `yaml:"max_password_checks"`
	// CredentialCache is how many system_ids' last verified credentials are remembered (a keyed
	// SHA-256 of the password, never the password, tied to the account's current hash), so that a bind
	// repeating them costs no bcrypt comparison. 0 means 10000; negative disables the cache.
	CredentialCache int `yaml:"credential_cache"`
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.SystemID == "" {
		c.SystemID = "smppgw"
	}
	if c.Listeners != nil {
		ls := make([]ListenerConfig, len(c.Listeners))
		for i, l := range c.Listeners {
			ls[i] = l.withDefaults()
		}
		c.Listeners = ls
	}
	if c.FailureDelay == 0 {
		c.FailureDelay = time.Second
	}
	if c.FailureDelayMax == 0 {
		c.FailureDelayMax = 10 * time.Second
	}
	if limit := bindAnswerLimit(c.Session.WithDefaults().BindTimeout); c.FailureDelayMax > limit {
		c.FailureDelayMax = limit
	}
	if c.FailureMemory == 0 {
		c.FailureMemory = 10 * time.Minute
	}
	if c.MaxPasswordChecks == 0 {
		c.MaxPasswordChecks = runtime.GOMAXPROCS(0)
	}
	if c.CredentialCache == 0 {
		c.CredentialCache = 10000
	}
	return c
}

// bindAnswerLimit is how long after a connection opens a refused bind may still be answered: the bind
// timeout less a margin for the answer to be written before the connection is closed.
func bindAnswerLimit(bindTimeout time.Duration) time.Duration {
	return bindTimeout - min(time.Second, bindTimeout/10)
}

// Validate reports the first field that cannot work.
func (c ServerConfig) Validate() error {
	if len(c.SystemID) > 15 {
		return fmt.Errorf("system_id: %q is %d octets, at most 15", c.SystemID, len(c.SystemID))
	}
	for i, l := range c.Listeners {
		if l.TLS != nil && (l.TLS.CertFile == "" || l.TLS.KeyFile == "") {
			return fmt.Errorf("listeners[%d].tls: cert_file and key_file are required", i)
		}
	}
	switch {
	case c.FailureDelayMax < 0:
		return negative("failure_delay_max", c.FailureDelayMax)
	case c.FailureMemory < 0:
		return negative("failure_memory", c.FailureMemory)
	case c.MaxPasswordChecks < 0:
		return negative("max_password_checks", c.MaxPasswordChecks)
	}
	return c.Session.Validate()
}

// negative is Validate's error for a field that must not be negative.
func negative[T int | time.Duration](field string, v T) error {
	return fmt.Errorf("%s: %v, must not be negative", field, v)
}

// OutbindConfig is an ESME the server may connect to with outbind (SMPP 3.4 section 2.2.1).
type OutbindConfig struct {
	Address  string           `yaml:"address"`   // host:port of the ESME; required
	SystemID string           `yaml:"system_id"` // sent in outbind; empty means the server's SystemID
	Password string           `yaml:"password"`  // sent in outbind; empty means none
	TLS      *ClientTLSConfig `yaml:"tls"`       // nil means plain TCP
	// DialTimeout bounds the connect. 0 means 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
}

// withDefaults fills SystemID with serverID, the server's own, and DialTimeout.
func (c OutbindConfig) withDefaults(serverID string) OutbindConfig {
	if c.SystemID == "" {
		c.SystemID = serverID
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	return c
}

// Validate reports the first field that cannot work.
func (c OutbindConfig) Validate() error {
	switch {
	case c.Address == "":
		return errors.New("address: required")
	case len(c.SystemID) > 15:
		return fmt.Errorf("system_id: %q is %d octets, at most 15", c.SystemID, len(c.SystemID))
	case len(c.Password) > 8:
		return fmt.Errorf("password: %d octets, at most 8", len(c.Password))
	case c.DialTimeout < 0:
		return negative("dial_timeout", c.DialTimeout)
	}
	return nil
}

// ClientConfig configures one upstream bind (ESME role). Zero values mean the documented defaults.
type ClientConfig struct {
	// Name labels the upstream in logs and status. Empty means system_id@address.
	Name string `yaml:"name"`
	// Address is the upstream's host:port. Empty means the client only binds back on outbinds received
	// on OutbindListen.
	Address string `yaml:"address"`
	// TLS, when set, dials with TLS (verification and SNI per ClientTLSConfig); nil means plain TCP.
	TLS *ClientTLSConfig `yaml:"tls"`
	// SystemID is ours at the upstream; required. Password and SystemType are sent in the bind; empty
	// means none.
	SystemID   string `yaml:"system_id"`
	Password   string `yaml:"password"`
	SystemType string `yaml:"system_type"`
	// BindType is how to bind. The zero value means transceiver.
	BindType session.BindType `yaml:"bind_type"`
	// AddressRange is the bind's address_range; empty means none.
	AddressRange string `yaml:"address_range"`
	// Session tunes the session: window, response timeout, enquire_link interval, ...; its zero values
	// mean session.Config's defaults.
	Session session.Config `yaml:"session"`
	// DialTimeout bounds the TCP (and TLS) connect. 0 means 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReconnectMin is the first back-off after a failed or lost bind; it doubles per failure (with full
	// jitter) up to ReconnectMax. 0 means 1s; ReconnectMax 0 means 1m, and one below ReconnectMin
	// means ReconnectMin.
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	// ThrottleDelay is the pause after the upstream answers ESME_RTHROTTLED or ESME_RMSGQFUL; it doubles
	// while the upstream keeps refusing, up to ThrottleDelayMax. 0 means 200ms; ThrottleDelayMax 0 means 10s.
	ThrottleDelay    time.Duration `yaml:"throttle_delay"`
	ThrottleDelayMax time.Duration `yaml:"throttle_delay_max"`
	// MaxAttempts bounds how often one part (a job) is sent: a part the upstream answers with a
	// temporary error (ESME_RSYSERR, ESME_RX_T_APPN), or that is lost (no response, the bind
	// dropped), is retried until it was sent this many times, then fails UNDELIVERABLE with a
	// failure receipt. Throttling answers (ESME_RTHROTTLED, ESME_RMSGQFUL) slow the bind down and
	// do not count. 0 means 10; negative disables the limit.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxAge bounds how long after it was accepted a part may still be sent; an older one fails
	// EXPIRED with a failure receipt instead (checked when it is taken from the queue, so while the
	// upstream is down parts expire when its bind is back). 0 means 48h; negative disables the limit.
	// A part's own validity_period is enforced the same way, whatever MaxAge says: still queued when
	// it ends, the part fails EXPIRED unsent.
	MaxAge time.Duration `yaml:"max_age"`
	// QueueSize bounds the in-memory queue of pending submissions (Submit; a Gateway's clients read the
	// store's queue instead). 0 means 10000.
	QueueSize int `yaml:"queue_size"`
	// OutbindListen, when set, is a host:port where the upstream may connect and send outbind; the
	// client then binds back on that connection. Empty means no outbind is accepted.
	OutbindListen string `yaml:"outbind_listen"`
	// OutbindPassword, when set, must match the password of an accepted outbind; empty means any.
	OutbindPassword string `yaml:"outbind_password"`
	// MaxTPS is the upstream's contracted throughput: at most this many requests per second go to it,
	// over all its binds, as a token bucket with a burst of one (so no second ever carries more than
	// MaxTPS+1). The pump waits for a token before each submit; ESME_RTHROTTLED from the upstream
	// still pauses it on top (ThrottleDelay). 0 means no cap; negative is refused.
	MaxTPS float64 `yaml:"max_tps"`
	// Binds is how many binds are kept to the upstream at once (each with its own session and
	// window, all taking work from the upstream's one queue and sharing its MaxTPS and throttle
	// pause), for an upstream that allows several. 0 means 1; at most MaxBinds.
	Binds int `yaml:"binds"`
	// MaxUnsettled bounds the parts of each bind sent and not yet settled durably: those in the
	// window plus those the upstream answered whose outcome (upstream id, ack) waits for the next
	// group commit. A crash sends exactly these again, so this is the bound on the parts sent twice
	// after a crash, per bind; it is also what keeps the window full while settles wait for their
	// commit (with only the window, each slot would wait out a commit before its next part, and a
	// window of 10 would forward ~2-3k msgs/s whatever the upstream's speed). 0 means 512; below the
	// window it is the window; negative is refused.
	MaxUnsettled int `yaml:"max_unsettled"`
	// Numbers rewrites the source and destination of each request just before it is sent to this
	// upstream (see NumberRules); none when empty. The store's rules for the upstream, set through
	// the admin API, replace these.
	Numbers NumberRules `yaml:"numbers"`
}

// MaxBinds bounds ClientConfig.Binds.
const MaxBinds = 64

// DefaultUpstreamWindow is an upstream bind's window (session.window) when its configuration sets
// none. Over loopback to a fast SMSC on two cores, row 7 of smppbench (one ESME bind at W=256, 2
// minutes, 2026-11-28): with session.DefaultInboundLimit at 256, 256 forwarded 86.8k, 86.6k, 78.0k
// and 64.1k msgs/s (the box varies that much) with the queue flat, where 128 forwarded 78.8k and fell behind intake after a minute (queue
// 115k); 128 with an inbound limit of 100 forwarded 75.5k-77.1k, flat. The window is what keeps
// forwarding up with intake once a round trip to the upstream grows under load. An upstream that
// allows fewer requests in flight answers the excess ESME_RTHROTTLED or ESME_RMSGQFUL, which pauses
// the bind (throttle_delay); set its session.window to what its operator allows.
const DefaultUpstreamWindow = 256

// DefaultMaxUnsettled is ClientConfig.MaxUnsettled's default: enough parts per bind to keep a window
// full across a group commit of a few milliseconds at tens of thousands of messages a second, and
// still a small bound on what a crash sends twice.
const DefaultMaxUnsettled = 512

// unsettled is MaxUnsettled as it applies to one bind: at least the window (c has its defaults).
func (c ClientConfig) unsettled() int {
	return max(c.MaxUnsettled, c.Session.Window)
}

func (c ClientConfig) withDefaults() ClientConfig {
	if c.BindType == session.BindNone {
		c.BindType = session.BindTransceiver
	}
	if c.Name == "" {
		c.Name = c.SystemID + "@" + c.Address
		if c.Address == "" {
			c.Name = c.SystemID + "@" + c.OutbindListen
		}
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = time.Second
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = time.Minute
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.ThrottleDelay == 0 {
		c.ThrottleDelay = 200 * time.Millisecond
	}
	if c.ThrottleDelayMax == 0 {
		c.ThrottleDelayMax = 10 * time.Second
	}
	if c.QueueSize == 0 {
		c.QueueSize = 10000
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 10
	}
	if c.MaxAge == 0 {
		c.MaxAge = 48 * time.Hour
	}
	if c.Binds == 0 {
		c.Binds = 1
	}
	if c.Session.Window == 0 {
		c.Session.Window = DefaultUpstreamWindow
	}
	if c.MaxUnsettled == 0 {
		c.MaxUnsettled = DefaultMaxUnsettled
	}
	return c
}

// Validate reports the first field that cannot work.
func (c ClientConfig) Validate() error {
	if c.Address == "" && c.OutbindListen == "" {
		return errors.New("address: required, or outbind_listen")
	}
	if c.SystemID == "" || len(c.SystemID) > 15 {
		return fmt.Errorf("system_id: %q is %d octets, must be 1 to 15", c.SystemID, len(c.SystemID))
	}
	if len(c.Password) > 8 {
		return fmt.Errorf("password: %d octets, at most 8", len(c.Password))
	}
	if len(c.SystemType) > 12 {
		return fmt.Errorf("system_type: %q is %d octets, at most 12", c.SystemType, len(c.SystemType))
	}
	if c.BindType > session.BindTransceiver {
		return fmt.Errorf("bind_type: %d, want transmitter, receiver or transceiver", c.BindType)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"dial_timeout", c.DialTimeout}, {"reconnect_min", c.ReconnectMin}, {"reconnect_max", c.ReconnectMax},
		{"throttle_delay", c.ThrottleDelay}, {"throttle_delay_max", c.ThrottleDelayMax},
	} {
		if d.v < 0 {
			return negative(d.field, d.v)
		}
	}
	if c.QueueSize < 0 {
		return negative("queue_size", c.QueueSize)
	}
	if c.MaxTPS < 0 || math.IsNaN(c.MaxTPS) || math.IsInf(c.MaxTPS, 0) {
		return fmt.Errorf("max_tps: %v, want a finite rate >= 0", c.MaxTPS)
	}
	if c.MaxUnsettled < 0 {
		return negative("max_unsettled", c.MaxUnsettled)
	}
	if c.Binds < 0 || c.Binds > MaxBinds {
		return fmt.Errorf("binds: %d, want 1 to %d (0 means 1)", c.Binds, MaxBinds)
	}
	if err := c.Numbers.Validate(); err != nil {
		return fmt.Errorf("numbers: %w", err)
	}
	return c.Session.Validate()
}

// RouterConfig configures the message path: routes, MO routes, delivery to accounts, long messages.
// Zero values mean the documented defaults.
type RouterConfig struct {
	// Routes carry submissions to upstreams; they are seeded into the store at start. A submission no
	// route matches is refused with ESME_RINVDSTADR. Empty means the store's routes only.
	Routes []Route `yaml:"routes"`
	// MORoutes carry MO messages to accounts; they are seeded into the store at start (as MO routes
	// "config-N"), where the admin API adds and deletes others. An MO no route matches is refused with
	// ESME_RINVDSTADR.
	MORoutes []MORoute `yaml:"mo_routes"`
	// AccountNumbers are number normalisation rules by account system_id (see NumberRules), applied
	// to what the account submits before it is routed. The store's rules for an account, set through
	// the admin API, replace these.
	AccountNumbers map[string]NumberRules `yaml:"account_numbers"`
	// ReloadInterval is how often routes, MO routes, number rules and the upstreams added through the
	// admin API are read again from the store, for edits made through another instance sharing it
	// (this instance's own edits apply at once).
	// 0 means 10s; negative disables.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// DeliveryRetry is how long a receipt or MO waits before it is offered again to an account whose
	// bind refused it with a temporary error, lost it, or has gone. 0 means 1s.
	DeliveryRetry time.Duration `yaml:"delivery_retry"`
	// MaxDeliveryAttempts bounds how often one receipt or MO is offered to an ESME that keeps refusing
	// it temporarily; then it is dropped and logged, so one poisonous message cannot block an account's
	// queue for ever. 0 means 10; it cannot be disabled.
	MaxDeliveryAttempts int `yaml:"max_delivery_attempts"`
	// LongMessages is how text submitted through the API is cut when it needs several parts: udh8
	// (concatenation UDH with an 8-bit reference, the most widely supported), udh16, sar (sar_* TLVs) or
	// payload (one submit_sm with message_payload). Empty means udh8.
	LongMessages string `yaml:"long_messages"`
	// FailoverAfter is how long an upstream may be unbound or paused before the parts queued for it
	// move to the next bound, unpaused upstream of their route (in the route's order, after it, wrapping
	// round); parts no other upstream can take stay. New messages go to the preferred upstream again
	// as soon as it is bound; parts already moved stay where they went. 0 means 30s; negative disables
	// failover.
	FailoverAfter time.Duration `yaml:"failover_after"`
	// RerouteOn lists the command statuses (SMPP 3.4 names such as ESME_RINVDSTADR, or numbers such as
	// 0x400) with which an upstream's permanent refusal of a part sends it on to the next bound,
	// unpaused upstream after that one in the part's route, instead of failing it; it fails when there
	// is none. Empty means [ESME_RINVDSTADR] (a carrier that does not serve the range); [none]
	// disables rerouting.
	RerouteOn []string `yaml:"reroute_on"`
}

// Validate reports the first field that cannot work. upstreams are the names routes may use.
func (c RouterConfig) Validate(upstreams []string) error {
	for i, r := range c.Routes {
		ups := r.upstreams()
		if len(ups) == 0 {
			return fmt.Errorf("routes[%d].upstream is required (or upstreams)", i)
		}
		for _, u := range ups {
			if !slices.Contains(upstreams, u) {
				return fmt.Errorf("routes[%d].upstream %q names no configured upstream", i, u)
			}
		}
		if err := CheckWeights(r.Weights, len(ups)); err != nil {
			return fmt.Errorf("routes[%d].weights: %w", i, err)
		}
		if strings.ContainsRune(r.Prefix, 0) {
			return fmt.Errorf("routes[%d].prefix contains NUL", i)
		}
		for j, a := range r.Accounts {
			if a == "" {
				return fmt.Errorf("routes[%d].accounts[%d] is empty", i, j)
			}
		}
	}
	for i, r := range c.MORoutes {
		if r.Account == "" {
			return fmt.Errorf("mo_routes[%d].account is required", i)
		}
	}
	for a, r := range c.AccountNumbers {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("account_numbers[%s].%w", a, err)
		}
	}
	switch {
	case c.DeliveryRetry < 0:
		return negative("delivery_retry", c.DeliveryRetry)
	case c.MaxDeliveryAttempts < 0:
		return negative("max_delivery_attempts", c.MaxDeliveryAttempts)
	}
	if _, ok := splitModes[c.LongMessages]; !ok && c.LongMessages != "" {
		return fmt.Errorf("long_messages %q: want udh8, udh16, sar or payload", c.LongMessages)
	}
	if _, err := rerouteStatuses(c.RerouteOn); err != nil {
		return err
	}
	return nil
}

// rerouteNone alone in RouterConfig.RerouteOn disables rerouting on refusals.
const rerouteNone = "none"

// rerouteStatuses reads RouterConfig.RerouteOn: empty is ESME_RINVDSTADR, [none] none.
func rerouteStatuses(names []string) (map[pdu.CommandStatus]bool, error) {
	if len(names) == 0 {
		return map[pdu.CommandStatus]bool{pdu.ESME_RINVDSTADR: true}, nil
	}
	out := make(map[pdu.CommandStatus]bool, len(names))
	if len(names) == 1 && strings.EqualFold(strings.TrimSpace(names[0]), rerouteNone) {
		return out, nil
	}
	for i, n := range names {
		st, err := parseStatus(n)
		if err != nil {
			return nil, fmt.Errorf("reroute_on[%d]: %w", i, err)
		}
		if st == pdu.ESME_ROK || st.Temporary() {
			return nil, fmt.Errorf("reroute_on[%d]: %v is not a permanent refusal", i, st)
		}
		out[st] = true
	}
	return out, nil
}

// parseStatus reads a command status by its SMPP 3.4 name (any case, the ESME_ prefix optional) or as
// a number (1024, 0x400).
func parseStatus(name string) (pdu.CommandStatus, error) {
	name = strings.ToUpper(strings.TrimSpace(name))
	if n, err := strconv.ParseUint(name, 0, 32); err == nil {
		return pdu.CommandStatus(n), nil
	}
	if !strings.HasPrefix(name, "ESME_") {
		name = "ESME_" + name
	}
	for st := range pdu.CommandStatus(0x500) {
		if st.String() == name {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown command status %q", name)
}

func (c RouterConfig) withDefaults() RouterConfig {
	if c.DeliveryRetry == 0 {
		c.DeliveryRetry = time.Second
	}
	if c.MaxDeliveryAttempts == 0 {
		c.MaxDeliveryAttempts = 10
	}
	if c.LongMessages == "" {
		c.LongMessages = "udh8"
	}
	if c.FailoverAfter == 0 {
		c.FailoverAfter = 30 * time.Second
	}
	if c.ReloadInterval == 0 {
		c.ReloadInterval = 10 * time.Second
	}
	return c
}

// Config is what a running Gateway is built from (the daemon's YAML sections).
type Config struct {
	// Server is the SMSC side: listeners, session tuning, bind failure slow-down.
	Server ServerConfig
	// Accounts are written into the store at Start (replacing the store's record of the same
	// system_id); binds are then decided from the store, so accounts the admin API adds work too.
	// Empty means the store's accounts only.
	Accounts []Account
	// Upstreams are bound at Start, with the upstreams AddUpstream persisted in the store. Empty
	// means those only.
	Upstreams []ClientConfig
	// Routing: the routes seeded into the store, MO routes, delivery retries, long messages.
	Routing RouterConfig
	// Instance names this process to the store's queues (consumer names): unique among the
	// instances sharing one Redis, and the same across restarts of one instance, so that after a
	// restart it takes back at once the parts it had in flight (else another instance reclaims
	// them after the visibility time-out). Empty means the host name, which is both in the usual
	// deployments (one instance per host or container, a StatefulSet); set it when several
	// instances share a host.
	Instance string
	// Cluster, when set, is how the instances sharing the store coordinate (the Redis store implements
	// it): each upstream bind slot is held by one instance at a time, and each instance publishes its
	// state for the others (ownership.go). nil means this instance is the only one: it holds every
	// bind, and the cluster views show it alone.
	Cluster store.Cluster
	// Ownership tunes the bind leases and the publication of this instance's state.
	Ownership OwnershipConfig
	// Workers bounds the store writes the message path runs at once on behalf of PDUs (accepts,
	// query_sm, upstream receipts and MO, part and delivery settles); see pool. 0 means twice the
	// server sessions' InboundLimit (512 by default): one session at its limit fills a group commit,
	// and as many again are left for settles meanwhile.
	Workers int
}

// withDefaults fills Instance and Workers.
func (c Config) withDefaults() (Config, error) {
	if c.Instance == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			return c, fmt.Errorf("gateway: no instance name and no host name to default it to: %v", err)
		}
		c.Instance = host
	}
	if c.Workers == 0 {
		c.Workers = 2 * c.Server.Session.WithDefaults().InboundLimit
	}
	return c, nil
}

// Validate reports the first field that cannot work; upstreams[i]: and routing: say where. The server
// section is checked by NewServer.
func (c Config) Validate() error {
	names := make([]string, 0, len(c.Upstreams))
	for i, u := range c.Upstreams {
		if err := u.Validate(); err != nil {
			return fmt.Errorf("upstreams[%d]: %w", i, err)
		}
		n := u.withDefaults().Name
		if slices.Contains(names, n) {
			return fmt.Errorf("upstreams[%d]: two upstreams are named %q", i, n)
		}
		names = append(names, n)
	}
	if err := c.Routing.Validate(names); err != nil {
		return fmt.Errorf("routing: %w", err)
	}
	for i, a := range c.Accounts {
		if _, err := accountToStore(a); err != nil {
			return fmt.Errorf("accounts[%d]: %w", i, err)
		}
	}
	if c.Workers < 0 {
		return negative("workers", c.Workers)
	}
	if err := c.Ownership.Validate(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
