package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// subscriberBuffer is how many events a subscriber may fall behind before it loses some.
const subscriberBuffer = 256

// hub fans receipts and MO out to the API's subscribers. A subscriber that does not keep up loses
// events (counted) rather than slowing the message path; the store keeps the receipts.
type hub struct {
	mu      sync.RWMutex
	subs    map[*subscriber]struct{}
	dropped atomic.Uint64
}

type subscriber struct {
	account string
	ch      chan Event
}

func newHub() *hub { return &hub{subs: make(map[*subscriber]struct{})} }

func (h *hub) subscribe(account string) (<-chan Event, func()) {
	s := &subscriber{account: account, ch: make(chan Event, subscriberBuffer)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
			close(s.ch)
		})
	}
}

// publish hands e to every matching subscriber without waiting. The read lock is held while sending,
// so cancel (which takes the write lock before closing) never closes a channel being sent on.
func (h *hub) publish(e Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.account != "" && s.account != e.Account {
			continue
		}
		select {
		case s.ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

// counters are the gateway's statistics since start.
type counters struct {
	accepted, rejected, receiptsIn, moIn atomic.Uint64

	mu       sync.Mutex
	byStatus map[pdu.MessageState]int64
	perSec   [60]uint64 // accepted messages per second, a ring indexed by unix second
	secs     [60]int64  // which second each slot holds
}

func newCounters() *counters { return &counters{byStatus: make(map[pdu.MessageState]int64)} }

// accept counts a newly accepted message.
func (c *counters) accept(m *store.Message) {
	c.accepted.Add(1)
	now := time.Now().Unix()
	c.mu.Lock()
	c.byStatus[m.Status]++
	i := now % 60
	if c.secs[i] != now {
		c.secs[i], c.perSec[i] = now, 0
	}
	c.perSec[i]++
	c.mu.Unlock()
}

// transition moves a message between status counts when the store operation that returned m changed
// its status (the store appends to History exactly then, stamped with UpdatedAt).
func (c *counters) transition(m *store.Message) {
	if m == nil || len(m.History) < 2 {
		return
	}
	last := m.History[len(m.History)-1]
	if !last.At.Equal(m.UpdatedAt) {
		return
	}
	prev := m.History[len(m.History)-2].State
	c.mu.Lock()
	c.byStatus[prev]--
	c.byStatus[last.State]++
	c.mu.Unlock()
}

// rate is accepted messages per second over the last minute.
func (c *counters) rate() float64 {
	now := time.Now().Unix()
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for i := range c.secs {
		if now-c.secs[i] < 60 {
			n += c.perSec[i]
		}
	}
	return float64(n) / 60
}

func (c *counters) statuses() map[pdu.MessageState]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[pdu.MessageState]int64, len(c.byStatus))
	for k, v := range c.byStatus {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// pool runs the store writes that settle what sessions report (submit results, delivery answers,
// lost PDUs) off the sessions' reader goroutines, on a few workers. Once closed, work runs on the
// caller, so nothing reported late is dropped.
type pool struct {
	mu     sync.RWMutex
	closed bool
	ch     chan func()
	wg     sync.WaitGroup
}

func newPool(workers, depth int) *pool {
	p := &pool{ch: make(chan func(), depth)}
	for range workers {
		p.wg.Go(func() {
			for f := range p.ch {
				f()
			}
		})
	}
	return p
}

func (p *pool) do(f func()) {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		f()
		return
	}
	p.ch <- f
	p.mu.RUnlock()
}

// close runs what is queued and stops the workers.
func (p *pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.ch)
	p.mu.Unlock()
	p.wg.Wait()
}
