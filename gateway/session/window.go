package session

import (
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// maxWindow caps Config.Window so the pending table stays a sensible size.
const maxWindow = 1 << 16

// internalSlots is room kept in the table beyond the window for the session's own requests (bind,
// enquire_link, unbind), which never wait for the window.
const internalSlots = 4

type pendingKind uint8

const (
	kindUser     pendingKind = iota // counts against the window
	kindEnquire                     // our idle-time enquire_link
	kindInternal                    // bind or unbind: completes a waiter, never reaches the Handler
)

// pending is one request of ours awaiting its response.
type pending struct {
	seq      uint32 // 0 when the slot is free
	kind     pendingKind
	req      Request
	deadline time.Duration // since the session started (monotonic)
	w        *waiter
	done     Completion
	prev     int32 // neighbours in send order (== deadline order); -1 at the ends
	next     int32
}

// initialSlots is the size a window's table starts at: room for the session's own requests and a
// few of the user's, so that a session that sends little (an idle bind: enquire_link) holds little.
const initialSlots = 8

// window is the table of pending requests. The slot of a request is its sequence number masked to the
// table size; the table is kept at least twice as large as what is pending (it doubles as requests
// are added, up to twice what can be pending), and next skips sequence numbers whose slot is taken,
// so finding a slot is short and looking a response up is one index.
// Pending entries are also linked in send order: every request has the same timeout, so the head of
// that list is always the next one to expire and one timer per session is enough.
type window struct {
	slots  []pending
	mask   uint32
	max    int // the size the table may grow to
	next   uint32
	head   int32
	tail   int32
	n      int  // entries in the table
	closed bool // set once the session has drained the table; nothing may be added after
}

func newWindow(size int) window {
	c := 1
	for c < 2*(size+internalSlots) {
		c <<= 1
	}
	first := min(c, initialSlots)
	return window{slots: make([]pending, first), mask: uint32(first - 1), max: c, next: 1, head: -1, tail: -1}
}

// grow doubles the table. Entries keep their order; none collide in the larger table, since two
// sequence numbers equal in more low bits are equal in fewer.
func (w *window) grow() {
	old, i := w.slots, w.head
	c := 2 * len(old)
	w.slots, w.mask, w.head, w.tail = make([]pending, c), uint32(c-1), -1, -1
	for i >= 0 {
		p := old[i]
		i = p.next
		j := int32(p.seq & w.mask)
		p.prev, p.next = w.tail, -1
		w.slots[j] = p
		if w.tail >= 0 {
			w.slots[w.tail].next = j
		} else {
			w.head = j
		}
		w.tail = j
	}
}

// nextSeq advances a sequence number within 1..pdu.MaxSequence.
func nextSeq(s uint32) uint32 {
	if s >= pdu.MaxSequence {
		return 1
	}
	return s + 1
}

// add takes a slot for a new request and returns its index; the caller fills it. It fails only when
// the table is full, which the window semaphore and internal-slot accounting rule out.
func (w *window) add(deadline time.Duration) (int32, bool) {
	if 2*(w.n+1) > len(w.slots) && len(w.slots) < w.max {
		w.grow()
	}
	if w.n >= len(w.slots) {
		return -1, false
	}
	seq := w.next
	for w.slots[seq&w.mask].seq != 0 {
		seq = nextSeq(seq)
	}
	w.next = nextSeq(seq)
	i := int32(seq & w.mask)
	p := &w.slots[i]
	*p = pending{seq: seq, deadline: deadline, prev: w.tail, next: -1}
	if w.tail >= 0 {
		w.slots[w.tail].next = i
	} else {
		w.head = i
	}
	w.tail = i
	w.n++
	return i, true
}

// lookup returns the slot of the pending request with sequence seq, or -1.
func (w *window) lookup(seq uint32) int32 {
	if seq == 0 || len(w.slots) == 0 {
		return -1
	}
	i := int32(seq & w.mask)
	if w.slots[i].seq != seq {
		return -1
	}
	return i
}

// take removes the entry at slot i and returns it.
func (w *window) take(i int32) pending {
	p := w.slots[i]
	if p.prev >= 0 {
		w.slots[p.prev].next = p.next
	} else {
		w.head = p.next
	}
	if p.next >= 0 {
		w.slots[p.next].prev = p.prev
	} else {
		w.tail = p.prev
	}
	w.slots[i] = pending{}
	w.n--
	return p
}
