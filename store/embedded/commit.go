package embedded

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/store"
)

// wop is one queued write: V is what the caller asked for, Err what the group commit answers.
type wop struct {
	V    op
	Err  error
	done chan struct{}
	a    asyncWop // an asynchronous write's (async.go): no one waits on done
}

func (o *wop) async() bool { return o.a.acc != nil || o.a.set != nil }

// staged is a batch whose record is written to the WAL, not yet synced.
type staged struct {
	ops []*wop
	ws  *memtable
	lsn uint64 // 0: nothing to write
	err error
}

// commitQueue is the store's group commit, a pipeline: writes queue on ch; the stager takes
// what is queued as one batch, runs its ops and writes its WAL record, and hands it to the
// syncer, which makes it durable, merges it into active and answers its writers. The hand-off
// is unbuffered, so batches are answered in the order they were queued, and the stager runs at
// most one batch ahead: its ops see the batch being synced as the pending layer.
type commitQueue struct {
	s       *Store
	ch      chan *wop
	hand    chan *staged
	max     int
	pool    sync.Pool
	flushes atomic.Uint64
	mu      sync.RWMutex // held shared by senders, exclusively by close, so ch closes safely
	closed  bool
	done    chan struct{} // closed when the syncer has answered everything
	pend    pending       // the asynchronous writes not completed yet (async.go)
	// asyncOps is the syncer's: the asynchronous writes of the batch it answers.
	asyncOps []*wop
}

func (q *commitQueue) start(s *Store, maxBatch int) {
	q.s, q.max = s, max(maxBatch, 1)
	q.ch = make(chan *wop, q.max)
	q.hand = make(chan *staged)
	q.done = make(chan struct{})
	q.pool.New = func() any { return &wop{done: make(chan struct{}, 1)} }
	q.pend.init()
	go q.stager()
	go q.syncer()
	go q.watch()
}

// do queues v and waits until its batch is durable. When ctx ends first do returns ctx's error
// and the write may or may not happen: the caller treats it as not acknowledged.
func (q *commitQueue) do(ctx context.Context, v op) error {
	_, err := q.submit(ctx, v)
	return err
}

// submit is do, and reports whether the group commit is done with v (it ran, or never will):
// not when ctx ended while v was queued.
func (q *commitQueue) submit(ctx context.Context, v op) (bool, error) {
	o := q.pool.Get().(*wop)
	o.V, o.Err = v, nil
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		q.pool.Put(o)
		return true, store.ErrClosed
	}
	select {
	case q.ch <- o:
	case <-ctx.Done():
		q.mu.RUnlock()
		q.pool.Put(o)
		return true, ctx.Err()
	}
	q.mu.RUnlock()
	select {
	case <-o.done:
		err := o.Err
		o.V, o.Err = op{}, nil
		q.pool.Put(o)
		return true, err
	case <-ctx.Done():
		// The syncer still owns o and will signal it; it is left to the garbage collector. The
		// op may still commit: the outcome is in doubt, not a refusal.
		return false, fmt.Errorf("%w: %w", store.ErrInDoubt, ctx.Err())
	}
}

// doW is submit for an op kept in a struct: when it reports the group commit done with w, the
// caller may use w again.
func (q *commitQueue) doW(ctx context.Context, s *Store, w writer) (bool, error) {
	if s.closed.Load() {
		return true, store.ErrClosed
	}
	return q.submit(ctx, op{w: w})
}

// Flushes returns how many batches were committed so far, for benchmarks.
func (q *commitQueue) Flushes() uint64 { return q.flushes.Load() }

// close stops taking writes, commits everything queued, and returns when all is answered, every
// asynchronous write's completion run.
func (q *commitQueue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	<-q.done
	<-q.pend.stopped
}

func (q *commitQueue) stager() {
	defer close(q.hand)
	for o := range q.ch {
		ops := append(make([]*wop, 0, min(q.max, len(q.ch)+1)), o)
	fill:
		for len(ops) < q.max {
			select {
			case o, ok := <-q.ch:
				if !ok {
					break fill
				}
				ops = append(ops, o)
			default:
				break fill
			}
		}
		ws := <-q.s.wsFree
		q.hand <- q.s.stage(ops, ws)
	}
}

func (q *commitQueue) syncer() {
	defer close(q.done)
	for b := range q.hand {
		q.s.finish(b)
		q.flushes.Add(1)
		// A waiter signalled may reuse its wop at once: which ops are asynchronous is read first.
		async := q.asyncOps[:0]
		for _, o := range b.ops {
			if o.async() {
				async = append(async, o)
				continue
			}
			o.done <- struct{}{}
		}
		if len(async) > 0 {
			q.answerAsync(async)
			clear(async)
		}
		q.asyncOps = async
		q.s.maybeFreeze()
	}
}

// stage runs a batch's ops against ws and writes its record to the WAL.
func (s *Store) stage(ops []*wop, ws *memtable) *staged {
	b := &staged{ops: ops, ws: ws}
	if b.err = s.brokenErr(); b.err != nil {
		return b
	}
	s.apply(ops, ws)
	if !ws.changed() {
		return b
	}
	s.enc = appendRecord(s.enc[:0], ws)
	if b.lsn, b.err = s.log.Write(s.enc); b.err == nil {
		s.mu.Lock()
		s.pending = ws
		s.mu.Unlock()
	}
	if cap(s.enc) > 1<<20 {
		s.enc = nil // one huge batch should not pin its buffer
	}
	return b
}

// finish makes a staged batch durable, merges it into active and runs its ops' after
// functions; the ops' errors say what failed.
func (s *Store) finish(b *staged) {
	err := b.err
	if err == nil && b.lsn != 0 {
		err = s.log.Sync(b.lsn) // meanwhile the stager runs the next batch's ops
	}
	if err == nil {
		err = s.brokenErr() // the batch before, which this one's ops saw, failed
	}
	s.mu.Lock()
	if err == nil && b.lsn != 0 {
		s.active.merge(b.ws, b.lsn, time.Now())
	}
	if s.pending == b.ws {
		s.pending = nil
	}
	s.mu.Unlock()
	b.ws.reset()
	s.wsFree <- b.ws
	if err != nil {
		s.setBroken(err)
		for _, o := range b.ops {
			if o.Err == nil {
				o.Err = unavailable(err)
			}
		}
		return
	}
	for _, o := range b.ops {
		switch {
		case o.Err != nil:
		case o.V.w != nil:
			o.V.w.done()
		case o.V.after != nil:
			o.V.after()
		}
	}
}

func (s *Store) brokenErr() error {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *Store) setBroken(err error) { s.broken.CompareAndSwap(nil, &err) }
