// Package tokenbucket is the one token bucket behind the gateway's per-account throughput caps and
// the simulator's ESME_RTHROTTLED fault: rate tokens a second, at most max(1, rate) of them, full at
// first. Unlike golang.org/x/time/rate, whose burst is a whole number, the burst follows a fractional
// rate exactly (2.5/s holds 2.5 tokens), as Account.Throughput documents.
package tokenbucket

import (
	"sync"
	"time"
)

// Bucket is safe for concurrent use.
type Bucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

// New returns a full bucket at rate tokens a second, or nil when rate is not positive (no limit).
func New(rate float64, now time.Time) *Bucket {
	if rate <= 0 {
		return nil
	}
	return &Bucket{rate: rate, tokens: burst(rate), last: now}
}

func burst(rate float64) float64 { return max(rate, 1) }

// refill adds what was earned since the last call; the caller holds mu.
func (b *Bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(burst(b.rate), b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// SetRate changes the rate, keeping the tokens earned so far (capped at the new burst).
func (b *Bucket) SetRate(rate float64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate != rate {
		b.refill(now)
		b.rate = rate
		b.tokens = min(b.tokens, burst(rate))
	}
}

// Allow spends one token if there is one.
func (b *Bucket) Allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
