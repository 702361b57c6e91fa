package gateway

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/store"
)

// idSeeds are per-process seeds of the message id sequence: the worst cases (the ends of the range,
// where a 32-bit hex prefix had its top bit set) and a few in between.
var idSeeds = []uint64{0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 52, idSeedMax - 1, idSeedMax, math.MaxUint64}

// TestMessageIDsReadAsInt64 simulates many process starts, each from a worst-case seed and at
// counters near their wraps: every id must parse as a signed 64-bit number whether a peer reads it
// as hex (Kannel's msg-id-type 0x03 does, and saturated ids >= 2^63 to one value) or, when it is all
// digits, as decimal; and no two different ids may share a number under either reading.
func TestMessageIDsReadAsInt64(t *testing.T) {
	counters := []uint64{0, 1<<32 - 50, 1<<33 - 50, (1<<32 - 1) << 32, math.MaxUint64 - 200}
	byHex, byAuto := map[int64]string{}, map[int64]string{}
	for _, seed := range idSeeds {
		seen := map[string]bool{}
		for _, c := range counters {
			r := &messageIDs{}
			seedMessageIDs(r, seed)
			r.nextID.Store(c)
			for range 100 {
				id := r.newMessageID()
				if len(id) != 16 || seen[id] {
					t.Fatalf("seed %#x counter %#x: id %q repeated or not 16 characters", seed, c, id)
				}
				seen[id] = true
				h, err := strconv.ParseInt(id, 16, 64)
				if err != nil {
					t.Fatalf("seed %#x: id %q read as hex: %v", seed, id, err)
				}
				auto := h
				if allDigits(id) {
					// Peers that guess the base read an id of digits only as decimal.
					if auto, err = strconv.ParseInt(id, 10, 64); err != nil {
						t.Fatalf("seed %#x: id %q read as decimal: %v", seed, id, err)
					}
				}
				if id[0] == '0' {
					t.Fatalf("id %q starts with 0 (octal to strtoll with base 0, and lost by peers that print the number back)", id)
				}
				if o, ok := byHex[h]; ok && o != id {
					t.Fatalf("ids %q and %q are the same number read as hex", o, id)
				}
				if o, ok := byAuto[auto]; ok && o != id {
					t.Fatalf("ids %q and %q are the same number read as a peer guessing the base", o, id)
				}
				byHex[h], byAuto[auto] = id, id
			}
		}
	}
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// TestAcceptReseedsOnIDCollision: two runs (or instances) whose sequences meet would repeat ids,
// which the store refuses; the Router then moves its sequence elsewhere instead of refusing every
// submission from then on.
func TestAcceptReseedsOnIDCollision(t *testing.T) {
	st := newEmbedded(t)
	r := newStoreRouter(t, RouterConfig{}, st, knownUpstreams{"up": true})
	msg := func() *store.Message {
		return &store.Message{Account: "acme", Upstream: "up", Source: store.Address{Addr: "1"}, Destination: store.Address{Addr: "2"},
			Parts: []store.Part{{ShortMessage: []byte("x")}}}
	}
	first := msg()
	if err := r.accept(sessiontest.Ctx(t), first); err != nil {
		t.Fatal(err)
	}
	r.ids.nextID.Store(0) // as another run from the same point of the sequence
	again := msg()
	if err := r.accept(context.Background(), again); err != nil {
		t.Fatalf("accept after an id collision: %v (exists: %v)", err, errors.Is(err, store.ErrExists))
	}
	if again.ID == first.ID {
		t.Fatalf("id %s given twice", again.ID)
	}
}

const idSeedMax = idSpace

// seedMessageIDs starts r's ids as a run whose random start was seed.
func seedMessageIDs(r *messageIDs, seed uint64) { r.idStart.Store(seed % idSpace) }

// TestMessageIDForms: hex ids are the decimal form's numbers in hex, 13 or 14 digits, no leading 0,
// below 2^63 read as hex; UUIDs are version 4, variant RFC, 36 characters; the forms never meet as
// strings (lengths 16, 13-14, 36), so one store keys all three. Every id fits SMPP's message_id
// (at most 64 octets before its NUL).
func TestMessageIDForms(t *testing.T) {
	for _, seed := range idSeeds {
		r := &messageIDs{}
		seedMessageIDs(r, seed)
		seen := map[string]bool{}
		for range 200 {
			h := r.newID(IDHex)
			n, err := strconv.ParseUint(h, 16, 63)
			if err != nil || len(h) < 13 || len(h) > 14 || h[0] == '0' || n < idBase || n >= idBase+idSpace || seen[h] {
				t.Fatalf("seed %#x: hex id %q (%d, %v)", seed, h, n, err)
			}
			seen[h] = true
			d := r.newID(IDDecimal)
			if len(d) != 16 || seen[d] {
				t.Fatalf("decimal id %q", d)
			}
			seen[d] = true
		}
	}
	seen := map[string]bool{}
	for range 1000 {
		u := newUUID()
		if len(u) != 36 || u[8] != '-' || u[13] != '-' || u[18] != '-' || u[23] != '-' || u[14] != '4' ||
			!strings.ContainsRune("89ab", rune(u[19])) || strings.Trim(u, "0123456789abcdef-") != "" || seen[u] {
			t.Fatalf("uuid %q", u)
		}
		seen[u] = true
	}
	for _, s := range []string{"", "decimal", "hex", "uuid"} {
		if _, err := ParseIDFormat(s); err != nil {
			t.Errorf("ParseIDFormat(%q): %v", s, err)
		}
	}
	if _, err := ParseIDFormat("HEX"); err == nil {
		t.Error("ParseIDFormat(HEX) accepted")
	}
}

// TestAccountOptionsValidate: a configured account with an unknown message_ids, receipts or long_mo
// is refused, naming the field.
func TestAccountOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		mod   func(*Account)
		field string
	}{
		{func(a *Account) { a.MessageIDs = "base64" }, "message_ids"},
		{func(a *Account) { a.Receipts = "each" }, "receipts"},
		{func(a *Account) { a.LongMO = "whole" }, "long_mo"},
	} {
		a := testAccount(t, "acme", "secret")
		if err := a.Validate(); err != nil {
			t.Fatal(err)
		}
		tc.mod(&a)
		if err := a.Validate(); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("Validate: %v, want an error naming %s", err, tc.field)
		}
	}
	a := testAccount(t, "acme", "secret")
	a.MessageIDs, a.Receipts, a.LongMO = IDUUID, ReceiptPerPart, LongMOPayload
	sa, err := accountToStore(a)
	if err != nil {
		t.Fatal(err)
	}
	if back := optsOf(accountFromStore(sa)); back != (accountOpts{IDs: IDUUID, Receipts: ReceiptPerPart, LongMO: LongMOPayload}) {
		t.Errorf("options through the store record: %+v", back)
	}
}
