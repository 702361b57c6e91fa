package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/store"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// API key secrets look like "sgw_<id>_<random>": the id part finds the key in the store, the
// store keeps only the SHA-256 of the whole secret, compared in constant time. The secret has 256
// random bits, so a plain hash (not a slow one) is enough.
const (
	keyPrefix   = "sgw_"
	keyIDLen    = 16 // hex characters
	adminPrefix = "/smppgw.v1.AdminService/"
)

// newAPIKeySecret returns a fresh key id and its secret.
func newAPIKeySecret() (id, secret string, err error) {
	var b [8 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	id = hex.EncodeToString(b[:8])
	return id, keyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[8:]), nil
}

// NewAPIKey returns a new key of account with scopes, ready for store.APIKeys.CreateAPIKey, and its
// secret: shown once to whoever asked, since the store keeps only its hash. It is how a program
// (smppgw serve's demo) makes a key without the admin API; the admin API checks what it is given first.
func NewAPIKey(name, account string, scopes ...store.Scope) (*store.APIKey, string, error) {
	id, secret, err := newAPIKeySecret()
	if err != nil {
		return nil, "", err
	}
	return &store.APIKey{ID: id, Name: name, Account: account, Hash: hashSecret(secret),
		Scopes: slices.Clone(scopes), CreatedAt: time.Now().UTC()}, secret, nil
}

// hashSecret is the SHA-256 of an API key's secret, as the store keeps it.
func hashSecret(secret string) []byte {
	h := secretDigest(secret)
	return h[:]
}

// secretDigest is hashSecret as an array, hashed from a stack buffer: a secret is 64 bytes, so the
// hash of every bearer call costs no copy on the heap.
func secretDigest(secret string) [sha256.Size]byte {
	var buf [128]byte
	return sha256.Sum256(append(buf[:0], secret...))
}

// secretPrefix is the non-secret start of a key's secret, shown in listings.
func secretPrefix(id string) string { return keyPrefix + id }

// principal is who is calling.
type principal struct {
	Key      *store.APIKey // nil for an operator with Basic credentials
	Operator string        // the admin user's name with Basic credentials
}

func (p *principal) has(s store.Scope) bool {
	if p.Key == nil {
		return true // operators are admins
	}
	return p.Key.HasScope(s)
}

func (p *principal) admin() bool { return p.has(store.ScopeAdmin) }

// account is the account the caller acts for: its key's, or for admins the one named.
func (p *principal) account(named string) (string, error) {
	own := ""
	if p.Key != nil {
		own = p.Key.Account
	}
	switch {
	case named == "" && own == "":
		return "", invalid("account", "required: the credentials belong to no account")
	case named == "":
		return own, nil
	case named == own || p.admin():
		return named, nil
	}
	return "", status.Error(codes.PermissionDenied, "account: only admin keys may act for another account")
}

// owns reports whether the caller may see records of account.
func (p *principal) owns(account string) bool {
	return p.admin() || (p.Key != nil && p.Key.Account == account)
}

type principalKey struct{}

func principalFrom(ctx context.Context) *principal {
	p, _ := ctx.Value(principalKey{}).(*principal)
	if p == nil {
		// Unreachable through the interceptors; an empty key grants nothing.
		return &principal{Key: &store.APIKey{}}
	}
	return p
}

// scopes lists, per method, the scopes any one of which lets a caller in (admin implies all).
// Methods of smppgw.v1 missing here are refused.
var scopes = map[string][]store.Scope{
	smppgwv1.MessageService_Submit_FullMethodName:         {store.ScopeSend},
	smppgwv1.MessageService_SubmitBatch_FullMethodName:    {store.ScopeSend},
	smppgwv1.MessageService_GetMessage_FullMethodName:     {store.ScopeRead},
	smppgwv1.MessageService_ListMessages_FullMethodName:   {store.ScopeRead},
	smppgwv1.MessageService_StreamReceipts_FullMethodName: {store.ScopeRead},
	smppgwv1.MessageService_CreateWebhook_FullMethodName:  {store.ScopeSend},
	smppgwv1.MessageService_DeleteWebhook_FullMethodName:  {store.ScopeSend},
	smppgwv1.MessageService_GetWebhook_FullMethodName:     {store.ScopeSend, store.ScopeRead},
	smppgwv1.MessageService_ListWebhooks_FullMethodName:   {store.ScopeSend, store.ScopeRead},
}

// authenticator checks credentials for both transports (REST arrives through grpc-gateway, which
// forwards the Authorization header as the authorization metadata).
type authenticator struct {
	keys interface {
		store.APIKeys
		store.Accounts
	}
	admins map[string][]byte // operator name -> bcrypt hash
	now    func() time.Time

	// verified remembers, per operator name, an HMAC of the password that last matched its bcrypt
	// hash (never the password), so that the console's refreshes and an operator's admin calls cost
	// one bcrypt per login rather than one per request. Only configured names get an entry and the
	// hashes do not change while the server runs, so it needs no bound and no invalidation. A wrong
	// password still costs its bcrypt.
	verified    sync.Map // name -> [sha256.Size]byte
	verifyKey   [32]byte
	verifyKeyOK sync.Once

	// verifiedKeys remembers the API keys lookup verified (see keyCache).
	verifiedKeys keyCache
}

// keyCacheTTL is how long a verified API key is taken from memory before its key and account
// records are read again: a revocation, a disabled account or a deleted one made through another
// instance sharing the store takes effect within it (the gateway's own account options follow the
// same second); one made through this instance clears the memory at once (invalidateKeys). A busy
// key costs the store two reads a second rather than two per call.
const keyCacheTTL = time.Second

// maxCachedKeys bounds keyCache: only keys that verified get an entry, so it holds the keys in
// use; past the bound it starts again empty.
const maxCachedKeys = 10000

// keyCache maps the SHA-256 of a presented secret (what the store keeps, so no secret is held in
// memory; 256 bits, so no two secrets share an entry) to the principal lookup made of it. A failed
// lookup is never remembered: an unknown or wrong secret reads the store each time, as before. An
// entry is the key as it verified; its expiry is checked at every use.
type keyCache struct {
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]cachedKey
	gen uint64 // bumped by invalidate: a lookup that read the store before it does not store its result
}

type cachedKey struct {
	p  *principal
	at time.Time
}

// get returns the remembered principal of digest, if younger than keyCacheTTL at now.
func (c *keyCache) get(digest [sha256.Size]byte, now time.Time) (*principal, uint64) {
	c.mu.RLock()
	e, ok := c.m[digest]
	gen := c.gen
	c.mu.RUnlock()
	if ok && now.Sub(e.at) < keyCacheTTL && !now.Before(e.at) {
		return e.p, gen
	}
	return nil, gen
}

// put remembers p for digest, read from the store at at, unless the cache was invalidated since gen.
func (c *keyCache) put(digest [sha256.Size]byte, p *principal, at time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[[sha256.Size]byte]cachedKey)
	}
	c.m[digest] = cachedKey{p: p, at: at}
}

// invalidate forgets every key: called after this instance changes API keys or accounts.
func (c *keyCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.m)
	c.mu.Unlock()
}

// credDigest is the HMAC of name and pass under a random per-process key.
func (a *authenticator) credDigest(name, pass string) [sha256.Size]byte {
	a.verifyKeyOK.Do(func() { _, _ = rand.Read(a.verifyKey[:]) })
	m := hmac.New(sha256.New, a.verifyKey[:])
	m.Write([]byte(name))
	m.Write([]byte{0})
	m.Write([]byte(pass))
	var d [sha256.Size]byte
	m.Sum(d[:0])
	return d
}

var errUnauthenticated = status.Error(codes.Unauthenticated, "missing or unknown credentials")

// authorize returns the caller of method, or Unauthenticated / PermissionDenied.
func (a *authenticator) authorize(ctx context.Context, method string) (*principal, error) {
	if !strings.HasPrefix(method, "/smppgw.v1.") {
		return nil, nil // health and reflection are open
	}
	vals := metadata.ValueFromIncomingContext(ctx, "authorization") // no copy of the whole metadata
	if len(vals) != 1 {
		return nil, errUnauthenticated
	}
	scheme, cred, _ := strings.Cut(vals[0], " ")
	cred = strings.TrimSpace(cred)
	isAdmin := strings.HasPrefix(method, adminPrefix)
	var p *principal
	switch { // EqualFold, not ToLower: "Bearer" lowered is a new string on every call
	case strings.EqualFold(scheme, "bearer"):
		var err error
		if p, err = a.bearer(ctx, cred); err != nil {
			return nil, err
		}
	case strings.EqualFold(scheme, "basic"):
		if !isAdmin {
			return nil, status.Error(codes.Unauthenticated, "basic credentials are accepted on admin endpoints only")
		}
		name, ok := a.checkBasic(cred)
		if !ok {
			return nil, errUnauthenticated
		}
		return &principal{Operator: name}, nil
	default:
		return nil, errUnauthenticated
	}
	if isAdmin {
		if !p.admin() {
			return nil, status.Error(codes.PermissionDenied, "the admin scope is required")
		}
		return p, nil
	}
	need, ok := scopes[method]
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "method not allowed")
	}
	for _, s := range need {
		if p.has(s) {
			return p, nil
		}
	}
	return nil, status.Errorf(codes.PermissionDenied, "the %s scope is required", need[0])
}

// bearer returns the caller presenting an API key's secret: from verifiedKeys when the key verified
// less than keyCacheTTL ago, else from lookup. The key's expiry is checked at every call.
func (a *authenticator) bearer(ctx context.Context, secret string) (*principal, error) {
	digest := secretDigest(secret)
	now := a.now()
	p, gen := a.verifiedKeys.get(digest, now)
	if p == nil {
		k, err := a.lookup(ctx, secret, digest)
		if err != nil {
			return nil, err
		}
		p = &principal{Key: k}
		a.verifiedKeys.put(digest, p, now, gen) // now: before the reads, so the entry is never younger than they are
	}
	if k := p.Key; !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		return nil, status.Error(codes.Unauthenticated, "API key expired")
	}
	return p, nil
}

// invalidateKeys makes the next call of every API key read its key and account again: call it after
// changing API keys or accounts.
func (a *authenticator) invalidateKeys() { a.verifiedKeys.invalidate() }

// lookup reads the key a secret names and its account from the store and checks them (all but the
// expiry, which bearer checks); digest is the secret's SHA-256.
func (a *authenticator) lookup(ctx context.Context, secret string, digest [sha256.Size]byte) (*store.APIKey, error) {
	rest, ok := strings.CutPrefix(secret, keyPrefix)
	if !ok || len(rest) < keyIDLen+2 || rest[keyIDLen] != '_' {
		return nil, errUnauthenticated
	}
	k, err := a.keys.GetAPIKey(ctx, rest[:keyIDLen])
	if errors.Is(err, store.ErrNotFound) {
		return nil, errUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(k.Hash, digest[:]) != 1 || k.Disabled {
		return nil, errUnauthenticated
	}
	if k.Account != "" {
		acc, err := a.keys.GetAccount(ctx, k.Account)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errUnauthenticated
		}
		if err != nil {
			return nil, err
		}
		if acc.Disabled {
			return nil, status.Error(codes.Unauthenticated, "the key's account is disabled")
		}
	}
	return k, nil
}

// dummyHash keeps an unknown user as slow as a wrong password.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password"), bcrypt.MinCost)

func (a *authenticator) checkBasic(cred string) (string, bool) {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", false
	}
	name, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", false
	}
	hash, known := a.admins[name]
	if !known {
		hash = dummyHash
	}
	d := a.credDigest(name, pass)
	if v, ok := a.verified.Load(name); ok && known {
		if want := v.([sha256.Size]byte); subtle.ConstantTimeCompare(d[:], want[:]) == 1 {
			return name, true
		}
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !known {
		return "", false
	}
	a.verified.Store(name, d)
	return name, true
}

// Interceptors: authenticate, then map whatever the handler returns through toStatus once.

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	p, err := s.auth.authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, s.statusErr(info.FullMethod, err)
	}
	if p != nil {
		ctx = context.WithValue(ctx, principalKey{}, p)
	}
	if m, ok := req.(proto.Message); ok {
		if err := checkEnums("", m.ProtoReflect()); err != nil {
			return nil, s.statusErr(info.FullMethod, err)
		}
	}
	resp, err := h(ctx, req)
	if err != nil {
		return nil, s.statusErr(info.FullMethod, err)
	}
	return resp, nil
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a *authedStream) Context() context.Context { return a.ctx }

// RecvMsg refuses a request with an enum number the contract does not define, as the unary
// interceptor does.
func (a *authedStream) RecvMsg(m any) error {
	if err := a.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if pm, ok := m.(proto.Message); ok {
		if err := checkEnums("", pm.ProtoReflect()); err != nil {
			st, _ := toStatus(err)
			return st.Err()
		}
	}
	return nil
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	p, err := s.auth.authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return s.statusErr(info.FullMethod, err)
	}
	ctx := ss.Context()
	if p != nil {
		ctx = context.WithValue(ctx, principalKey{}, p)
	}
	ss = &authedStream{ServerStream: ss, ctx: ctx}
	if err := h(srv, ss); err != nil {
		return s.statusErr(info.FullMethod, err)
	}
	return nil
}

func (s *Server) statusErr(method string, err error) error {
	st, internal := toStatus(err)
	if internal {
		s.log.Error().Err(err).Str("method", method).Msg("api call failed")
	}
	return st.Err()
}
