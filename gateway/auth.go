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

	"github.com/smppgw/smppgw/pdu"
)

// Account is a system_id allowed to bind to the server.
type Account struct {
	SystemID string `yaml:"system_id"`
	// PasswordHash is the bcrypt hash of the password (what `htpasswd -bnBC 10 "" pw` prints, or
	// bcrypt.GenerateFromPassword).
	PasswordHash string `yaml:"password_hash"`
	// BindTypes are the bind types allowed; empty means all three.
	BindTypes []BindType `yaml:"bind_types"`
	// AllowedIPs are the addresses or CIDR prefixes the account may bind from; empty means any.
	AllowedIPs []string `yaml:"allowed_ips"`
	// MaxBinds caps the account's concurrent binds; 0 means no cap.
	MaxBinds int `yaml:"max_binds"`
	// Throughput caps the account's submissions per second over all its binds (beyond it they are
	// answered ESME_RTHROTTLED); 0 means no cap.
	Throughput float64 `yaml:"throughput"`
}

// BindRequest is what an Authenticator decides on.
type BindRequest struct {
	SystemID   string
	Password   string
	SystemType string
	BindType   BindType
	Remote     net.Addr
}

// Authenticator decides bind requests. It returns the account and ESME_ROK, or the status to refuse
// with: ESME_RINVSYSID for an unknown system_id, ESME_RINVPASWD for a wrong password, ESME_RBINDFAIL
// for a bind type or address the account may not use. The server counts concurrent binds itself.
type Authenticator interface {
	Authenticate(ctx context.Context, req BindRequest) (Account, pdu.CommandStatus)
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
		if err := m.Put(a); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Put adds or replaces an account.
func (m *MemoryAuthenticator) Put(a Account) error {
	if a.SystemID == "" || len(a.SystemID) > 15 {
		return fmt.Errorf("gateway: account system_id %q must be 1 to 15 octets", a.SystemID)
	}
	cost, err := bcrypt.Cost([]byte(a.PasswordHash))
	if err != nil {
		return fmt.Errorf("gateway: account %s: password_hash: %w", a.SystemID, err)
	}
	var dummy []byte
	if cost > m.costOfDummy() {
		if dummy, err = bcrypt.GenerateFromPassword([]byte("smppgw-no-such-account"), cost); err != nil {
			return err
		}
	}
	ma := memAccount{Account: a}
	for _, s := range a.AllowedIPs {
		p, err := parsePrefix(s)
		if err != nil {
			return fmt.Errorf("gateway: account %s: allowed_ips: %w", a.SystemID, err)
		}
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

// Delete removes an account; sessions already bound stay bound.
func (m *MemoryAuthenticator) Delete(systemID string) {
	m.mu.Lock()
	delete(m.accounts, systemID)
	m.mu.Unlock()
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
func (m *MemoryAuthenticator) Authenticate(_ context.Context, req BindRequest) (Account, pdu.CommandStatus) {
	m.mu.RLock()
	a, ok := m.accounts[req.SystemID]
	dummy := m.dummy
	m.mu.RUnlock()
	if !ok {
		if dummy != nil {
			_ = bcrypt.CompareHashAndPassword(dummy, []byte(req.Password))
		}
		return Account{}, pdu.ESME_RINVSYSID
	}
	if bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(req.Password)) != nil {
		return Account{}, pdu.ESME_RINVPASWD
	}
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

// failureTracker remembers failed binds per remote IP and says how long to hold back the next answer.
type failureTracker struct {
	base, max, memory time.Duration
	mu                sync.Mutex
	byIP              map[netip.Addr]*failures
}

type failures struct {
	n    int
	last time.Time
}

func newFailureTracker(base, max, memory time.Duration) *failureTracker {
	return &failureTracker{base: base, max: max, memory: memory, byIP: make(map[netip.Addr]*failures)}
}

// fail records a failure from ip and returns the delay before answering it: base after the first,
// doubling per further failure within memory, capped at max.
func (t *failureTracker) fail(ip netip.Addr, now time.Time) time.Duration {
	if t.base <= 0 {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byIP) > 4096 {
		for k, f := range t.byIP {
			if now.Sub(f.last) > t.memory {
				delete(t.byIP, k)
			}
		}
	}
	f := t.byIP[ip]
	if f == nil || now.Sub(f.last) > t.memory {
		f = &failures{}
		t.byIP[ip] = f
	}
	f.n++
	f.last = now
	d := t.base
	for i := 1; i < f.n && d < t.max; i++ {
		d *= 2
	}
	return min(d, t.max)
}

// succeed forgets ip's failures.
func (t *failureTracker) succeed(ip netip.Addr) {
	t.mu.Lock()
	delete(t.byIP, ip)
	t.mu.Unlock()
}

// tokenBucket limits an account's submissions per second, with a burst of one second's worth.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64) *tokenBucket {
	return &tokenBucket{rate: rate, tokens: rate, last: time.Now()}
}

func (b *tokenBucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(max(b.rate, 1), b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
