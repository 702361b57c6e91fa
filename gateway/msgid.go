package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"
)

// Message ids are 16 decimal digits, the first 1 to 7: the numbers idBase to idBase+idSpace-1.
//
// Peers keep our ids as text (SMPP says a C-Octet String) or, many of them, as a signed 64-bit number
// read in a base of their choosing: Kannel's msg-id-type reads hex (0x03) or decimal (0x00), other
// peers read an id of digits only as decimal and anything else as hex. An id that overflows int64 is
// saturated to 9223372036854775807 by strtoll, so all of them become one and receipts go to the wrong
// message; an id read as hex by one rule and as decimal by another can equal a different id read the
// other way. Digits only, 16 of them, first 1 to 7, is the one form every such reader gets right:
// every id reads the same way under each rule (all digits), as decimal it is below 8·10^15 and as
// hex below 0x8000000000000000, both < 2^63, and two different strings of 16 digits are two different
// numbers in either base. No leading 0: strtoll with base 0 reads it as octal, and a peer that
// prints the number back would lose it.
const (
	idBase  = 1_000_000_000_000_000 // 10^15: the smallest id, "1000000000000000"
	idSpace = 7 * idBase            // ids are idBase+k for k in [0, idSpace), up to "7999999999999999"
)

// IDFormat is the form of the message ids an account sees: in submit_sm_resp and data_sm_resp, in
// its receipts (the text's id: field and receipted_message_id), in query_sm, cancel_sm and
// replace_sm, and in the API. The id is generated in the account's form when its message is
// accepted and stored under it, so every later step reads it as it is: no mapping to keep, and a
// message is found by the id its account holds. The three forms never meet as strings (16
// characters, 13 or 14, 36), so one store keys all of them.
type IDFormat string

// Message id forms. Each fits SMPP's message_id (a C-Octet String of at most 65 octets) and the
// receipt's id: field with room to spare.
const (
	// IDDecimal is the default: 16 decimal digits, the first 1 to 7 (see idBase), which every
	// reader of ids as numbers gets right.
	IDDecimal IDFormat = "decimal"
	// IDHex is the same number in lower-case hexadecimal, 13 or 14 digits, below 2^53: what
	// Kannel's msg-id-type 0x01/0x03 and peers that read ids with strtoll(…, 16) expect.
	IDHex IDFormat = "hex"
	// IDUUID is a random (version 4) UUID, 36 characters in the 8-4-4-4-12 form, as Jasmin's
	// users get.
	IDUUID IDFormat = "uuid"
)

// ParseIDFormat reads a configured id form; "" is IDDecimal.
func ParseIDFormat(s string) (IDFormat, error) {
	switch f := IDFormat(s); f {
	case "", IDDecimal:
		return IDDecimal, nil
	case IDHex, IDUUID:
		return f, nil
	}
	return "", fmt.Errorf("message_ids %q is none of decimal, hex, uuid", s)
}

// messageIDs issues gateway message ids (see idBase), each in its account's form (IDFormat).
type messageIDs struct {
	idStart atomic.Uint64 // where this run's message ids start, in [0, idSpace)
	nextID  atomic.Uint64
	// accounts gives each account's id form; nil issues decimal ids for all.
	accounts *accountOptions
}

// newMessageIDs starts a run's ids at a random point of the id space.
func newMessageIDs() *messageIDs {
	ids := &messageIDs{}
	ids.reseedIDs()
	return ids
}

// newMessageID returns a gateway message id (see idBase): this run's counter added to a random start,
// modulo idSpace. One run repeats none before 7·10^15 ids (two centuries at a million a second). Two
// runs or two instances meet only when their ranges overlap, a chance of about (ids issued)/idSpace;
// then the store refuses the repeat and accept moves this run to a new random start (reseedIDs).
func (r *messageIDs) newMessageID() string { return r.newID(IDDecimal) }

// newMessageIDFor returns a new message id in account's form.
func (r *messageIDs) newMessageIDFor(ctx context.Context, account string) string {
	if r.accounts == nil {
		return r.newID(IDDecimal)
	}
	return r.newID(r.accounts.get(ctx, account).IDs)
}

// newID returns a new id in form f. Decimal and hex ids are the run's counter (so neither repeats
// within a run); UUIDs are 122 random bits, and a repeat is refused by the store like any other.
func (r *messageIDs) newID(f IDFormat) string {
	var b [36]byte
	return string(r.appendID(b[:0], f))
}

// appendID appends a new id in form f (see newID) to b.
func (r *messageIDs) appendID(b []byte, f IDFormat) []byte {
	if f == IDUUID {
		return appendUUID(b)
	}
	n := r.nextID.Add(1) % idSpace
	k := (r.idStart.Load() + n) % idSpace
	if f == IDHex {
		return strconv.AppendUint(b, idBase+k, 16)
	}
	return strconv.AppendUint(b, idBase+k, 10)
}

// appendIDKnown appends a new id in account's form to b when that form is known without asking the
// store (no per-account forms, or the account's options cached and fresh at now); ok false
// otherwise, and b is returned as it was.
func (r *messageIDs) appendIDKnown(b []byte, account string, now time.Time) (_ []byte, ok bool) {
	f := IDDecimal
	if r.accounts != nil {
		o, ok := r.accounts.cached(account, now)
		if !ok {
			return b, false
		}
		f = o.IDs
	}
	return r.appendID(b, f), true
}

// newUUID returns a random version 4 UUID (RFC 9562), lower case.
func newUUID() string {
	var b [36]byte
	return string(appendUUID(b[:0]))
}

// appendUUID appends a random version 4 UUID (RFC 9562), lower case, to dst.
func appendUUID(dst []byte) []byte {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand does not fail on supported platforms
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return append(dst, b[:]...)
}

// reseedIDs moves the id sequence to a new random start, after the store found an id taken.
func (r *messageIDs) reseedIDs() {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand does not fail on supported platforms
	r.idStart.Store(binary.BigEndian.Uint64(seed[:]) % idSpace)
}
