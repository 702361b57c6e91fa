package gateway

import (
	"sync"
	"time"
)

// accountLimits is the throughput cap of each account (Account.Throughput): one token bucket per
// account, shared by every way a submission comes in, the SMPP sessions of the Server and the API of
// the Gateway, so that the account gets its quota once, not once per path. A Gateway owns one and
// gives it to its Server; a Server built alone (NewServer) has its own. It caps this process only:
// instances sharing a Redis each grant the full quota.
type accountLimits struct {
	mu sync.Mutex
	m  map[string]*tokenBucket
}

func newAccountLimits() *accountLimits { return &accountLimits{m: make(map[string]*tokenBucket)} }

// bucket returns the account's bucket at rate, nil when rate is not positive (no cap). A bucket is
// made once per account and its rate follows the account's when that changes, so that the paths
// holding it keep sharing it.
func (l *accountLimits) bucket(systemID string, rate float64) *tokenBucket {
	if rate <= 0 {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[systemID]
	if b == nil {
		b = newTokenBucket(rate)
		l.m[systemID] = b
		return b
	}
	b.setRate(rate)
	return b
}

// tokenBucket limits an account's submissions per second, with a burst of one second's worth.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate float64) *tokenBucket {
	return &tokenBucket{rate: rate, tokens: rate, last: time.Now()}
}

// setRate changes the rate, keeping the tokens earned so far (capped at the new burst).
func (b *tokenBucket) setRate(rate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate != rate {
		b.refill(time.Now())
		b.rate = rate
		b.tokens = min(b.tokens, max(rate, 1))
	}
}

func (b *tokenBucket) refill(now time.Time) {
	b.tokens = min(max(b.rate, 1), b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
}

func (b *tokenBucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
