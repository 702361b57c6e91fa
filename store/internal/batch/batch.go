package batch

import (
	"context"
	"sync"
	"sync/atomic"
)

// Op is one queued write: V is what the caller asked for, Err what the flusher answers.
type Op[T any] struct {
	V    T
	Err  error
	done chan struct{}
	a    asyncOp[T] // a DoAsync's (async.go): no one waits on done
}

// Batcher runs group commits of writes of type T.
type Batcher[T any] struct {
	ch       chan *Op[T]
	flush    func([]*Op[T])
	max      int
	closeErr error
	pool     sync.Pool
	flushes  atomic.Uint64

	mu     sync.RWMutex // held shared by senders, exclusively by Close, so ch closes safely
	closed bool
	wg     sync.WaitGroup
	pend   asyncState[T] // the asynchronous writes not completed yet (async.go)
}

// New starts flushers goroutines, each writing batches of at most max ops with flush. flush
// must set Err on every op of a failed or partly failed batch and must not keep the slice.
// Several flushers let one batch be written while the next one forms (Redis round trips);
// one flusher suits a backend with a single writer (bbolt). closeErr answers Do after Close.
func New[T any](flushers, max int, closeErr error, flush func([]*Op[T])) *Batcher[T] {
	if flushers < 1 {
		flushers = 1
	}
	if max < 1 {
		max = 1
	}
	b := &Batcher[T]{ch: make(chan *Op[T], max*flushers), flush: flush, max: max, closeErr: closeErr}
	b.pool.New = func() any { return &Op[T]{done: make(chan struct{}, 1)} }
	b.pend.init()
	b.wg.Add(flushers)
	for range flushers {
		go b.run()
	}
	go b.watch()
	return b
}

// Do queues v and waits for the batch holding it to be written. When ctx ends first Do
// returns ctx's error, and the write may or may not happen: the caller must treat it as not
// acknowledged, exactly like a lost response.
func (b *Batcher[T]) Do(ctx context.Context, v T) error {
	op := b.pool.Get().(*Op[T])
	op.V, op.Err = v, nil
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		b.pool.Put(op)
		return b.closeErr
	}
	select {
	case b.ch <- op:
	case <-ctx.Done():
		b.mu.RUnlock()
		b.pool.Put(op)
		return ctx.Err()
	}
	b.mu.RUnlock()
	select {
	case <-op.done:
		err := op.Err
		var zero T
		op.V, op.Err = zero, nil
		b.pool.Put(op)
		return err
	case <-ctx.Done():
		// The flusher still owns op and will signal it; it is left to the garbage collector.
		return ctx.Err()
	}
}

func (b *Batcher[T]) run() {
	defer b.wg.Done()
	batch := make([]*Op[T], 0, b.max)
	var async []*Op[T]
	for op := range b.ch {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < b.max {
			select {
			case o, ok := <-b.ch:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		b.flush(batch)
		b.flushes.Add(1)
		// A waiter signalled may reuse its op at once: which ops are asynchronous is read first.
		for i, o := range batch {
			if o.a.c != nil {
				async = append(async, o)
			} else {
				o.done <- struct{}{}
			}
			batch[i] = nil
		}
		if len(async) > 0 {
			b.answerAsync(async)
			clear(async)
			async = async[:0]
		}
	}
}

// Flushes returns how many batches were written so far: the group commits, for benchmarks.
func (b *Batcher[T]) Flushes() uint64 { return b.flushes.Load() }

// Close stops taking writes, writes everything already queued, and returns when the flushers
// are done and every completion of DoAsync has run.
func (b *Batcher[T]) Close() {
	b.mu.Lock()
	first := !b.closed
	if first {
		b.closed = true
		close(b.ch)
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.pend.todo.Wait()
	if first {
		close(b.pend.stop)
	}
	<-b.pend.list.Stopped()
}
