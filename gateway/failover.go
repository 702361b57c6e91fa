package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/store"
)

// failover moves the parts queued for an upstream that has been down (unbound or paused) for longer
// than RouterConfig.FailoverAfter to the next bound, unpaused upstream of each part's route
// (routeTable.nextUp, wrapping round), with store.Reroute, which keeps the part's attempt count.
//
// "And back when it returns": routing sends new messages to the preferred upstream again as soon as
// it is bound, and what is still queued for it goes out on its own bind again; parts already moved
// stay where they went (they are being sent there), so nothing moves twice because an upstream
// flapped. A part no other upstream can take now stays in its queue, given back untouched, and that
// queue is looked at again only after another FailoverAfter.
//
// Down means no instance has the upstream bound: with Redis, one instance holds each bind
// (ownership.go) and the others learn that it is up from its published state, so they leave its queue
// alone.
type failover struct {
	st       store.Store
	ups      *upstreamSet
	routes   *routeTable
	after    time.Duration
	consumer string // prefix of the consumer names, one per upstream queue
	log      zerolog.Logger

	down    map[string]time.Time // upstream -> when it was first seen down, since it was last up
	nextTry map[string]time.Time // upstream -> when its queue is looked at again after nothing moved

	cancel context.CancelFunc
	done   sync.WaitGroup
}

// failoverBatch is how many parts one claim of a down upstream's queue takes; failoverMax bounds the
// parts one look at a queue holds at once (those that cannot move are given back at its end).
const (
	failoverBatch = 100
	failoverMax   = 10000
)

func newFailover(st store.Store, ups *upstreamSet, routes *routeTable, after time.Duration, instance string, log zerolog.Logger) *failover {
	return &failover{
		st: st, ups: ups, routes: routes, after: after, consumer: instance + "/failover/",
		log:  log.With().Str("component", "failover").Logger(),
		down: make(map[string]time.Time), nextTry: make(map[string]time.Time),
	}
}

// start runs the loop until stop; a negative FailoverAfter runs nothing.
func (f *failover) start(ctx context.Context) {
	if f.after < 0 {
		return
	}
	ctx, f.cancel = context.WithCancel(ctx)
	every := min(max(f.after/4, 20*time.Millisecond), time.Second)
	f.done.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				f.tick(ctx, now)
			}
		}
	})
}

// stop ends the loop and waits for it.
func (f *failover) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.done.Wait()
}

// tick notes which upstreams are down and moves the queues of those down long enough.
func (f *failover) tick(ctx context.Context, now time.Time) {
	seen := make(map[string]bool)
	for _, u := range f.ups.all() {
		name := u.cfg.Name
		seen[name] = true
		if _, up := f.ups.upstreamState(name); up { // bound here or on another instance
			delete(f.down, name)
			delete(f.nextTry, name)
			continue
		}
		since, ok := f.down[name]
		if !ok {
			f.down[name] = now
			continue
		}
		if now.Sub(since) < f.after || now.Before(f.nextTry[name]) {
			continue
		}
		moved, kept := f.drain(ctx, u)
		if moved > 0 || kept > 0 {
			f.log.Info().Str("upstream", name).Int("moved", moved).Int("kept", kept).Dur("down_for", now.Sub(since)).
				Msg("queued parts of a down upstream failed over")
		}
		if moved == 0 && kept > 0 {
			f.nextTry[name] = now.Add(f.after)
		}
	}
	for name := range f.down {
		if !seen[name] {
			delete(f.down, name)
			delete(f.nextTry, name)
		}
	}
}

// drain moves what u's queue holds: the parts its bind claimed ahead and has not sent, then the
// store's queue. It returns how many parts moved and how many stayed for want of another upstream.
func (f *failover) drain(ctx context.Context, u *upstreamRun) (moved, kept int) {
	name := u.cfg.Name
	var stay []store.Lease
	move := func(t *store.PartTask) {
		to := f.routes.nextUp(t.Account, t.Destination.Addr, name, true)
		if to == "" {
			stay = append(stay, t.Lease)
			return
		}
		sctx, cancel := context.WithTimeout(ctx, storeTimeout)
		defer cancel()
		switch err := f.st.Reroute(sctx, t.Lease, to); {
		case err == nil:
			moved++
			f.log.Debug().Str("message_id", t.MessageID).Int("part", t.Part).Str("from", name).Str("to", to).Msg("part failed over")
		case errors.Is(err, store.ErrNotFound):
			// Settled or claimed by someone else meanwhile: theirs now.
		default:
			// Still claimed by us: it returns to this queue after the visibility time-out.
			f.log.Warn().Err(err).Str("message_id", t.MessageID).Str("from", name).Str("to", to).Msg("part not failed over")
		}
	}
	for _, t := range u.queue.takeBuffered() {
		move(t)
	}
	for moved+len(stay) < failoverMax && ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, storeTimeout)
		tasks, err := f.st.ClaimParts(cctx, name, f.consumer+name, failoverBatch, 0)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				f.log.Warn().Err(err).Str("upstream", name).Msg("claiming a down upstream's parts failed")
			}
			break
		}
		if len(tasks) == 0 {
			break
		}
		for _, t := range tasks {
			move(t)
		}
	}
	// Given back untouched (no attempt counted): its own bind takes them once it is back.
	for _, l := range stay {
		postpone(f.st, f.log, l, 0)
	}
	return moved, len(stay)
}

// takeBuffered takes the parts q claimed ahead and has not handed to its client (they hold no slot),
// for failover; what its client has in flight is left to it.
func (q *storeQueue) takeBuffered() []*store.PartTask {
	q.mu.Lock()
	buf := q.buf[q.head:]
	q.buf, q.head = nil, 0
	q.mu.Unlock()
	out := make([]*store.PartTask, len(buf))
	for i, j := range buf {
		out[i] = j.Ref.(*store.PartTask)
	}
	return out
}
