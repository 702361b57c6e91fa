// Package pending is the list of asynchronous writes a group commit has taken and not completed
// yet, and the watcher that finds those whose context ends first. The embedded store's commit
// queue and the Redis store's batcher share it: each keeps its own ops, its own completions and
// its own rule for who gives an op back; the list only says who completes an op, exactly once.
package pending

import (
	"context"
	"sync"
	"time"
)

// Link is what an op carries to be on a List: embed it (or hold it) in the op, and give the List
// the function that finds it.
type Link[T any] struct {
	ctx        context.Context
	prev, next *T
	linked     bool // on the list: not completed yet (List.mu)
	mine       bool // Claim took it off the list: the claimer completes it
}

// Mine reports whether the last Claim took the op off the list, so that its claimer completes it.
// Only the claimer reads it, after Claim.
func (l *Link[T]) Mine() bool { return l.mine }

// Ctx is the context the op was added with.
func (l *Link[T]) Ctx() context.Context { return l.ctx }

// Reset clears l for the op's next use.
func (l *Link[T]) Reset() { *l = Link[T]{} }

// List is the pending ops, oldest first.
type List[T any] struct {
	mu         sync.Mutex
	head, tail *T
	link       func(*T) *Link[T]
	wake       chan struct{} // the list was empty and no longer is
	stopped    chan struct{} // closed when Watch has returned
}

// New returns an empty list of the ops that link finds the Link of.
func New[T any](link func(*T) *Link[T]) *List[T] {
	return &List[T]{link: link, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// Add puts x, a write bounded by ctx, at the end of the list. Add it before the write is handed
// to whoever may complete it.
func (p *List[T]) Add(x *T, ctx context.Context) {
	l := p.link(x)
	p.mu.Lock()
	l.ctx, l.linked, l.prev, l.next = ctx, true, p.tail, nil
	if p.tail != nil {
		p.link(p.tail).next = x
	} else {
		p.head = x
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	p.tail = x
	p.mu.Unlock()
}

// remove takes x off the list; p.mu is held and x is on it.
func (p *List[T]) remove(x *T) {
	l := p.link(x)
	if l.prev != nil {
		p.link(l.prev).next = l.next
	} else {
		p.head = l.next
	}
	if l.next != nil {
		p.link(l.next).prev = l.prev
	} else {
		p.tail = l.prev
	}
	l.prev, l.next, l.linked = nil, nil, false
}

// Take takes x off the list and reports whether it was on it: whoever takes it completes it.
func (p *List[T]) Take(x *T) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.link(x).linked {
		return false
	}
	p.remove(x)
	return true
}

// Claim takes those of xs still on the list off it, under one lock, and marks them Mine: the
// caller completes those, and leaves the others to whoever took them first (the watcher).
func (p *List[T]) Claim(xs []*T) {
	p.mu.Lock()
	for _, x := range xs {
		l := p.link(x)
		l.mine = l.linked
		if l.linked {
			p.remove(x)
		}
	}
	p.mu.Unlock()
}

// expired takes the ops whose context has ended off the list and appends them to out; it also
// reports whether the list is empty now.
func (p *List[T]) expired(out []*T) ([]*T, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		ctx context.Context
		err error
	)
	for x := p.head; x != nil; {
		l := p.link(x)
		next := l.next
		if l.ctx != ctx { // neighbours mostly share one context
			ctx, err = l.ctx, l.ctx.Err()
		}
		if err != nil {
			p.remove(x)
			out = append(out, x)
		}
		x = next
	}
	return out, p.head == nil
}

// Watch looks every tick, while the list is not empty, for ops whose context has ended, takes
// them off the list and calls expire with each and its context's error: expire completes it. It
// returns when stop is closed; Stopped is closed then.
func (p *List[T]) Watch(stop <-chan struct{}, tick time.Duration, expire func(x *T, err error)) {
	defer close(p.stopped)
	t := time.NewTimer(tick)
	t.Stop()
	var expired []*T
	for {
		select {
		case <-p.wake:
		case <-stop:
			return
		}
		for empty := false; !empty; {
			t.Reset(tick)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			}
			expired, empty = p.expired(expired[:0])
			for _, x := range expired {
				expire(x, p.link(x).ctx.Err())
			}
			clear(expired)
		}
	}
}

// Stopped is closed when Watch has returned.
func (p *List[T]) Stopped() <-chan struct{} { return p.stopped }
