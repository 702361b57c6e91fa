package embedded

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/internal/pending"
)

// The asynchronous writes (store.AsyncWrites): an accept or a settle is queued on the group commit
// like any write, and instead of its caller waiting on the op's done channel, the syncer runs its
// completion once the batch is durable (or failed). Until then the op is on the pending list, where
// the watcher finds it should its context end first: it is then completed in doubt at once, as a
// caller of the synchronous call would have been told, and the syncer, which still owns the op,
// gives it back once it is done with it.

var _ store.AsyncWrites = (*Store)(nil)

// AcceptMessageAsync implements store.AsyncWrites: AcceptMessage, answered to c.
func (s *Store) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	w, err := s.newAcceptOp(m)
	if err != nil {
		c.AcceptDone(err)
		return
	}
	o := s.wq.pool.Get().(*wop)
	o.V, o.a.acc = op{w: w}, c
	s.wq.submitAsync(ctx, s, o)
}

// SettleAsync implements store.AsyncWrites: Settle, answered to c.
func (s *Store) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	w, err := s.newSettleOp(l, u)
	if err != nil {
		c.SettleDone(nil, nil, err)
		return
	}
	o := s.wq.pool.Get().(*wop)
	o.V, o.a.set = op{w: w}, c
	s.wq.submitAsync(ctx, s, o)
}

// asyncWop is what a wop of an asynchronous write carries besides its op.
type asyncWop struct {
	acc  store.AcceptCompletion // the op is an *acceptOp
	set  store.SettleCompletion // the op is a *settleOp
	link pending.Link[wop]      // on the pending list until completed
	// refs counts the two holders, the group commit and the completion: the last to let go
	// gives the op back. They are one and the same unless the watcher completed it in doubt.
	refs atomic.Int32
}

// asyncTick is how often the watcher looks for pending writes whose context has ended: how late
// at most a write in doubt is reported, against a store time-out of seconds.
const asyncTick = 20 * time.Millisecond

// newPending is the commit queue's list of asynchronous writes queued and not completed yet.
func newPending() *pending.List[wop] {
	return pending.New(func(o *wop) *pending.Link[wop] { return &o.a.link })
}

// submitAsync queues o, whose op and completion are set, for the group commit; the syncer or the
// watcher completes it. A write refused before it is queued is completed here.
func (q *commitQueue) submitAsync(ctx context.Context, s *Store, o *wop) {
	o.Err = nil
	o.a.refs.Store(2)
	if s.closed.Load() {
		q.completeAsync(o, store.ErrClosed)
		q.letGo(o, 2)
		return
	}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		q.completeAsync(o, store.ErrClosed)
		q.letGo(o, 2)
		return
	}
	// On the list before it is on ch: the syncer may answer it as soon as it is there.
	q.pend.Add(o, ctx)
	select {
	case q.ch <- o:
		q.mu.RUnlock()
		return
	case <-ctx.Done():
	}
	q.mu.RUnlock()
	// Never queued, so surely not written; unless the watcher saw the context end first and
	// completed it in doubt, which is cautious, not wrong.
	if q.pend.Take(o) {
		q.completeAsync(o, ctx.Err())
		q.letGo(o, 2)
		return
	}
	q.letGo(o, 1)
}

// answerAsync completes ops, the asynchronous writes of a batch the syncer is done with, those the
// watcher has not completed already, with their outcome.
func (q *commitQueue) answerAsync(ops []*wop) {
	q.pend.Claim(ops)
	for _, o := range ops {
		if o.a.link.Mine() {
			q.completeAsync(o, o.Err)
			q.letGo(o, 2)
		} else {
			q.letGo(o, 1)
		}
	}
}

// completeAsync tells o's completion the outcome err.
func (q *commitQueue) completeAsync(o *wop, err error) {
	switch w := o.V.w.(type) {
	case *acceptOp:
		o.a.acc.AcceptDone(err)
	case *settleOp:
		m, attached := w.result(err)
		o.a.set.SettleDone(m, attached, err)
	}
}

// letGo drops n of o's holders; the last gives o and its op back.
func (q *commitQueue) letGo(o *wop, n int32) {
	if o.a.refs.Add(-n) != 0 {
		return
	}
	switch w := o.V.w.(type) {
	case *acceptOp:
		w.release()
	case *settleOp:
		w.release()
	}
	o.V, o.Err = op{}, nil
	o.a.acc, o.a.set = nil, nil
	o.a.link.Reset()
	q.pool.Put(o)
}

// watch completes in doubt the pending writes whose context ends before the syncer answers
// them, until the syncer has answered everything (close).
func (q *commitQueue) watch() {
	q.pend.Watch(q.done, asyncTick, func(o *wop, err error) {
		// As the synchronous caller would have been told: the write may still land.
		q.completeAsync(o, fmt.Errorf("%w: %w", store.ErrInDoubt, err))
		q.letGo(o, 1)
	})
}
