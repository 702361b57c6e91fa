package api

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/store"
)

// TestCheckBasicRemembersVerifiedCredentials: a matching operator password is remembered (as an
// HMAC), so later requests skip bcrypt; a wrong password, an unknown name or another password of the
// same operator is never accepted from the memory.
func TestCheckBasicRemembersVerifiedCredentials(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("opspw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := &authenticator{admins: map[string][]byte{"ops": hash}}
	basic := func(user, pass string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)) }
	if _, ok := a.checkBasic(basic("ops", "wrong")); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := a.verified.Load("ops"); ok {
		t.Fatal("a failed check was remembered")
	}
	if name, ok := a.checkBasic(basic("ops", "opspw")); !ok || name != "ops" {
		t.Fatalf("checkBasic = %q, %v", name, ok)
	}
	if _, ok := a.verified.Load("ops"); !ok {
		t.Fatal("a verified credential was not remembered")
	}
	// From memory now: the same answer without the hash (bcrypt would refuse an empty hash).
	a.admins["ops"] = []byte{}
	if name, ok := a.checkBasic(basic("ops", "opspw")); !ok || name != "ops" {
		t.Fatalf("remembered credential: %q, %v", name, ok)
	}
	for _, c := range [][2]string{{"ops", "other"}, {"nobody", "opspw"}} {
		if _, ok := a.checkBasic(basic(c[0], c[1])); ok {
			t.Errorf("%s:%s accepted", c[0], c[1])
		}
	}
}

// keyStore is the key and account records lookup reads, counting the reads.
type keyStore struct {
	store.APIKeys // only Get is called
	store.Accounts
	mu       sync.Mutex
	keys     map[string]*store.APIKey
	accounts map[string]*store.Account
	reads    int
}

func (s *keyStore) GetAPIKey(_ context.Context, id string) (*store.APIKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	k, ok := s.keys[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *k
	return &c, nil
}

func (s *keyStore) GetAccount(_ context.Context, id string) (*store.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	a, ok := s.accounts[id]
	if !ok {
		return nil, store.ErrNotFound
	}
	c := *a
	return &c, nil
}

func (s *keyStore) edit(f func()) { s.mu.Lock(); f(); s.mu.Unlock() }

func (s *keyStore) count() int { s.mu.Lock(); defer s.mu.Unlock(); return s.reads }

// TestBearerRemembersVerifiedKeys: a key that verified is taken from memory (no store read) for
// keyCacheTTL, then read again; a change made elsewhere (straight in the store, as another instance
// would) shows after the TTL, one made here (invalidateKeys) at once; its expiry is exact whatever
// the memory holds; a wrong or unknown secret is never remembered and never matches another's entry.
func TestBearerRemembersVerifiedKeys(t *testing.T) {
	k, secret, err := NewAPIKey("t", "acme", store.ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	st := &keyStore{keys: map[string]*store.APIKey{k.ID: k}, accounts: map[string]*store.Account{"acme": {SystemID: "acme"}}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := &authenticator{keys: st, now: func() time.Time { return now }}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+secret))
	method := smppgwv1.MessageService_Submit_FullMethodName
	call := func() error {
		p, err := a.authorize(ctx, method)
		if err == nil && (p.Key == nil || p.Key.ID != k.ID) {
			t.Fatalf("principal %+v", p)
		}
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if n := st.count(); n != 2 {
		t.Fatalf("first call read the store %d times, want 2 (key, account)", n)
	}
	for range 5 {
		now = now.Add(keyCacheTTL / 10)
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.count(); n != 2 {
		t.Fatalf("calls within the TTL read the store: %d reads, want 2", n)
	}

	// Disabled through another instance: seen once the entry is older than the TTL.
	st.edit(func() { st.accounts["acme"].Disabled = true })
	if err := call(); err != nil {
		t.Fatalf("within the TTL of a change made elsewhere: %v, want the remembered key", err)
	}
	now = now.Add(keyCacheTTL)
	if err := call(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after the TTL, account disabled: %v, want Unauthenticated", err)
	}
	if n := st.count(); n != 4 {
		t.Fatalf("%d reads, want 4", n)
	}
	st.edit(func() { st.accounts["acme"].Disabled = false })
	for range 3 { // refused calls are not remembered: each reads again, so the re-enable shows at once
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.count(); n != 6 {
		t.Fatalf("%d reads, want 6", n)
	}

	// Revoked through this instance: refused at the next call.
	st.edit(func() { delete(st.keys, k.ID) })
	a.invalidateKeys()
	for range 2 {
		if err := call(); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("revoked here: %v, want Unauthenticated", err)
		}
	}
	if n := st.count(); n != 8 {
		t.Fatalf("%d reads, want 8 (refusals are not remembered)", n)
	}

	// Expiry is exact, not rounded to the TTL.
	st.edit(func() { k.ExpiresAt = now.Add(keyCacheTTL / 2); st.keys[k.ID] = k })
	if err := call(); err != nil {
		t.Fatal(err)
	}
	now = now.Add(keyCacheTTL / 2)
	if err := call(); status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at its expiry: %v, want Unauthenticated, expired", err)
	}

	// Another secret with the same key id (a guess) neither matches the entry nor enters the memory.
	st.edit(func() { k.ExpiresAt = time.Time{}; st.keys[k.ID] = k })
	a.invalidateKeys()
	if err := call(); err != nil {
		t.Fatal(err)
	}
	wrong := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+secret[:len(secret)-2]+"xx"))
	before := st.count()
	for range 3 {
		if _, err := a.authorize(wrong, method); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("a wrong secret: %v", err)
		}
	}
	if n := st.count() - before; n != 3 {
		t.Fatalf("three wrong secrets read the key %d times, want 3", n)
	}
}

// TestKeyCacheInvalidatedDuringLookup: a lookup that read the store before an invalidation does not
// put what it read into the memory after it.
func TestKeyCacheInvalidatedDuringLookup(t *testing.T) {
	var c keyCache
	d := [32]byte{1}
	now := time.Now()
	_, gen := c.get(d, now)
	c.invalidate() // a revocation between the lookup's reads and its put
	c.put(d, &principal{Key: &store.APIKey{ID: "old"}}, now, gen)
	if p, _ := c.get(d, now); p != nil {
		t.Fatalf("a lookup from before the invalidation was remembered: %+v", p.Key)
	}
	_, gen = c.get(d, now)
	c.put(d, &principal{Key: &store.APIKey{ID: "new"}}, now, gen)
	if p, _ := c.get(d, now); p == nil || p.Key.ID != "new" {
		t.Fatalf("a lookup after it was not remembered: %v", p)
	}
}

// TestAuthSchemeAnyCase: the scheme is case-insensitive (RFC 9110 11.1) for Bearer and Basic alike,
// and a remembered key costs the call no allocation of its own.
func TestAuthSchemeAnyCase(t *testing.T) {
	k, secret, err := NewAPIKey("t", "acme", store.ScopeSend)
	if err != nil {
		t.Fatal(err)
	}
	st := &keyStore{keys: map[string]*store.APIKey{k.ID: k}, accounts: map[string]*store.Account{"acme": {SystemID: "acme"}}}
	hash, err := bcrypt.GenerateFromPassword([]byte("opspw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := &authenticator{keys: st, admins: map[string][]byte{"ops": hash}, now: time.Now}
	basic := base64.StdEncoding.EncodeToString([]byte("ops:opspw"))
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", scheme+" "+secret))
		if p, err := a.authorize(ctx, smppgwv1.MessageService_Submit_FullMethodName); err != nil || p.Key == nil || p.Key.ID != k.ID {
			t.Errorf("%s: principal %+v, %v", scheme, p, err)
		}
	}
	for _, scheme := range []string{"Basic", "basic", "BASIC"} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", scheme+" "+basic))
		if p, err := a.authorize(ctx, smppgwv1.AdminService_ListAccounts_FullMethodName); err != nil || p.Operator != "ops" {
			t.Errorf("%s: principal %+v, %v", scheme, p, err)
		}
	}
	for _, scheme := range []string{"Bearerx", "Bear", "Digest"} {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", scheme+" "+secret))
		if _, err := a.authorize(ctx, smppgwv1.MessageService_Submit_FullMethodName); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", scheme, err)
		}
	}
	// Past the copy metadata.ValueFromIncomingContext makes of the values, nothing is allocated.
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+secret))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := a.authorize(ctx, smppgwv1.MessageService_Submit_FullMethodName); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("a remembered key's call allocated %v times, want 1 (the metadata values' copy)", allocs)
	}
}
