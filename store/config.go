package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Configuration records (accounts, upstreams, routes, API keys, webhooks) are few, written by
// the admin API and read at bind or start-up, so they are kept as JSON under (kind, key) in
// each backend: readable with redis-cli or bbolt's tools, and free to grow fields.

// BindTypes is a set of SMPP bind types an account may use.
type BindTypes uint8

// Bind types.
const (
	BindTransmitter BindTypes = 1 << iota
	BindReceiver
	BindTransceiver
	AllBindTypes = BindTransmitter | BindReceiver | BindTransceiver
)

// Account is a system_id allowed to bind to the gateway.
type Account struct {
	SystemID     string    `json:"system_id"`
	PasswordHash []byte    `json:"password_hash"` // bcrypt
	BindTypes    BindTypes `json:"bind_types"`    // 0 means all
	AllowIPs     []string  `json:"allow_ips"`     // CIDR prefixes or addresses; empty allows any
	MaxBinds     int       `json:"max_binds"`     // 0: no limit
	Throughput   int       `json:"throughput"`    // messages per second, 0: no limit
	DefaultRoute string    `json:"default_route"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	Description  string    `json:"description,omitempty"` // for people; records written before it read as ""
	// The message path's per-account options (gateway.Account has their meaning); "" is each
	// one's default, and records written before them read as "".
	MessageIDs string `json:"message_ids,omitempty"` // "decimal", "hex", "uuid"
	Receipts   string `json:"receipts,omitempty"`    // "message", "part"
	LongMO     string `json:"long_mo,omitempty"`     // "parts", "payload"
	// APIReceiptsOverSMPP: receipts of the account's API messages go to its binds too.
	APIReceiptsOverSMPP bool `json:"api_receipts_over_smpp,omitempty"`
}

// SetPassword stores a bcrypt hash of password. SMPP passwords are at most 8 octets, far
// below bcrypt's 72-byte limit.
func (a *Account) SetPassword(password string) error {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("store: account %s: hash password: %w", a.SystemID, err)
	}
	a.PasswordHash = h
	return nil
}

// CheckPassword reports whether password matches the stored hash.
func (a *Account) CheckPassword(password string) bool {
	return len(a.PasswordHash) > 0 && bcrypt.CompareHashAndPassword(a.PasswordHash, []byte(password)) == nil
}

// AllowsBind reports whether the account may bind with type t.
func (a *Account) AllowsBind(t BindTypes) bool {
	return a.BindTypes == 0 || a.BindTypes&t != 0
}

// AllowsIP reports whether a bind from ip is allowed. Unparsable entries allow nothing.
func (a *Account) AllowsIP(ip netip.Addr) bool {
	if len(a.AllowIPs) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, s := range a.AllowIPs {
		if p, err := netip.ParsePrefix(s); err == nil && p.Contains(ip) {
			return true
		}
		if x, err := netip.ParseAddr(s); err == nil && x.Unmap() == ip {
			return true
		}
	}
	return false
}

// Upstream is an SMSC the gateway binds to as an ESME.
type Upstream struct {
	Name        string            `json:"name"`
	Address     string            `json:"address"` // host:port
	TLS         bool              `json:"tls"`
	SystemID    string            `json:"system_id"`
	Password    string            `json:"password"`
	SystemType  string            `json:"system_type"`
	BindType    BindTypes         `json:"bind_type"`
	Binds       int               `json:"binds"`      // parallel binds
	Window      int               `json:"window"`     // outstanding requests per bind
	Throughput  int               `json:"throughput"` // messages per second across binds, 0: no limit
	Disabled    bool              `json:"disabled"`
	Options     map[string]string `json:"options,omitempty"` // client settings not named above
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
	Description string            `json:"description,omitempty"`
}

// Route sends messages to upstreams: the longest matching destination prefix among the
// routes of the account (or of all accounts when Account is empty) wins.
type Route struct {
	Name      string   `json:"name"`
	Account   string   `json:"account"` // empty: any account
	Prefix    string   `json:"prefix"`  // destination prefix, empty matches all
	Upstreams []string `json:"upstreams"`
	// Weights, when set, has one weight per upstream: new messages are split between the route's
	// bound, unpaused upstreams in proportion to them (weight 0: only when no weighted one is up).
	// Empty: the first available upstream takes everything.
	Weights   []int     `json:"weights,omitempty"`
	Priority  int       `json:"priority"` // tie-break between equal prefixes, higher first
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Description is for people; records written before it read as "".
	Description string `json:"description,omitempty"`
}

// MORoute sends MO messages (deliver_sm or data_sm from an upstream that is not a receipt) whose
// destination_addr starts with Prefix to the account named Account. The longest matching prefix wins;
// among equal prefixes the higher Priority, then the name.
type MORoute struct {
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"` // empty matches every destination
	Account   string    `json:"account"`
	Priority  int       `json:"priority"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Description is for people.
	Description string `json:"description,omitempty"`
}

// AddressRule is one address's number normalisation (the gateway's AddressRule documents each step).
type AddressRule struct {
	StripPlus   bool   `json:"strip_plus,omitempty"`
	Strip00     bool   `json:"strip_00,omitempty"`
	CountryCode string `json:"country_code,omitempty"`
	TON         string `json:"ton,omitempty"` // a name or a number; empty: left as it is
	NPI         string `json:"npi,omitempty"`
}

// NumberRules are the number normalisation rules of one account (applied before routing) or one
// upstream (applied before sending), keyed Scope + ":" + Name.
type NumberRules struct {
	Scope       string      `json:"scope"` // "account" or "upstream"
	Name        string      `json:"name"`  // the system_id or the upstream's name
	Destination AddressRule `json:"destination"`
	Source      AddressRule `json:"source"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// Key is the record's key: Scope + ":" + Name.
func (n *NumberRules) Key() string { return n.Scope + ":" + n.Name }

// Scope is a permission of an API key.
type Scope string

// API key scopes.
const (
	ScopeSend  Scope = "send"
	ScopeRead  Scope = "read"
	ScopeAdmin Scope = "admin"
)

// APIKey is an API credential; only a hash of the secret is stored.
type APIKey struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Account   string    `json:"account"`
	Hash      []byte    `json:"hash"` // the API issue chooses the hash (e.g. SHA-256 of a random secret)
	Scopes    []Scope   `json:"scopes"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // zero: never
}

// HasScope reports whether k grants s. admin implies every scope.
func (k *APIKey) HasScope(s Scope) bool {
	for _, x := range k.Scopes {
		if x == s || x == ScopeAdmin {
			return true
		}
	}
	return false
}

// Webhook is a URL receipts and MO for an account are posted to.
type Webhook struct {
	ID        string    `json:"id"`
	Account   string    `json:"account"`
	URL       string    `json:"url"`
	Secret    string    `json:"secret"` // for signing deliveries
	Events    []string  `json:"events"` // e.g. "receipt", "mo"; empty: all
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"created_at"`
	// Description is for people; records written before it read as "".
	Description string `json:"description,omitempty"`
}

// Accounts is the admin seam for accounts. Create fails with ErrExists when the key is
// taken, Put creates or replaces, Get and Delete fail with ErrNotFound. The same holds for
// the other configuration interfaces.
type Accounts interface {
	CreateAccount(ctx context.Context, a *Account) error
	PutAccount(ctx context.Context, a *Account) error
	GetAccount(ctx context.Context, systemID string) (*Account, error)
	DeleteAccount(ctx context.Context, systemID string) error
	ListAccounts(ctx context.Context) ([]*Account, error)
}

// Upstreams is the admin seam for upstreams.
type Upstreams interface {
	CreateUpstream(ctx context.Context, u *Upstream) error
	PutUpstream(ctx context.Context, u *Upstream) error
	GetUpstream(ctx context.Context, name string) (*Upstream, error)
	DeleteUpstream(ctx context.Context, name string) error
	ListUpstreams(ctx context.Context) ([]*Upstream, error)
}

// Routes is the admin seam for routes.
type Routes interface {
	CreateRoute(ctx context.Context, r *Route) error
	PutRoute(ctx context.Context, r *Route) error
	GetRoute(ctx context.Context, name string) (*Route, error)
	DeleteRoute(ctx context.Context, name string) error
	ListRoutes(ctx context.Context) ([]*Route, error)
}

// MORoutes is the admin seam for MO routes.
type MORoutes interface {
	CreateMORoute(ctx context.Context, r *MORoute) error
	PutMORoute(ctx context.Context, r *MORoute) error
	GetMORoute(ctx context.Context, name string) (*MORoute, error)
	DeleteMORoute(ctx context.Context, name string) error
	ListMORoutes(ctx context.Context) ([]*MORoute, error)
}

// NumberRulesStore is the admin seam for number normalisation rules, keyed NumberRules.Key.
type NumberRulesStore interface {
	PutNumberRules(ctx context.Context, n *NumberRules) error
	GetNumberRules(ctx context.Context, key string) (*NumberRules, error)
	DeleteNumberRules(ctx context.Context, key string) error
	ListNumberRules(ctx context.Context) ([]*NumberRules, error)
}

// APIKeys is the API's seam for its credentials.
type APIKeys interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	PutAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	DeleteAPIKey(ctx context.Context, id string) error
	ListAPIKeys(ctx context.Context) ([]*APIKey, error)
}

// Webhooks is the API's seam for webhook registrations.
type Webhooks interface {
	CreateWebhook(ctx context.Context, w *Webhook) error
	PutWebhook(ctx context.Context, w *Webhook) error
	GetWebhook(ctx context.Context, id string) (*Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	ListWebhooks(ctx context.Context) ([]*Webhook, error)
}

// ConfigKind names a kind of configuration record in a ConfigBackend.
type ConfigKind string

// Configuration kinds.
const (
	KindAccount  ConfigKind = "account"
	KindUpstream ConfigKind = "upstream"
	KindRoute    ConfigKind = "route"
	KindAPIKey   ConfigKind = "apikey"
	KindWebhook  ConfigKind = "webhook"
	KindMORoute  ConfigKind = "mo_route"
	KindNumbers  ConfigKind = "number_rules"
)

// ConfigBackend is the small key-value surface an implementation provides for configuration
// records; Admin builds the typed methods on it so each backend writes them once.
type ConfigBackend interface {
	// ConfigPut writes value under (kind, key); with create set it fails with ErrExists when
	// the key is taken.
	ConfigPut(ctx context.Context, kind ConfigKind, key string, value []byte, create bool) error
	// ConfigGet returns the value or ErrNotFound.
	ConfigGet(ctx context.Context, kind ConfigKind, key string) ([]byte, error)
	// ConfigDelete removes the key or fails with ErrNotFound.
	ConfigDelete(ctx context.Context, kind ConfigKind, key string) error
	// ConfigList returns every value of kind, in any order.
	ConfigList(ctx context.Context, kind ConfigKind) ([][]byte, error)
}

// Admin implements Accounts, Upstreams, Routes, APIKeys and Webhooks over a ConfigBackend.
// Implementations embed it.
type Admin struct {
	B ConfigBackend
}

func put[T any](ctx context.Context, b ConfigBackend, kind ConfigKind, key string, v *T, create bool) error {
	if !validKey(key) {
		return fmt.Errorf("%w: %s key %q", ErrInvalid, kind, key)
	}
	buf, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s %s: %w", kind, key, err)
	}
	return b.ConfigPut(ctx, kind, key, buf, create)
}

func get[T any](ctx context.Context, b ConfigBackend, kind ConfigKind, key string) (*T, error) {
	buf, err := b.ConfigGet(ctx, kind, key)
	if err != nil {
		return nil, err
	}
	return decodeConfig[T](kind, buf)
}

func decodeConfig[T any](kind ConfigKind, buf []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(buf, v); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, kind, err)
	}
	return v, nil
}

func list[T any](ctx context.Context, b ConfigBackend, kind ConfigKind, key func(*T) string) ([]*T, error) {
	bufs, err := b.ConfigList(ctx, kind)
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(bufs))
	for _, buf := range bufs {
		v, err := decodeConfig[T](kind, buf)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out, nil
}

// stamp sets the creation time of a new record and the update time of every write.
func stamp(created, updated *time.Time) {
	now := time.Now().UTC()
	if created.IsZero() {
		*created = now
	}
	if updated != nil {
		*updated = now
	}
}

func (c Admin) CreateAccount(ctx context.Context, a *Account) error {
	stamp(&a.CreatedAt, &a.UpdatedAt)
	return put(ctx, c.B, KindAccount, a.SystemID, a, true)
}
func (c Admin) PutAccount(ctx context.Context, a *Account) error {
	stamp(&a.CreatedAt, &a.UpdatedAt)
	return put(ctx, c.B, KindAccount, a.SystemID, a, false)
}
func (c Admin) GetAccount(ctx context.Context, id string) (*Account, error) {
	return get[Account](ctx, c.B, KindAccount, id)
}
func (c Admin) DeleteAccount(ctx context.Context, id string) error {
	return c.B.ConfigDelete(ctx, KindAccount, id)
}
func (c Admin) ListAccounts(ctx context.Context) ([]*Account, error) {
	return list(ctx, c.B, KindAccount, func(a *Account) string { return a.SystemID })
}

func (c Admin) CreateUpstream(ctx context.Context, u *Upstream) error {
	stamp(&u.CreatedAt, &u.UpdatedAt)
	return put(ctx, c.B, KindUpstream, u.Name, u, true)
}
func (c Admin) PutUpstream(ctx context.Context, u *Upstream) error {
	stamp(&u.CreatedAt, &u.UpdatedAt)
	return put(ctx, c.B, KindUpstream, u.Name, u, false)
}
func (c Admin) GetUpstream(ctx context.Context, name string) (*Upstream, error) {
	return get[Upstream](ctx, c.B, KindUpstream, name)
}
func (c Admin) DeleteUpstream(ctx context.Context, name string) error {
	return c.B.ConfigDelete(ctx, KindUpstream, name)
}
func (c Admin) ListUpstreams(ctx context.Context) ([]*Upstream, error) {
	return list(ctx, c.B, KindUpstream, func(u *Upstream) string { return u.Name })
}

func (c Admin) CreateRoute(ctx context.Context, r *Route) error {
	stamp(&r.CreatedAt, &r.UpdatedAt)
	return put(ctx, c.B, KindRoute, r.Name, r, true)
}
func (c Admin) PutRoute(ctx context.Context, r *Route) error {
	stamp(&r.CreatedAt, &r.UpdatedAt)
	return put(ctx, c.B, KindRoute, r.Name, r, false)
}
func (c Admin) GetRoute(ctx context.Context, name string) (*Route, error) {
	return get[Route](ctx, c.B, KindRoute, name)
}
func (c Admin) DeleteRoute(ctx context.Context, name string) error {
	return c.B.ConfigDelete(ctx, KindRoute, name)
}
func (c Admin) ListRoutes(ctx context.Context) ([]*Route, error) {
	return list(ctx, c.B, KindRoute, func(r *Route) string { return r.Name })
}

func (c Admin) CreateAPIKey(ctx context.Context, k *APIKey) error {
	stamp(&k.CreatedAt, nil)
	return put(ctx, c.B, KindAPIKey, k.ID, k, true)
}
func (c Admin) PutAPIKey(ctx context.Context, k *APIKey) error {
	stamp(&k.CreatedAt, nil)
	return put(ctx, c.B, KindAPIKey, k.ID, k, false)
}
func (c Admin) GetAPIKey(ctx context.Context, id string) (*APIKey, error) {
	return get[APIKey](ctx, c.B, KindAPIKey, id)
}
func (c Admin) DeleteAPIKey(ctx context.Context, id string) error {
	return c.B.ConfigDelete(ctx, KindAPIKey, id)
}
func (c Admin) ListAPIKeys(ctx context.Context) ([]*APIKey, error) {
	return list(ctx, c.B, KindAPIKey, func(k *APIKey) string { return k.ID })
}

func (c Admin) CreateWebhook(ctx context.Context, w *Webhook) error {
	stamp(&w.CreatedAt, nil)
	return put(ctx, c.B, KindWebhook, w.ID, w, true)
}
func (c Admin) PutWebhook(ctx context.Context, w *Webhook) error {
	stamp(&w.CreatedAt, nil)
	return put(ctx, c.B, KindWebhook, w.ID, w, false)
}
func (c Admin) GetWebhook(ctx context.Context, id string) (*Webhook, error) {
	return get[Webhook](ctx, c.B, KindWebhook, id)
}
func (c Admin) DeleteWebhook(ctx context.Context, id string) error {
	return c.B.ConfigDelete(ctx, KindWebhook, id)
}
func (c Admin) ListWebhooks(ctx context.Context) ([]*Webhook, error) {
	return list(ctx, c.B, KindWebhook, func(w *Webhook) string { return w.ID })
}

func (c Admin) CreateMORoute(ctx context.Context, r *MORoute) error {
	stamp(&r.CreatedAt, &r.UpdatedAt)
	return put(ctx, c.B, KindMORoute, r.Name, r, true)
}
func (c Admin) PutMORoute(ctx context.Context, r *MORoute) error {
	stamp(&r.CreatedAt, &r.UpdatedAt)
	return put(ctx, c.B, KindMORoute, r.Name, r, false)
}
func (c Admin) GetMORoute(ctx context.Context, name string) (*MORoute, error) {
	return get[MORoute](ctx, c.B, KindMORoute, name)
}
func (c Admin) DeleteMORoute(ctx context.Context, name string) error {
	return c.B.ConfigDelete(ctx, KindMORoute, name)
}
func (c Admin) ListMORoutes(ctx context.Context) ([]*MORoute, error) {
	return list(ctx, c.B, KindMORoute, func(r *MORoute) string { return r.Name })
}

func (c Admin) PutNumberRules(ctx context.Context, n *NumberRules) error {
	stamp(&n.CreatedAt, &n.UpdatedAt)
	return put(ctx, c.B, KindNumbers, n.Key(), n, false)
}
func (c Admin) GetNumberRules(ctx context.Context, key string) (*NumberRules, error) {
	return get[NumberRules](ctx, c.B, KindNumbers, key)
}
func (c Admin) DeleteNumberRules(ctx context.Context, key string) error {
	return c.B.ConfigDelete(ctx, KindNumbers, key)
}
func (c Admin) ListNumberRules(ctx context.Context) ([]*NumberRules, error) {
	return list(ctx, c.B, KindNumbers, func(n *NumberRules) string { return n.Key() })
}
