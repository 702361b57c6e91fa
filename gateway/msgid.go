package gateway

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync/atomic"
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

// messageIDs issues gateway message ids (see idBase).
type messageIDs struct {
	idStart atomic.Uint64 // where this run's message ids start, in [0, idSpace)
	nextID  atomic.Uint64
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
func (r *messageIDs) newMessageID() string {
	n := r.nextID.Add(1) % idSpace
	k := (r.idStart.Load() + n) % idSpace
	var b [16]byte
	return string(strconv.AppendUint(b[:0], idBase+k, 10))
}

// reseedIDs moves the id sequence to a new random start, after the store found an id taken.
func (r *messageIDs) reseedIDs() {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand does not fail on supported platforms
	r.idStart.Store(binary.BigEndian.Uint64(seed[:]) % idSpace)
}
