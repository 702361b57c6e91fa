package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/store"
)

// Receipts and MO reach the instance holding the upstream's bind (deliver_sm comes in there), but an
// application may stream them from any instance's API (issue 12). clusterEvents relays each event of
// this instance's hub to the other instances sharing the store (store.Events: Redis pub/sub), which
// publish it into their hubs marked Remote, for their API streams only: webhooks post local events,
// so each event is posted once, by the instance it reached.
//
// The relay is live and at most once, like the hub itself (a stream that falls behind loses events):
// what an instance misses while cut off from the store is not replayed; the receipts stay in the store
// (GetMessage) and ESMEs get theirs through the store's deliver queues. The message path only appends
// to a list; one goroutine publishes what gathered, up to relayBatch events per PUBLISH, and only
// while another instance is on the board.
type clusterEvents struct {
	ev     store.Events
	token  string      // this run's: its own publications come back and are skipped by it
	others func() bool // another instance is on the board
	hub    *hub
	log    zerolog.Logger

	mu      sync.Mutex
	pending []Event
	wake    chan struct{}

	relayed, received, lost atomic.Uint64

	cancel context.CancelFunc
	done   sync.WaitGroup
}

const (
	relayBatch      = 256   // events per PUBLISH at most
	relayMaxPending = 20000 // events waiting to be published before new ones are dropped (counted)
)

func newClusterEvents(ev store.Events, o *ownership, h *hub, log zerolog.Logger) *clusterEvents {
	return &clusterEvents{ev: ev, token: o.token, others: o.hasOthers, hub: h, wake: make(chan struct{}, 1),
		log: log.With().Str("component", "cluster-events").Logger()}
}

// start subscribes to the other instances' events (retrying until it can) and relays this instance's.
func (c *clusterEvents) start(ctx context.Context) {
	if c == nil {
		return
	}
	ctx, c.cancel = context.WithCancel(ctx)
	local, unsubscribe := c.hub.subscribe("", false) // skips what it cannot take, never ends
	c.done.Go(func() {                               // the other instances' events, into the hub
		var stop func()
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			sctx, cancel := context.WithTimeout(ctx, storeTimeout)
			s, err := c.ev.SubscribeEvents(sctx, c.receive)
			cancel()
			if err == nil {
				stop = s
				break
			}
			if ctx.Err() != nil {
				return
			}
			c.log.Warn().Err(err).Msg("not subscribed to the other instances' receipts and MO; trying again")
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		<-ctx.Done()
		stop()
	})
	c.done.Go(func() { // this instance's events, gathered
		for e := range local {
			if e.Remote || !c.others() {
				continue
			}
			c.mu.Lock()
			if len(c.pending) < relayMaxPending {
				c.pending = append(c.pending, e)
			} else {
				c.lost.Add(1)
			}
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	})
	c.done.Go(func() { // and published
		for {
			select {
			case <-ctx.Done():
				unsubscribe()
				return
			case <-c.wake:
			}
			c.mu.Lock()
			evs := c.pending
			c.pending = nil
			c.mu.Unlock()
			for len(evs) > 0 {
				n := min(len(evs), relayBatch)
				c.publish(ctx, evs[:n])
				evs = evs[n:]
			}
		}
	})
}

// publish sends one batch: this run's token, a newline, and the events as a JSON array.
func (c *clusterEvents) publish(ctx context.Context, evs []Event) {
	var b bytes.Buffer
	b.WriteString(c.token)
	b.WriteByte('\n')
	if err := json.NewEncoder(&b).Encode(evs); err != nil {
		c.lost.Add(uint64(len(evs)))
		c.log.Error().Err(err).Msg("events not encoded for the other instances")
		return
	}
	pctx, cancel := context.WithTimeout(ctx, storeTimeout)
	err := c.ev.PublishEvents(pctx, b.Bytes())
	cancel()
	if err != nil {
		c.lost.Add(uint64(len(evs)))
		if ctx.Err() == nil {
			c.log.Warn().Err(err).Int("events", len(evs)).Msg("receipts and MO not relayed to the other instances' API streams")
		}
		return
	}
	c.relayed.Add(uint64(len(evs)))
}

// receive publishes another instance's events into this instance's hub, marked Remote.
func (c *clusterEvents) receive(payload []byte) {
	token, body, ok := bytes.Cut(payload, []byte{'\n'})
	if !ok {
		c.log.Warn().Msg("relayed events without a sender; skipped")
		return
	}
	if string(token) == c.token {
		return
	}
	var evs []Event
	if err := json.Unmarshal(body, &evs); err != nil {
		c.log.Warn().Err(err).Str("from", ownerName(string(token))).Msg("relayed events not understood; skipped")
		return
	}
	for _, e := range evs {
		e.Remote = true
		c.hub.publish(e)
	}
	c.received.Add(uint64(len(evs)))
}

// stop ends the relay and the subscription.
func (c *clusterEvents) stop() {
	if c == nil || c.cancel == nil {
		return
	}
	c.cancel()
	c.done.Wait()
}
