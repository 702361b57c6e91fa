package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// errChecksBusy: every password check slot is taken.
var errChecksBusy = errors.New("gateway: too many password checks at once")

// bindGate keeps bind authentication affordable under a flood of bad binds:
//   - penalty windows per remote address and per system_id (failureTracker), decided before any
//     password is hashed;
//   - a cache of verified credentials, so that a bind repeating them costs no bcrypt;
//   - at most MaxPasswordChecks bcrypt comparisons at once, refusing beyond that rather than
//     queueing, and one comparison shared by concurrent binds with the same credentials;
//   - no comparison for a peer that has gone.
type bindGate struct {
	byIP  *failureTracker[netip.Addr]
	bySys *failureTracker[string]
	cache *credentialCache // nil when disabled
	slots chan struct{}    // a token per bcrypt comparison running
	key   [32]byte         // the cache's HMAC key, random per process

	mu      sync.Mutex
	flights map[flightKey]*flight

	checks atomic.Uint64 // bcrypt comparisons (or opaque Authenticate calls) run
}

type flightKey struct {
	systemID   string
	hash, hmac [32]byte
	known      bool
}

// flight is one bcrypt comparison that concurrent binds with the same credentials wait for.
type flight struct {
	done chan struct{}
	ok   bool
}

func newBindGate(cfg ServerConfig) *bindGate {
	g := &bindGate{
		byIP:    newFailureTracker[netip.Addr](cfg.FailureDelay, cfg.FailureDelayMax, cfg.FailureMemory),
		bySys:   newFailureTracker[string](cfg.FailureDelay, cfg.FailureDelayMax, cfg.FailureMemory),
		slots:   make(chan struct{}, cfg.MaxPasswordChecks),
		flights: make(map[flightKey]*flight),
	}
	if cfg.CredentialCache > 0 {
		g.cache = &credentialCache{limit: cfg.CredentialCache, m: make(map[string]credentialEntry)}
	}
	_, _ = rand.Read(g.key[:]) // never fails (crypto/rand panics rather than return an error)
	return g
}

// bindVerdict is the outcome of a bind's authentication.
type bindVerdict struct {
	account Account
	status  pdu.CommandStatus
	// notBefore holds a refusal back: its answer goes out then (clamped to the bind deadline).
	notBefore time.Time
	why       string // a refusal's reason, for the log only
	checked   bool   // the password was compared (bcrypt) or found in the cache
}

// authenticate decides a bind that arrived at arrived on s.
//
// The order matters:
//  1. An address in its penalty window is refused when the window ends, nothing checked: it just
//     failed, and whatever it sends now is as likely another guess. This bounds the bcrypt
//     comparisons an address can cause to one per window however many connections it opens.
//  2. An address outside the account's allowed_ips is refused as a wrong password would be
//     (ESME_RINVPASWD, held back alike), before the cache and without bcrypt, so that from outside
//     the allow-list a right password cannot be told from a wrong one. Only the address is penalised.
//  3. Credentials found in the cache succeed without bcrypt, even for a system_id in its penalty
//     window: an attacker hammering a legitimate system_id from elsewhere must not lock its ESME out,
//     and the cache holds only what verified against the account's current hash, so a wrong guess
//     never matches it. (A cache hit is as much an answer to a guess as a bcrypt comparison; guesses
//     stay bounded by step 1, per address.)
//  4. A system_id in its penalty window is otherwise refused when the window ends, without bcrypt;
//     once the window is over, the next bind (from an address not in its own window) is checked,
//     so an ESME whose credentials are not cached (after a restart) gets its turn at each window.
//  5. Otherwise the password is compared, unless the peer has gone, at most MaxPasswordChecks at
//     once: beyond that the bind is refused at once with ESME_RSYSERR, a temporary condition of ours
//     that ESMEs retry, not a judgement of their credentials (and not counted as a failure).
//
// Refusals of steps 1 and 4 answer ESME_RBINDFAIL: nothing was checked, so nothing about the
// credentials is told. Unknown system_ids and wrong passwords both answer ESME_RINVPASWD, after the
// same cost (one bcrypt comparison against a hash of like cost) and held back to the same time
// (arrival + delay), so that neither the status nor the timing tells which system_ids exist.
// ESME_RINVPASWD rather than ESME_RINVSYSID because it is true in both cases (no password is valid
// for an id we do not know), and ESMEs treat it as credentials to fix, not a fault to retry.
func (g *bindGate) authenticate(ctx context.Context, auth Authenticator, s *session.Session, br BindRequest, arrived time.Time, log *zerolog.Logger) bindVerdict {
	ip, _ := remoteIP(br.Remote)
	if until, hot := g.byIP.hot(ip, arrived); hot {
		return bindVerdict{status: pdu.ESME_RBINDFAIL, notBefore: until, why: "address in failure slow-down"}
	}
	sysUntil, sysHot := g.bySys.hot(br.SystemID, arrived)
	src, ok := auth.(credentialSource)
	if !ok {
		return g.opaque(ctx, auth, s, br, arrived, ip, sysUntil, sysHot)
	}
	c, err := src.credentials(ctx, br.SystemID)
	if err != nil {
		return bindVerdict{status: pdu.ESME_RSYSERR, why: "accounts unreadable"}
	}
	if c.known && c.admits != nil && !c.admits(br) {
		// Before the cache and bcrypt: from an address outside allowed_ips the answer is a wrong
		// password's, whatever the password, held back like one. Only the address is penalised: it
		// guessed nothing, and the system_id's ESME binds from elsewhere.
		v := bindVerdict{status: pdu.ESME_RINVPASWD, notBefore: arrived.Add(g.byIP.fail(ip, arrived)), why: "address not in allowed_ips"}
		log.Debug().Str("system_id", br.SystemID).Stringer("remote", ip).Msg("bind refused: address not allowed")
		return v
	}
	mac := g.mac(br.SystemID, br.Password)
	hash := sha256.Sum256(c.hash)
	if !c.known || !g.cache.match(br.SystemID, hash, mac) {
		if sysHot {
			return bindVerdict{status: pdu.ESME_RBINDFAIL, notBefore: sysUntil, why: "system_id in failure slow-down"}
		}
		if ctx.Err() != nil || s.PeerGone() {
			return bindVerdict{status: pdu.ESME_RBINDFAIL, why: "peer gone before the password check"}
		}
		ok, err := g.check(ctx, flightKey{br.SystemID, hash, mac, c.known}, c, br.Password)
		switch {
		case errors.Is(err, errChecksBusy):
			return bindVerdict{status: pdu.ESME_RSYSERR, why: "too many password checks at once"}
		case err != nil:
			return bindVerdict{status: pdu.ESME_RBINDFAIL, why: "peer gone during the password check"}
		case !ok:
			v := g.failed(ip, br.SystemID, arrived, pdu.ESME_RINVPASWD)
			v.why, v.checked = "unknown system_id or wrong password", true
			// The operator may know which; the peer must not.
			log.Debug().Str("system_id", br.SystemID).Bool("known", c.known).Msg("bind credentials refused")
			return v
		}
	}
	acct, st := c.authorize(br)
	if st != pdu.ESME_ROK {
		v := g.failed(ip, br.SystemID, arrived, st)
		v.why, v.checked = "bind type or address not allowed", true
		return v
	}
	return bindVerdict{account: acct, status: pdu.ESME_ROK, checked: true}
}

// opaque decides a bind through an Authenticator of someone else's, which may hash as it likes: it
// gets the penalty windows and the bound on concurrent calls, not the cache.
func (g *bindGate) opaque(ctx context.Context, auth Authenticator, s *session.Session, br BindRequest, arrived time.Time, ip netip.Addr, sysUntil time.Time, sysHot bool) bindVerdict {
	if sysHot {
		return bindVerdict{status: pdu.ESME_RBINDFAIL, notBefore: sysUntil, why: "system_id in failure slow-down"}
	}
	if ctx.Err() != nil || s.PeerGone() {
		return bindVerdict{status: pdu.ESME_RBINDFAIL, why: "peer gone before the password check"}
	}
	select {
	case g.slots <- struct{}{}:
	default:
		return bindVerdict{status: pdu.ESME_RSYSERR, why: "too many password checks at once"}
	}
	g.checks.Add(1)
	acct, st := auth.Authenticate(ctx, br)
	<-g.slots
	switch st {
	case pdu.ESME_ROK:
		return bindVerdict{account: acct, status: st, checked: true}
	case pdu.ESME_RSYSERR:
		return bindVerdict{status: st, why: "authenticator failed"}
	case pdu.ESME_RINVSYSID:
		st = pdu.ESME_RINVPASWD // see authenticate
	}
	v := g.failed(ip, br.SystemID, arrived, st)
	v.why, v.checked = "refused by the authenticator", true
	return v
}

// failed records a failed bind of ip and systemID and holds its answer back until the longer of
// their delays after the bind's arrival (not after the comparison, so the answer's timing does not
// tell how long the comparison took).
func (g *bindGate) failed(ip netip.Addr, systemID string, arrived time.Time, st pdu.CommandStatus) bindVerdict {
	d := max(g.byIP.fail(ip, arrived), g.bySys.fail(systemID, arrived))
	return bindVerdict{status: st, notBefore: arrived.Add(d)}
}

// succeeded forgets ip's failures. The system_id's are left to expire: its ESME binds through the
// cache anyway, and forgetting them at each of its binds would hand an attacker of that system_id
// fresh bcrypt comparisons.
func (g *bindGate) succeeded(ip netip.Addr) { g.byIP.succeed(ip) }

// check compares password with c's hash: one bcrypt comparison shared by the concurrent binds with
// the same credentials, refused with errChecksBusy when MaxPasswordChecks are running. A success is
// cached. It returns ctx.Err() if ctx ends while waiting for another bind's comparison.
func (g *bindGate) check(ctx context.Context, k flightKey, c credential, password string) (bool, error) {
	g.mu.Lock()
	if f := g.flights[k]; f != nil {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.ok, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if k.known && g.cache.match(k.systemID, k.hash, k.hmac) {
		// A flight for these credentials ended since the caller looked (it caches before it ends).
		g.mu.Unlock()
		return true, nil
	}
	select {
	case g.slots <- struct{}{}:
	default:
		g.mu.Unlock()
		return false, errChecksBusy
	}
	f := &flight{done: make(chan struct{})}
	g.flights[k] = f
	g.mu.Unlock()

	g.checks.Add(1)
	f.ok = c.matches(password)
	<-g.slots
	if f.ok {
		g.cache.put(k.systemID, k.hash, k.hmac)
	}
	g.mu.Lock()
	delete(g.flights, k)
	g.mu.Unlock()
	close(f.done)
	return f.ok, nil
}

// mac is what the cache keeps of a password: HMAC-SHA256 under a key random per process, so that it
// cannot be looked up in a table of precomputed hashes.
func (g *bindGate) mac(systemID, password string) [32]byte {
	h := hmac.New(sha256.New, g.key[:])
	h.Write([]byte(systemID))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// credentialCache remembers, per system_id, the credentials that last verified: the SHA-256 of the
// account's bcrypt hash they verified against (a new hash, set by the admin API or the config, makes
// the entry stale) and the HMAC of the password. Only successes are cached.
type credentialCache struct {
	limit int
	mu    sync.Mutex
	m     map[string]credentialEntry
}

type credentialEntry struct{ hash, hmac [32]byte }

func (c *credentialCache) match(systemID string, hash, mac [32]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[systemID]
	if !ok {
		return false
	}
	if e.hash != hash {
		delete(c.m, systemID) // the account's password changed
		return false
	}
	return hmac.Equal(e.hmac[:], mac[:])
}

func (c *credentialCache) put(systemID string, hash, mac [32]byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[systemID]; !ok && len(c.m) >= c.limit {
		for k := range c.m {
			delete(c.m, k) // an arbitrary one: it costs its ESME one bcrypt comparison at its next bind
			break
		}
	}
	c.m[systemID] = credentialEntry{hash: hash, hmac: mac}
}
