package batch

import (
	"context"
	"sync"
	"time"
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
	c          Completion
	ctx        context.Context
	prev, next *Op[T] // on the pending list
	linked     bool   // on the pending list: not completed yet (pending.mu)
	mine       bool   // the flusher took it off the list: it completes it (flusher only)
}

// asyncTick is how often the watcher looks for pending writes whose context has ended: how late
// at most a write in doubt is reported, against a store time-out of seconds.
const asyncTick = 20 * time.Millisecond

// pending is the list of asynchronous writes queued and not completed yet, oldest first, and
// the count of completions still to run, which Close waits for.
type pending[T any] struct {
	mu         sync.Mutex
	head, tail *Op[T]
	wake       chan struct{} // the list was empty and no longer is
	stop       chan struct{} // closed by Close once every completion has run
	stopped    chan struct{} // closed when the watcher has returned
	todo       sync.WaitGroup
}

func (p *pending[T]) init() {
	p.wake = make(chan struct{}, 1)
	p.stop = make(chan struct{})
	p.stopped = make(chan struct{})
}

func (p *pending[T]) link(o *Op[T]) {
	p.mu.Lock()
	o.a.linked = true
	o.a.prev, o.a.next = p.tail, nil
	if p.tail != nil {
		p.tail.a.next = o
	} else {
		p.head = o
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.tail = o
	p.mu.Unlock()
}

// remove takes o off the list; p.mu is held and o is on it.
func (p *pending[T]) remove(o *Op[T]) {
	if o.a.prev != nil {
		o.a.prev.a.next = o.a.next
	} else {
		p.head = o.a.next
	}
	if o.a.next != nil {
		o.a.next.a.prev = o.a.prev
	} else {
		p.tail = o.a.prev
	}
	o.a.prev, o.a.next, o.a.linked = nil, nil, false
}

// take takes o off the list and reports whether it was on it: whoever takes it completes it.
func (p *pending[T]) take(o *Op[T]) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !o.a.linked {
		return false
	}
	p.remove(o)
	return true
}

// expired takes the writes whose context has ended off the list and appends them to out; it
// also reports whether the list is empty now.
func (p *pending[T]) expired(out []*Op[T]) ([]*Op[T], bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		ctx context.Context
		err error
	)
	for o := p.head; o != nil; {
		next := o.a.next
		if o.a.ctx != ctx { // neighbours mostly share one context
			ctx, err = o.a.ctx, o.a.ctx.Err()
		}
		if err != nil {
			p.remove(o)
			out = append(out, o)
		}
		o = next
	}
	return out, p.head == nil
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
	op.a.c, op.a.ctx = c, ctx
	// On the list before it is on ch: a flusher may answer it as soon as it is there.
	b.pend.link(op)
	select {
	case b.ch <- op:
		b.mu.RUnlock()
		return
	case <-ctx.Done():
	}
	b.mu.RUnlock()
	// Never queued, so surely not written; unless the watcher saw the context end first and
	// completed it late, which is cautious, not wrong.
	if b.pend.take(op) {
		c.Complete(ctx.Err(), false)
		b.pend.todo.Done()
		b.put(op)
	}
}

// answerAsync completes ops, the asynchronous writes of a batch a flusher has written, those the
// watcher has not completed already, with their outcome.
func (b *Batcher[T]) answerAsync(ops []*Op[T]) {
	b.pend.mu.Lock()
	for _, o := range ops {
		o.a.mine = o.a.linked
		if o.a.linked {
			b.pend.remove(o)
		}
	}
	b.pend.mu.Unlock()
	for _, o := range ops {
		if !o.a.mine {
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
	p := &b.pend
	defer close(p.stopped)
	t := time.NewTimer(asyncTick)
	t.Stop()
	var expired []*Op[T]
	for {
		select {
		case <-p.wake:
		case <-p.stop:
			return
		}
		for empty := false; !empty; {
			t.Reset(asyncTick)
			select {
			case <-t.C:
			case <-p.stop:
				t.Stop()
				return
			}
			expired, empty = p.expired(expired[:0])
			for _, o := range expired {
				o.a.c.Complete(o.a.ctx.Err(), true)
				p.todo.Done()
			}
			clear(expired)
		}
	}
}
