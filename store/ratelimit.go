package store

import (
	"context"
	"time"
)

// RateLimits is a token bucket per key kept in the store, shared by every instance that uses it, so
// that a cap (an account's throughput) holds over all of them together. Instances take tokens in
// chunks and spend them locally, so the store is asked about once a chunk, never once a message. A
// store that one process owns (the embedded file) need not implement it: that process's own bucket
// is the whole cap.
type RateLimits interface {
	// TakeTokens refills key's bucket by the time elapsed since it was last refilled, at rate tokens a
	// second up to burst (a bucket seen for the first time is full), then takes up to n whole tokens
	// and returns how many it took (0 when it is empty). The clock is the store's, the same for every
	// instance. A bucket left alone for idle is forgotten (it would be full again by then).
	TakeTokens(ctx context.Context, key string, rate, burst float64, n int, idle time.Duration) (int, error)
}
