package embedded

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/internal/pending"
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
//
// While a batch syncs, the stager gathers the next one until that sync ends (or the batch has
// gatherBatch writes), rather than staging the first write that comes alone: at a steady rate
// well below capacity writes come a few per sync, and the first one, staged at once, often took
// a commit (an fdatasync, two hand-offs and the answers) of its own. The price is the staging of
// that first write, now after the sync rather than during it. BenchmarkPacedAccept at 2,000
// writes/s: 0.82-0.94 commits a write down to 0.57-0.72 and 10-20% less CPU a write, for about
// 50 us more median latency (at 10,000 and 30,000 writes/s the box's load swamped the
// difference). A write that finds no sync under way is staged at once: a lone write waits for
// nothing. A timed delay (PostgreSQL's commit_delay) gathers more but was measured against this:
// 250 us cut 10 writers' closed-loop accepts by 40-70% (they wait on each other's commits, so
// nothing comes), and in an idle Go process a timer under 1 ms waits 1 ms (the runtime sleeps in
// epoll_wait, in milliseconds).
type commitQueue struct {
	s       *Store
	ch      chan *wop
	hand    chan *staged
	max     int
	pool    sync.Pool
	flushes atomic.Uint64
	synced  atomic.Uint64 // batches whose WAL record was made durable: the group commit's fdatasyncs
	// syncing counts the batches handed to the syncer and not yet answered (0 or 1 when the
	// stager looks); the syncer signals idle (buffered, one token) each time it is done with one.
	syncing atomic.Int32
	idle    chan struct{}
	// noGather turns gathering off: batches are staged with what is queued. For benchmarks.
	noGather atomic.Bool
	mu       sync.RWMutex // held shared by senders, exclusively by close, so ch closes safely
	closed   bool
	done     chan struct{}      // closed when the syncer has answered everything
	pend     *pending.List[wop] // the asynchronous writes not completed yet (async.go)
	// asyncOps is the syncer's: the asynchronous writes of the batch it answers.
	asyncOps []*wop
}

func (q *commitQueue) start(s *Store, maxBatch int) {
	q.s, q.max = s, max(maxBatch, 1)
	q.ch = make(chan *wop, q.max)
	q.hand = make(chan *staged)
	q.idle = make(chan struct{}, 1)
	q.done = make(chan struct{})
	q.pool.New = func() any { return &wop{done: make(chan struct{}, 1)} }
	q.pend = newPending()
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

// GroupCommits implements store.GroupCommitter: the batches whose WAL record was synced, one
// fdatasync each (a batch that changed nothing writes no record and is not counted).
func (s *Store) GroupCommits() uint64 { return s.wq.synced.Load() }

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
	<-q.pend.Stopped()
}

func (q *commitQueue) stager() {
	defer close(q.hand)
	for o := range q.ch {
		ops := append(make([]*wop, 0, min(q.max, len(q.ch)+1)), o)
		ops = q.drain(ops)
		if !q.noGather.Load() {
			ops = q.gather(ops)
		}
		ws := <-q.s.wsFree
		q.syncing.Add(1)
		q.hand <- q.s.stage(ops, ws)
	}
}

// gatherBatch is the batch that no longer waits for the sync under way to end: it shares its
// commit well enough, and staging it while the sync runs keeps the pipeline full under load.
const gatherBatch = 32

// drain adds to ops what is queued, up to a full batch, without waiting.
func (q *commitQueue) drain(ops []*wop) []*wop {
	for len(ops) < q.max {
		select {
		case o, ok := <-q.ch:
			if !ok {
				return ops
			}
			ops = append(ops, o)
		default:
			return ops
		}
	}
	return ops
}

// gather adds to ops the writes that come while the syncer is busy with the batch before, until
// it is done, the batch has gatherBatch writes (or is full), or the queue closes. The wait is
// bounded by that one sync: gather sets no timer.
func (q *commitQueue) gather(ops []*wop) []*wop {
	for len(ops) < min(gatherBatch, q.max) && q.syncing.Load() > 0 {
		select {
		case o, ok := <-q.ch:
			if !ok {
				return ops
			}
			ops = append(ops, o)
		case <-q.idle: // maybe a token of an earlier batch: the loop looks again
		}
	}
	return ops
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
		q.syncing.Add(-1)
		select {
		case q.idle <- struct{}{}:
		default:
		}
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
		if err = s.log.Sync(b.lsn); err == nil { // meanwhile the stager gathers or runs the next batch
			s.wq.synced.Add(1)
		}
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
