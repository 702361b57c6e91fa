package gateway

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/internal/tokenbucket"
	"github.com/smppgw/smppgw/store"
)

// limiter is an account's throughput cap as the paths that take submissions see it: one token a
// message. A nil limiter is no cap.
type limiter interface {
	Allow(now time.Time) bool
}

// accountLimits is the throughput cap of each account (Account.Throughput): one bucket per account,
// shared by every way a submission comes in, the SMPP sessions of the Server and the API of the
// Gateway, so that the account gets its quota once, not once per path. A Gateway owns one and gives it
// to its Server; a Server built alone (NewServer) has its own.
//
// On a store with shared buckets (store.RateLimits: Redis), the cap holds over all the instances
// sharing it: each instance takes tokens from the store's bucket in chunks (sharedBucket) and spends
// them locally, so the accept path never waits on the store. Otherwise (the embedded store, one
// process) the bucket is local (tokenbucket).
type accountLimits struct {
	rl      store.RateLimits // nil: local buckets only
	live    func() int       // instances sharing the store (the board's last reading), 0 when unknown
	log     zerolog.Logger
	fetches atomic.Uint64 // calls to rl.TakeTokens: what the shared cap costs the store

	mu     sync.Mutex
	local  map[string]*tokenbucket.Bucket
	shared map[string]*sharedBucket
}

func newAccountLimits() *accountLimits {
	return &accountLimits{local: make(map[string]*tokenbucket.Bucket), shared: make(map[string]*sharedBucket), log: zerolog.Nop()}
}

// bucket returns the account's limiter at rate, nil when rate is not positive (no cap). A bucket is
// made once per account and its rate follows the account's when that changes, so that the paths
// holding it keep sharing it.
func (l *accountLimits) bucket(systemID string, rate float64) limiter {
	if !(rate > 0) {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rl != nil {
		b := l.shared[systemID]
		if b == nil {
			b = newSharedBucket(l, systemID, rate, now)
			l.shared[systemID] = b
			return b
		}
		b.setRate(rate, now)
		return b
	}
	b := l.local[systemID]
	if b == nil {
		b = tokenbucket.New(rate, now)
		l.local[systemID] = b
		return b
	}
	b.SetRate(rate, now)
	return b
}

// The shared bucket's timing. fetchTimeout bounds one store call; retryDown is how often a store that
// failed is tried again (in the meantime the fallback bucket caps); firstWait is how long the first
// message of an account on this instance waits for the first chunk, once.
const (
	fetchTimeout = 500 * time.Millisecond
	retryDown    = time.Second
	firstWait    = 200 * time.Millisecond
	maxFetchGap  = 100 * time.Millisecond
)

// chunkOf is how many tokens an instance takes from the store at a time: 100 ms worth of the rate, at
// least one. It bounds what an instance holds, and so what the sum over instances can exceed the cap
// by (see sharedBucket).
func chunkOf(rate float64) int { return max(1, int(math.Ceil(rate/10))) }

// sharedBucket is one account's cap over every instance sharing the store. The store keeps the bucket
// (rate a second, burst max(rate, 1), by the store's clock); this instance holds up to one chunk of
// tokens taken from it and spends them without asking the store. When what it holds falls to half a
// chunk it asks for more in the background (one call at a time), ahead of need; when the store's
// bucket is empty, it asks again once the rate could have earned the rest, and at least every 100 ms.
//
// The bound: every message accepted spent a token taken from the store's bucket, so over any interval
// of length T the instances together accept at most burst + rate*T + (what they held at its start),
// that is at most one chunk (rate/10) each: with N instances, burst + rate*T + N*chunk. Once the burst
// is spent, any one second accepts at most rate + N*chunk over all of them.
//
// When the store cannot be reached the instance falls back to a local bucket at rate/n, n the number of
// live instances on the board at its last reading (each instance is then likely cut off alike, and the
// shares sum to the cap), or the full rate when it never read the board (a lone instance). It goes back
// to the store as soon as a call succeeds again.
type sharedBucket struct {
	l   *accountLimits
	key string

	mu       sync.Mutex
	rate     float64
	held     int       // tokens taken from the store, not spent yet
	fetching bool      // a call to the store is under way
	next     time.Time // no call before this
	ready    chan struct{}
	readyOK  bool                // the first call has returned (ready closed)
	fallback *tokenbucket.Bucket // non-nil while the store is unreachable
}

func newSharedBucket(l *accountLimits, systemID string, rate float64, now time.Time) *sharedBucket {
	b := &sharedBucket{l: l, key: "acct:" + systemID, rate: rate, ready: make(chan struct{})}
	b.mu.Lock()
	b.maybeFetch(now)
	b.mu.Unlock()
	return b
}

func (b *sharedBucket) setRate(rate float64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate != rate {
		b.rate = rate
		if b.fallback != nil {
			b.fallback.SetRate(b.fallbackRate(), now)
		}
	}
}

// Allow spends one held token if there is one. It never waits on the store, except once: the very
// first message of the account on this instance waits (at most firstWait) for the first chunk.
func (b *sharedBucket) Allow(now time.Time) bool {
	b.mu.Lock()
	if !b.readyOK && b.held == 0 {
		ready := b.ready
		b.mu.Unlock()
		t := time.NewTimer(firstWait)
		select {
		case <-ready:
		case <-t.C:
		}
		t.Stop()
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	var ok bool
	if b.fallback != nil {
		ok = b.fallback.Allow(now)
	} else if b.held > 0 {
		b.held--
		ok = true
	}
	b.maybeFetch(now)
	return ok
}

// maybeFetch starts a call to the store when what is held is at or below half a chunk; b.mu is held.
func (b *sharedBucket) maybeFetch(now time.Time) {
	chunk := chunkOf(b.rate)
	if b.fetching || now.Before(b.next) || (b.fallback == nil && b.held*2 > chunk) {
		return
	}
	b.fetching = true
	go b.fetch(chunk-b.held, b.rate)
}

func (b *sharedBucket) fetch(want int, rate float64) {
	burst := max(rate, 1)
	idle := time.Minute + time.Duration(burst/rate*float64(time.Second))
	b.l.fetches.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	got, err := b.l.rl.TakeTokens(ctx, b.key, rate, burst, want, idle)
	cancel()
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fetching = false
	if !b.readyOK {
		b.readyOK = true
		close(b.ready)
	}
	if err != nil {
		b.next = now.Add(retryDown)
		b.held = 0 // what was taken counts against the store's bucket; not spending it errs on the safe side
		if b.fallback == nil {
			b.fallback = tokenbucket.New(b.fallbackRate(), now)
			b.l.log.Warn().Err(err).Str("bucket", b.key).Float64("rate", b.fallbackRate()).Int("instances", b.l.liveInstances()).
				Msg("shared throughput bucket unreachable: capping locally at the account's rate divided by the instances last seen on the board")
		}
		return
	}
	if b.fallback != nil {
		b.fallback = nil
		b.l.log.Info().Str("bucket", b.key).Msg("shared throughput bucket reachable again")
	}
	b.held += got
	if got < want {
		// The store's bucket is dry: ask again once the rate could have earned the rest.
		gap := time.Duration(float64(want-got) / b.rate * float64(time.Second))
		b.next = now.Add(min(max(gap, 5*time.Millisecond), maxFetchGap))
	}
}

// fallbackRate is the local cap while the store is unreachable: the account's rate shared among the
// live instances last seen, or all of it when none were.
func (b *sharedBucket) fallbackRate() float64 { return b.rate / float64(max(1, b.l.liveInstances())) }

func (l *accountLimits) liveInstances() int {
	if l.live == nil {
		return 0
	}
	return l.live()
}
