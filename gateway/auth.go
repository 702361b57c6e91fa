package gateway

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// Account is a system_id allowed to bind to the server.
type Account struct {
	SystemID string `yaml:"system_id"`
	// PasswordHash is the bcrypt hash of the password (what `htpasswd -bnBC 10 "" pw` prints, or
	// bcrypt.GenerateFromPassword).
	PasswordHash string `yaml:"password_hash"`
	// BindTypes are the bind types allowed; empty means all three.
	BindTypes []session.BindType `yaml:"bind_types"`
	// AllowedIPs are the addresses or CIDR prefixes the account may bind from; empty means any.
	AllowedIPs []string `yaml:"allowed_ips"`
	// MaxBinds caps the account's concurrent binds; 0 means no cap.
	MaxBinds int `yaml:"max_binds"`
	// Throughput caps the account's submissions per second over all its binds and the API together
	// (beyond it they are answered ESME_RTHROTTLED, the API's ErrThrottled), with a burst of one
	// second's worth; over every instance sharing a Redis store together (within one chunk of a tenth
	// of a second's worth per instance, see sharedBucket). 0 means no cap.
	Throughput float64 `yaml:"throughput"`
	// MessageIDs is the form of the message ids the account sees, "decimal" (the default), "hex" or
	// "uuid" (IDFormat): in submit_sm_resp, receipts, query_sm, cancel_sm, replace_sm and the API.
	MessageIDs IDFormat `yaml:"message_ids"`
	// Receipts is how the account's binds are sent the receipts of a message the gateway sent in
	// several parts (ReceiptMode): "message" (the default), one once every part is final, or "part",
	// one per part's receipt. The gateway splits API messages only, so it applies with
	// APIReceiptsOverSMPP.
	Receipts ReceiptMode `yaml:"receipts"`
	// LongMO is how a long MO reaches the account's binds (LongMOMode): "parts" (the default), as the
	// parts came, or "payload", reassembled into one deliver_sm carrying message_payload.
	LongMO LongMOMode `yaml:"long_mo"`
	// APIReceiptsOverSMPP queues the receipts of the messages the account submits through the API for
	// its SMPP binds too, for an application that submits over the API and listens on a receiver bind.
	// By default (false) they reach the API only (the receipt stream, webhooks, the message's
	// callback), as those of its SMPP messages reach its binds: an account that never binds would
	// otherwise pile them up in the store.
	APIReceiptsOverSMPP bool `yaml:"api_receipts_over_smpp"`
}

// Validate reports the first field of a that no authenticator can use: a system_id of 1 to 15
// octets, a bcrypt password_hash, allowed_ips that are addresses or CIDR prefixes. It hashes nothing,
// so a daemon checks its configuration with it at no cost.
func (a Account) Validate() error {
	if a.SystemID == "" || len(a.SystemID) > 15 {
		return fmt.Errorf("gateway: account system_id %q must be 1 to 15 octets", a.SystemID)
	}
	if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
		return fmt.Errorf("gateway: account %s: password_hash: %w", a.SystemID, err)
	}
	for _, s := range a.AllowedIPs {
		if _, err := parsePrefix(s); err != nil {
			return fmt.Errorf("gateway: account %s: allowed_ips: %w", a.SystemID, err)
		}
	}
	if _, err := ParseIDFormat(string(a.MessageIDs)); err != nil {
		return fmt.Errorf("gateway: account %s: %w", a.SystemID, err)
	}
	if _, err := ParseReceiptMode(string(a.Receipts)); err != nil {
		return fmt.Errorf("gateway: account %s: %w", a.SystemID, err)
	}
	if _, err := ParseLongMOMode(string(a.LongMO)); err != nil {
		return fmt.Errorf("gateway: account %s: %w", a.SystemID, err)
	}
	return nil
}

// BindRequest is what an Authenticator decides on.
type BindRequest struct {
	SystemID   string
	Password   string
	SystemType string
	BindType   session.BindType
	Remote     net.Addr
}

// Authenticator decides bind requests. It returns the account and ESME_ROK, or the status to refuse
// with: ESME_RINVPASWD for an unknown system_id and for a wrong password alike (a refusal must not
// tell which system_ids exist) and for an address outside the account's allowed_ips whatever the
// password (checked first, so that a right password cannot be told from a wrong one there),
// ESME_RBINDFAIL for a bind type the account may not use, ESME_RSYSERR when the accounts cannot be
// read. The server counts concurrent binds itself.
//
// The Server bounds how many Authenticate calls run at once (ServerConfig.MaxPasswordChecks), since
// each may cost a bcrypt comparison. The package's own Authenticators also let the Server compare
// passwords itself (credentialSource), through its cache of verified credentials.
type Authenticator interface {
	Authenticate(ctx context.Context, req BindRequest) (Account, pdu.CommandStatus)
}

// credentialSource is implemented by the package's Authenticators: it gives the Server what to check
// a password against, so that the Server decides when to spend a bcrypt comparison on it.
type credentialSource interface {
	// credentials looks the system_id up without comparing any password. An error (accounts
	// unreadable) refuses the bind with ESME_RSYSERR.
	credentials(ctx context.Context, systemID string) (credential, error)
}

// credential is what a password is checked against.
type credential struct {
	// hash is the account's bcrypt hash or, when known is false (no such system_id, or an account
	// without a password), a dummy hash of like cost: comparing against it costs as much time as a
	// wrong password, and no password matches it.
	hash  []byte
	known bool
	// admits checks the bind's source address against the account's allowed_ips before any password
	// is compared (nil: any address): a refused address gets the answer of a wrong password and costs
	// no bcrypt, so that from outside the allow-list a right password cannot be told from a wrong one.
	admits func(BindRequest) bool
	// authorize decides the rest once the password matched: bind types and addresses.
	authorize func(BindRequest) (Account, pdu.CommandStatus)
}

// addressAllowed reports whether req's source address is allowed (every address when any is set).
func addressAllowed(req BindRequest, allowed func(netip.Addr) bool, any bool) bool {
	if any {
		return true
	}
	ip, ok := remoteIP(req.Remote)
	return ok && allowed(ip)
}

// matches compares password with the credential's hash: the bcrypt comparison itself.
func (c credential) matches(password string) bool {
	if len(c.hash) == 0 {
		return false
	}
	ok := bcrypt.CompareHashAndPassword(c.hash, []byte(password)) == nil
	return ok && c.known
}

// authenticateWith is Authenticate for a credentialSource used on its own, without a Server.
func authenticateWith(c credential, err error, req BindRequest) (Account, pdu.CommandStatus) {
	if err != nil {
		return Account{}, pdu.ESME_RSYSERR
	}
	if c.admits != nil && !c.admits(req) {
		return Account{}, pdu.ESME_RINVPASWD // as a wrong password, without comparing it
	}
	if !c.matches(req.Password) {
		return Account{}, pdu.ESME_RINVPASWD
	}
	return c.authorize(req)
}

// MemoryAuthenticator is an Authenticator over a fixed set of accounts held in memory.
type MemoryAuthenticator struct {
	mu       sync.RWMutex
	accounts map[string]memAccount
	// dummy is compared against for unknown system_ids, so that they cost as much time as a wrong
	// password and do not reveal which ids exist; its cost is the highest of the accounts'.
	dummy     []byte
	dummyCost int
}

type memAccount struct {
	Account
	prefixes []netip.Prefix
}

// NewMemoryAuthenticator checks and indexes the accounts.
func NewMemoryAuthenticator(accounts ...Account) (*MemoryAuthenticator, error) {
	m := &MemoryAuthenticator{accounts: make(map[string]memAccount)}
	for _, a := range accounts {
		if err := m.put(a); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// put adds or replaces an account.
func (m *MemoryAuthenticator) put(a Account) error {
	if err := a.Validate(); err != nil {
		return err
	}
	cost, _ := bcrypt.Cost([]byte(a.PasswordHash)) // Validate read it
	var dummy []byte
	if cost > m.costOfDummy() {
		var err error
		if dummy, err = bcrypt.GenerateFromPassword([]byte("smppgw-no-such-account"), cost); err != nil {
			return err
		}
	}
	ma := memAccount{Account: a}
	for _, s := range a.AllowedIPs {
		p, _ := parsePrefix(s) // Validate parsed them
		ma.prefixes = append(ma.prefixes, p)
	}
	m.mu.Lock()
	m.accounts[a.SystemID] = ma
	if dummy != nil && cost > m.dummyCost {
		m.dummy, m.dummyCost = dummy, cost
	}
	m.mu.Unlock()
	return nil
}

func (m *MemoryAuthenticator) costOfDummy() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.dummyCost
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Authenticate implements Authenticator.
func (m *MemoryAuthenticator) Authenticate(ctx context.Context, req BindRequest) (Account, pdu.CommandStatus) {
	c, err := m.credentials(ctx, req.SystemID)
	return authenticateWith(c, err, req)
}

func (m *MemoryAuthenticator) credentials(_ context.Context, systemID string) (credential, error) {
	m.mu.RLock()
	a, ok := m.accounts[systemID]
	dummy := m.dummy
	m.mu.RUnlock()
	if !ok {
		return credential{hash: dummy}, nil
	}
	admits := func(req BindRequest) bool {
		return addressAllowed(req, func(ip netip.Addr) bool {
			return slices.ContainsFunc(a.prefixes, func(p netip.Prefix) bool { return p.Contains(ip) })
		}, len(a.prefixes) == 0)
	}
	return credential{hash: []byte(a.PasswordHash), known: true, admits: admits, authorize: a.authorize}, nil
}

func (a memAccount) authorize(req BindRequest) (Account, pdu.CommandStatus) {
	if len(a.BindTypes) > 0 && !slices.Contains(a.BindTypes, req.BindType) {
		return Account{}, pdu.ESME_RBINDFAIL
	}
	if len(a.prefixes) > 0 {
		ip, ok := remoteIP(req.Remote)
		if !ok || !slices.ContainsFunc(a.prefixes, func(p netip.Prefix) bool { return p.Contains(ip) }) {
			return Account{}, pdu.ESME_RBINDFAIL
		}
	}
	return a.Account, pdu.ESME_ROK
}

func remoteIP(a net.Addr) (netip.Addr, bool) {
	if a == nil {
		return netip.Addr{}, false
	}
	if t, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(t.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// maxTrackedFailures bounds each failureTracker: past it, forgotten entries are swept and, if that is
// not enough, an arbitrary one is dropped, so that an attacker with many addresses (or system_ids)
// costs bounded memory; at worst it lifts some slow-downs early, and the bound on concurrent
// password checks still holds.
const maxTrackedFailures = 1 << 16

// failureTracker remembers failed binds per key (remote address, system_id): each failure opens a
// penalty window, base long after the first, doubling per further failure within memory, capped at
// max.
type failureTracker[K comparable] struct {
	base, max, memory time.Duration
	limit             int
	mu                sync.Mutex
	m                 map[K]*failures
	swept             time.Time
}

type failures struct {
	n           int
	last, until time.Time
}

func newFailureTracker[K comparable](base, max, memory time.Duration) *failureTracker[K] {
	return &failureTracker[K]{base: base, max: max, memory: memory, limit: maxTrackedFailures, m: make(map[K]*failures)}
}

// fail records a failure of k at now and returns its delay: the answer is held back that long, and
// k's penalty window ends then.
func (t *failureTracker[K]) fail(k K, now time.Time) time.Duration {
	if t.base <= 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[k]
	if f == nil || now.Sub(f.last) > t.memory {
		if f == nil && len(t.m) >= t.limit {
			t.makeRoom(now)
		}
		f = &failures{}
		t.m[k] = f
	}
	f.n++
	if now.After(f.last) {
		f.last = now
	}
	d := t.base
	for i := 1; i < f.n && d < t.max; i++ {
		d *= 2
	}
	d = min(d, t.max)
	if until := now.Add(d); until.After(f.until) {
		f.until = until
	}
	return d
}

// hot reports whether k is in its penalty window at now, and when that ends.
func (t *failureTracker[K]) hot(k K, now time.Time) (time.Time, bool) {
	if t.base <= 0 {
		return time.Time{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.m[k]; f != nil && now.Before(f.until) {
		return f.until, true
	}
	return time.Time{}, false
}

// makeRoom drops forgotten entries (at most one sweep a second: a full map of fresh entries must not
// cost a scan per failure), then an arbitrary entry if still full. t.mu is held.
func (t *failureTracker[K]) makeRoom(now time.Time) {
	if now.Sub(t.swept) >= time.Second {
		t.swept = now
		for k, f := range t.m {
			if now.Sub(f.last) > t.memory {
				delete(t.m, k)
			}
		}
	}
	for k := range t.m {
		if len(t.m) < t.limit {
			break
		}
		delete(t.m, k)
	}
}

// succeed forgets k's failures.
func (t *failureTracker[K]) succeed(k K) {
	t.mu.Lock()
	delete(t.m, k)
	t.mu.Unlock()
}
