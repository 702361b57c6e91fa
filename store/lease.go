package store

import (
	"context"
	"time"
)

// Cluster is what several gateway instances sharing one store coordinate through: leases, so that
// one instance at a time holds a thing (an upstream's bind slot), and a board where each instance
// publishes its state for the others' admin views. A store that one process owns (the embedded
// file) need not implement it: its one instance holds every lease and is the whole cluster.
type Cluster interface {
	Leases
	Board
}

// Leases are named locks with an expiry, held by an owner token. A holder that stops renewing loses
// its lease after its time to live, and another owner may then take it. An owner that finds its lease
// gone (RenewLease false) must stop using what it guarded: it never renews a lease it lost.
type Leases interface {
	// AcquireLease takes key for owner for ttl when nobody holds it, or extends it when owner already
	// holds it. It reports whether owner holds key now.
	AcquireLease(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// RenewLease extends owner's lease on key by ttl from now; false when owner does not hold it
	// (it expired, or another owner took it), and then nothing is changed.
	RenewLease(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	// ReleaseLease gives key up when owner holds it; otherwise nothing happens.
	ReleaseLease(ctx context.Context, key, owner string) error
	// LeaseHolder returns the owner holding key, "" when nobody does.
	LeaseHolder(ctx context.Context, key string) (string, error)
}

// Board holds one entry per instance: an opaque state the instance republishes every so often, which
// expires when it stops.
type Board interface {
	// PublishInstance sets name's entry to state, to expire after ttl unless published again.
	PublishInstance(ctx context.Context, name string, state []byte, ttl time.Duration) error
	// Instances returns the entries not expired, by instance name.
	Instances(ctx context.Context) (map[string][]byte, error)
	// RemoveInstance deletes name's entry (a clean stop).
	RemoveInstance(ctx context.Context, name string) error
}

// Events carries notes from one instance to every instance sharing the store (itself included), as
// they happen: at most once, kept nowhere, so an instance that is not subscribed at the time (or cut
// off from the store for a moment) misses them. The gateway sends its receipts and MO through it to
// the other instances' API streams; what must not be lost goes through the store's queues instead.
type Events interface {
	// PublishEvents sends payload to every subscriber.
	PublishEvents(ctx context.Context, payload []byte) error
	// SubscribeEvents calls handle with each payload published from now on, in order, from one
	// goroutine, until stop is called (stop waits for handle to return). It returns once the
	// subscription is in place; a broken connection is re-established by itself, losing what was
	// published meanwhile.
	SubscribeEvents(ctx context.Context, handle func(payload []byte)) (stop func(), err error)
}
