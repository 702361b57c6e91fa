package redis

import (
	"context"
	"fmt"

	"github.com/smppgw/smppgw/store"
)

// The asynchronous writes (store.AsyncWrites): an accept or a settle is queued on the group
// commit like any write (batch.DoAsync), and instead of its caller waiting for the round trips,
// the flusher that ran them tells its completion the outcome, the one the synchronous call
// would have returned. Should the context end first, the batcher's watcher completes it at once:
// an accept whose script had not gone out is refused (and the flusher skips it), anything else
// is in doubt.

var _ store.AsyncWrites = (*Store)(nil)

// AcceptMessageAsync implements store.AsyncWrites: AcceptMessage, answered to c.
func (s *Store) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	o, err := s.newAccept(ctx, m)
	if err != nil {
		c.AcceptDone(err)
		return
	}
	if s.closed.Load() {
		c.AcceptDone(store.ErrClosed)
		return
	}
	o.done = c
	s.w.DoAsync(ctx, &o.op, o)
}

// Complete implements batch.Completion: the accept's outcome, as AcceptMessage returns it.
func (o *acceptOp) Complete(err error, late bool) {
	o.done.AcceptDone(o.outcome(err))
}

// SettleAsync implements store.AsyncWrites: Settle, answered to c.
func (s *Store) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	o, err := s.newSettle(ctx, l, u)
	if err != nil {
		c.SettleDone(nil, nil, err)
		return
	}
	if s.closed.Load() {
		c.SettleDone(nil, nil, store.ErrClosed)
		return
	}
	o.done = c
	s.w.DoAsync(ctx, &o.op, o)
}

// Complete implements batch.Completion: the settle's outcome, as Settle returns it, except that
// one whose context ended while it was queued or written is in doubt: its update and
// acknowledgement may still be written.
func (o *updateOp) Complete(err error, late bool) {
	if late {
		o.done.SettleDone(nil, nil, fmt.Errorf("%w: settle %s part %d: %w", store.ErrInDoubt, o.u.MessageID, o.u.Part, err))
		return
	}
	o.done.SettleDone(o.outcome(err))
}
