package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// SubscriberBuffer is how many events a subscriber may fall behind before it is ended: a few
// tenths of a second of receipts at the rates the gateway takes, room for a stream consumer's pauses
// (a garbage collection, an HTTP/2 window update) without giving a stalled one unbounded memory.
const SubscriberBuffer = 4096

// hub fans receipts and MO out to the API's subscribers. It never waits for one: an event that
// finds a subscriber's buffer full is not handed to it (counted in dropped). What happens next is the
// subscriber's policy: a skipping subscriber (Gateway.Subscribe: the webhook dispatcher) goes on with
// the events after it; an ending one (Gateway.SubscribeStream: the API's receipt stream) is ended,
// its channel closed after the events it already holds, and gets nothing more, so that its consumer
// learns it missed some rather than silently skipping them. The store keeps the receipts either way.
type hub struct {
	mu      sync.RWMutex
	subs    map[*subscriber]struct{}
	dropped atomic.Uint64             // events not handed to a subscriber that had fallen behind
	ended   atomic.Uint64             // subscribers ended for falling behind
	sink    atomic.Pointer[EventSink] // durable recording before the upstream is answered (webhookq.go)
}

type subscriber struct {
	account string
	ch      chan Event
	ending  bool        // ended, rather than skipped over, when its buffer is full
	behind  atomic.Bool // an ending subscriber whose buffer was full: removed by that publish
	once    sync.Once
}

func newHub() *hub { return &hub{subs: make(map[*subscriber]struct{})} }

func (h *hub) subscribe(account string, ending bool) (<-chan Event, func()) {
	s := &subscriber{account: account, ch: make(chan Event, SubscriberBuffer), ending: ending}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s.ch, func() { h.remove(s) }
}

// remove takes s out and closes its channel, once. The write lock keeps it from closing a channel a
// publish is sending on.
func (h *hub) remove(s *subscriber) {
	s.once.Do(func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
		close(s.ch)
	})
}

// publish hands e to every matching subscriber without waiting; one whose buffer is full misses it
// and, if it is an ending subscriber, is ended (see hub). The read lock is held while sending, so
// remove (which takes the write lock before closing) never closes a channel being sent on.
func (h *hub) publish(e Event) {
	if e.Kind == EventMO && !e.Remote { // a relayed MO was recorded by the instance it reached
		h.recordMO(e)
	}
	var behind []*subscriber
	h.mu.RLock()
	for s := range h.subs {
		if s.account != "" && s.account != e.Account {
			continue
		}
		if s.behind.Load() {
			h.dropped.Add(1) // ended by another publish, not yet removed
			continue
		}
		select {
		case s.ch <- e:
		default:
			h.dropped.Add(1)
			if s.ending && s.behind.CompareAndSwap(false, true) {
				h.ended.Add(1)
				behind = append(behind, s)
			}
		}
	}
	h.mu.RUnlock()
	for _, s := range behind {
		h.remove(s)
	}
}

// counters are the gateway's statistics since start.
type counters struct {
	accepted, rejected, submitted, receiptsIn, moIn atomic.Uint64
	// receiptsDup counts receipts an upstream sent again (receipts.duplicate), not handed on.
	receiptsDup atomic.Uint64
	// Per-second rates over the last minute, of the counters of the same names.
	acceptRate, submitRate, receiptRate, moRate rateWindow

	// byStatus counts accepted messages by their current status, indexed by pdu.MessageState.
	byStatus [256]atomic.Int64
}

func newCounters() *counters { return &counters{} }

// accept counts a newly accepted message, at its CreatedAt (the store stamps it on accept).
func (c *counters) accept(m *store.Message) {
	c.accepted.Add(1)
	at := m.CreatedAt
	if at.IsZero() {
		at = time.Now()
	}
	c.acceptRate.add(at)
	c.byStatus[m.Status].Add(1)
}

// submit counts a part an upstream accepted (submit_sm_resp OK) at.
func (c *counters) submit(at time.Time) {
	c.submitted.Add(1)
	c.submitRate.add(at)
}

// receipt counts a receipt an upstream sent and the store recorded.
func (c *counters) receipt() {
	c.receiptsIn.Add(1)
	c.receiptRate.add(time.Now())
}

// mo counts an MO an upstream sent and the store queued.
func (c *counters) mo() {
	c.moIn.Add(1)
	c.moRate.add(time.Now())
}

// transition moves a message between status counts when the store operation that returned m changed
// its status. That operation appended to History the entries stamped with m.UpdatedAt or one of at
// (an update that also applied receipts parked before it appends one per status change, stamped
// with the update's or the receipt's time); the status before them is the one the message leaves.
func (c *counters) transition(m *store.Message, at ...time.Time) {
	if m == nil {
		return
	}
	ours := func(t time.Time) bool {
		if t.Equal(m.UpdatedAt) {
			return true
		}
		for _, a := range at {
			if t.Equal(a) {
				return true
			}
		}
		return false
	}
	h := m.History
	i := len(h)
	for i > 1 && ours(h[i-1].At) {
		i--
	}
	if i == len(h) {
		return // nothing appended: the status did not change
	}
	prev, last := h[i-1].State, h[len(h)-1].State
	if prev == last {
		return
	}
	c.byStatus[prev].Add(-1)
	c.byStatus[last].Add(1)
}

// rateSpan is the window rates are measured over.
const rateSpan = 60

// rateWindow measures a rate as a sliding one-minute mean (not an EWMA): one bucket per second in a
// ring indexed by unix second, each stamped with the second it holds so that a bucket left from an
// earlier minute is cleared when its slot comes round again. The rate is the sum of the buckets of
// the last 60 seconds, the current one included, over 60: N events in the last minute read N/60.
// A bucket is one word, the second in its high 32 bits and the count in its low 32, so that add is a
// compare-and-swap and counting takes no lock on the message path.
type rateWindow struct {
	b [rateSpan]atomic.Uint64
}

func (w *rateWindow) add(now time.Time) {
	sec := uint32(now.Unix())
	b := &w.b[int64(sec)%rateSpan]
	for {
		old := b.Load()
		next := uint64(sec)<<32 | 1
		if uint32(old>>32) == sec {
			next = old + 1
		}
		if b.CompareAndSwap(old, next) {
			return
		}
	}
}

// rate is events per second over the minute up to now.
func (w *rateWindow) rate(now time.Time) float64 {
	sec := uint32(now.Unix())
	var n uint64
	for i := range w.b {
		v := w.b[i].Load()
		if v == 0 {
			continue
		}
		if age := int64(sec) - int64(uint32(v>>32)); age >= 0 && age < rateSpan {
			n += v & 0xFFFFFFFF
		}
	}
	return float64(n) / rateSpan
}

// pending is how many accepted messages are not in a final state (this process's view).
func (c *counters) pending() int64 {
	var n int64
	for st := range c.byStatus {
		if k := c.byStatus[st].Load(); !pdu.MessageState(st).Final() && k > 0 {
			n += k
		}
	}
	return n
}

func (c *counters) statuses() map[pdu.MessageState]int64 {
	out := make(map[pdu.MessageState]int64)
	for st := range c.byStatus {
		if v := c.byStatus[st].Load(); v != 0 {
			out[pdu.MessageState(st)] = v
		}
	}
	return out
}
