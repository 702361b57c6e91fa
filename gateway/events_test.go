package gateway

import (
	"fmt"
	"sync"
	"testing"
)

// drain reads what ch holds without waiting and reports whether it was closed.
func drain(ch <-chan Event) (n int, closed bool) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n, true
			}
			n++
		default:
			return n, false
		}
	}
}

// TestHubSlowSubscribers: with nobody reading, publish never waits; a stream (ending) subscriber
// keeps exactly the events its buffer held and is then closed, a skipping one keeps as many and goes
// on with later events, a subscriber of another account gets none; the counts say what was lost.
func TestHubSlowSubscribers(t *testing.T) {
	h := newHub()
	stream, cancelStream := h.subscribe("acme", true)
	skip, cancelSkip := h.subscribe("acme", false)
	other, cancelOther := h.subscribe("other", true)
	defer cancelSkip()
	defer cancelOther()
	const over = 10
	for i := range SubscriberBuffer + over {
		h.publish(Event{Kind: EventReceipt, Account: "acme", MessageID: fmt.Sprint(i)})
	}
	if n, closed := drain(stream); n != SubscriberBuffer || !closed {
		t.Fatalf("stream subscriber: %d events, closed %v; want %d and closed", n, closed, SubscriberBuffer)
	}
	if n, closed := drain(skip); n != SubscriberBuffer || closed {
		t.Fatalf("skipping subscriber: %d events, closed %v; want %d and open", n, closed, SubscriberBuffer)
	}
	if n, closed := drain(other); n != 0 || closed {
		t.Fatalf("other account's subscriber: %d events, closed %v; want 0 and open", n, closed)
	}
	// Dropped: the stream's first event it had no room for, and the skipping one's over.
	if d, e := h.dropped.Load(), h.ended.Load(); d != 1+over || e != 1 {
		t.Fatalf("dropped %d, ended %d; want %d and 1", d, e, 1+over)
	}
	h.publish(Event{Kind: EventReceipt, Account: "acme", MessageID: "after"})
	if n, closed := drain(skip); n != 1 || closed {
		t.Fatalf("skipping subscriber after draining: %d events, closed %v; want 1 and open", n, closed)
	}
	cancelStream() // after its end: no second close
	h.mu.RLock()
	subs := len(h.subs)
	h.mu.RUnlock()
	if subs != 2 {
		t.Fatalf("%d subscribers left, want 2", subs)
	}
}

// TestHubEndsUnderConcurrentPublish: publishers racing past an ending subscriber's full buffer end it
// once and never send on its closed channel (run with -race); it holds exactly its buffer.
func TestHubEndsUnderConcurrentPublish(t *testing.T) {
	h := newHub()
	slow, cancel := h.subscribe("acme", true)
	defer cancel()
	const publishers, each = 8, SubscriberBuffer
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for range each {
				h.publish(Event{Kind: EventReceipt, Account: "acme"})
			}
		})
	}
	wg.Wait()
	n, closed := drain(slow)
	if n != SubscriberBuffer || !closed || h.ended.Load() != 1 {
		t.Fatalf("slow subscriber: %d events, closed %v, ended %d; want %d, closed, 1", n, closed, h.ended.Load(), SubscriberBuffer)
	}
	if d := h.dropped.Load(); d < 1 || int(d)+n > publishers*each {
		t.Fatalf("dropped %d with %d delivered of %d", d, n, publishers*each)
	}
}

// TestStatsCountStreamLosses: the admin counters say how many events subscribers lost and how many
// receipt streams were ended: a stream and a skipping subscriber, neither reading, three events
// over their buffers.
func TestStatsCountStreamLosses(t *testing.T) {
	st := newEmbedded(t)
	g, _, _ := startGateway(t, Config{}, st)
	_, cancelStream := g.SubscribeStream("acme")
	defer cancelStream()
	_, cancelSkip := g.Subscribe("")
	defer cancelSkip()
	for i := range SubscriberBuffer + 3 {
		g.events.publish(Event{Kind: EventReceipt, Account: "acme", MessageID: fmt.Sprint(i)})
	}
	stats, err := g.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The stream loses the first event it has no room for and is ended; the skipping one loses 3.
	if stats.EventsDropped != 1+3 || stats.StreamsEnded != 1 {
		t.Fatalf("EventsDropped %d, StreamsEnded %d; want 4 and 1", stats.EventsDropped, stats.StreamsEnded)
	}
}
