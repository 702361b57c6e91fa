package batch

import (
	"context"
	"sync"
	"time"

	"github.com/smppgw/smppgw/store/internal/pending"
)

// The asynchronous writes (DoAsync): an op is queued like any other, and instead of its caller
// waiting on the op's done channel, the flusher that wrote its batch tells its Completion the
// outcome. Until then the op is on the pending list, where the watcher finds it should its
// context end first: it is completed then at once, late, and the flusher, which still owns the
// op, leaves it to the garbage collector once it is done with it (as Do does).

// Completion is told the outcome of a write handed to DoAsync, exactly once.
type Completion interface {
	// Complete is told err, the Op's Err once its batch was written, with late false; or ctx's
	// error with late false when the write was refused before it was queued (closeErr after
	// Close); or, when ctx ended while the write was queued or being written, ctx's error with
	// late true: the write may still happen. It runs on a flusher (or on the watcher, or on the
	// caller of DoAsync when late is false and the write was never queued), which it holds up:
	// it must not block.
	Complete(err error, late bool)
}

// asyncOp is what an Op of DoAsync carries besides V and Err.
type asyncOp[T any] struct {
	c    Completion
	link pending.Link[Op[T]] // on the pending list until completed
}

// asyncTick is how often the watcher looks for pending writes whose context has ended: how late
// at most a write in doubt is reported, against a store time-out of seconds.
const asyncTick = 20 * time.Millisecond

// asyncState is the batcher's list of asynchronous writes queued and not completed yet, and the
// count of completions still to run, which Close waits for.
type asyncState[T any] struct {
	list *pending.List[Op[T]]
	stop chan struct{} // closed by Close once every completion has run
	todo sync.WaitGroup
}

func (p *asyncState[T]) init() {
	p.list = pending.New(func(o *Op[T]) *pending.Link[Op[T]] { return &o.a.link })
	p.stop = make(chan struct{})
}

// DoAsync queues v and returns; c is told the outcome (see Completion) once the batch holding v
// was written, or at once should ctx end first. A write refused before it is queued (after
// Close, or ctx ended while the queue was full) is completed before DoAsync returns.
func (b *Batcher[T]) DoAsync(ctx context.Context, v T, c Completion) {
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		c.Complete(b.closeErr, false)
		return
	}
	b.pend.todo.Add(1) // under the lock: Close waits for it only after taking the lock
	op := b.pool.Get().(*Op[T])
	op.V, op.Err = v, nil
	op.a.c = c
	// On the list before it is on ch: a flusher may answer it as soon as it is there.
	b.pend.list.Add(op, ctx)
	select {
	case b.ch <- op:
		b.mu.RUnlock()
		return
	case <-ctx.Done():
	}
	b.mu.RUnlock()
	// Never queued, so surely not written; unless the watcher saw the context end first and
	// completed it late, which is cautious, not wrong.
	if b.pend.list.Take(op) {
		c.Complete(ctx.Err(), false)
		b.pend.todo.Done()
		b.put(op)
	}
}

// answerAsync completes ops, the asynchronous writes of a batch a flusher has written, those the
// watcher has not completed already, with their outcome.
func (b *Batcher[T]) answerAsync(ops []*Op[T]) {
	b.pend.list.Claim(ops)
	for _, o := range ops {
		if !o.a.link.Mine() {
			continue // the watcher completed it, and may still be at it: o is left to the GC
		}
		o.a.c.Complete(o.Err, false)
		b.pend.todo.Done()
		b.put(o)
	}
}

// put gives back an asynchronous op no one holds any more.
func (b *Batcher[T]) put(o *Op[T]) {
	var zero T
	o.V, o.Err = zero, nil
	o.a = asyncOp[T]{}
	b.pool.Put(o)
}

// watch completes late the pending writes whose context ends before a flusher answers them,
// until Close.
func (b *Batcher[T]) watch() {
	b.pend.list.Watch(b.pend.stop, asyncTick, func(o *Op[T], err error) {
		o.a.c.Complete(err, true)
		b.pend.todo.Done()
	})
}
