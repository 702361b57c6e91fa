package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// task is a unit of work for the pool. The message path's own jobs (an accept, a part's settle)
// implement it on the struct that already holds their data, so handing one over allocates nothing.
type task interface{ run() }

// funcTask runs a function as a task; a func is pointer-shaped, so the conversion does not allocate.
type funcTask func()

func (f funcTask) run() { f() }

// workerIdle is how long a pool worker waits for the next task before it exits: under load the
// workers stay and no goroutine is started per task; idle, none is left holding a stack.
const workerIdle = 2 * time.Second

// pool is the one way the message path runs work off a session's reader: every store write made on
// behalf of a PDU (accepting a submit_sm, answering query_sm, recording an upstream's receipt or MO,
// settling a part, settling a deliver_sm's answer) runs on a worker of the pool, at most limit at
// once. The bound is what keeps memory and store load finite whatever the peers do; while it is
// reached, run waits, which holds up the session reader that asked and so pushes back on its peer
// through TCP. Concurrency, rather than a few workers in turn, is what lets the writes share group
// commits: the store's batch is as large as the number of writes waiting on it, so the limit is sized
// to the inbound limits (Config.Workers), not to the CPUs. A task goes to the worker that went idle
// last if there is one, else to a new worker. Once closed, work runs on the caller, so nothing
// reported late is dropped.
//
// The two hot writes are the exception when the store writes asynchronously (store.AsyncWrites:
// the embedded and Redis stores): an accept whose id is known and the settle of a part accepted upstream are
// only queued for the group commit, on the session's reader (a full queue holds the reader up, the
// same push-back), and their completion, run by the store once the write is durable, answers or
// settles. No worker is taken and none waits; the pool counts them (writeStarted, writeDone) so that
// close waits for their completions as for its tasks.
//
// Handing a task over is a lock and a send on the worker's own channel, and a worker waits on that
// channel alone: no select, and no timer armed per wait. Workers idle for a whole period of the
// reaper (a timer that runs only while some worker is idle, every idleAfter) exit, so an idle worker
// lives idleAfter to twice that; the most recently idle are reused first, so under a steady load the
// same few stay warm and the rest age out.
type pool struct {
	limit     int
	idleAfter time.Duration

	mu      sync.Mutex
	space   sync.Cond // signalled when running drops below limit while a caller waits
	running int       // tasks running or handed to a worker
	waiting int       // callers of run waiting for space
	idle    []*worker // waiting for a task; the most recently idle last
	gen     uint64    // the reaper's rounds
	reaping bool      // the reaper's timer is armed
	done    bool
	wg      sync.WaitGroup

	started atomic.Uint64 // workers started since the pool was made, for tests

	// The store writes handed over asynchronously on the message path's behalf (writeStarted),
	// whose completion has not ended yet: they hold no worker, and close waits for them as for
	// the tasks.
	writes  atomic.Int64
	closing atomic.Bool
	drained sync.Cond // signalled, once closing, when writes drops to 0
}

// worker is one of the pool's goroutines; next carries its next task, nil to exit.
type worker struct {
	next chan task
	gen  uint64 // the reaper's round when it last went idle
}

func newPool(limit int) *pool {
	p := &pool{limit: limit, idleAfter: workerIdle}
	p.space.L = &p.mu
	p.drained.L = &p.mu
	return p
}

// do runs f on a worker once fewer than limit tasks are running.
func (p *pool) do(f func()) { p.run(funcTask(f)) }

// run runs t on a worker once fewer than limit tasks are running.
func (p *pool) run(t task) {
	p.mu.Lock()
	for p.running >= p.limit && !p.done {
		p.waiting++
		p.space.Wait()
		p.waiting--
	}
	if p.done {
		p.mu.Unlock()
		t.run()
		return
	}
	p.running++
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.next <- t
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	p.started.Add(1)
	go p.work(&worker{next: make(chan task, 1)}, t)
}

// work runs t, then the tasks handed to it while it waits, until the reaper or close ends it.
func (p *pool) work(w *worker, t task) {
	defer p.wg.Done()
	for t != nil {
		t.run()
		p.mu.Lock()
		p.running--
		if p.waiting > 0 {
			p.space.Signal()
		}
		if p.done {
			p.mu.Unlock()
			return
		}
		w.gen = p.gen
		p.idle = append(p.idle, w)
		if !p.reaping {
			p.reaping = true
			time.AfterFunc(p.idleAfter, p.reap)
		}
		p.mu.Unlock()
		t = <-w.next
	}
}

// reap ends the workers that have been idle since before its last round, and runs again after
// idleAfter while any worker is idle.
func (p *pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	n := 0
	for n < len(p.idle) && p.idle[n].gen+1 < p.gen {
		p.idle[n].next <- nil
		n++
	}
	k := copy(p.idle, p.idle[n:])
	clear(p.idle[k:])
	p.idle = p.idle[:k]
	p.reaping = k > 0 && !p.done
	if p.reaping {
		time.AfterFunc(p.idleAfter, p.reap)
	}
}

// writeStarted counts an asynchronous store write made for the message path; its completion calls
// writeDone once it has done all it does.
func (p *pool) writeStarted() { p.writes.Add(1) }

func (p *pool) writeDone() {
	if p.writes.Add(-1) == 0 && p.closing.Load() {
		p.mu.Lock()
		p.drained.Broadcast()
		p.mu.Unlock()
	}
}

// close waits for the work under way, and for the asynchronous writes' completions; later work
// runs on its caller.
func (p *pool) close() {
	p.closing.Store(true)
	defer func() {
		p.mu.Lock()
		for p.writes.Load() > 0 {
			p.drained.Wait()
		}
		p.mu.Unlock()
	}()
	p.mu.Lock()
	if !p.done {
		p.done = true
		for _, w := range p.idle {
			w.next <- nil
		}
		clear(p.idle)
		p.idle = p.idle[:0]
		p.space.Broadcast()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// sharedStoreCtx is the context of the store calls the message path makes per PDU, shared by all
// of those that start within one second (storeContext).
var sharedStoreCtx atomic.Pointer[storeCtx]

type storeCtx struct {
	ctx    context.Context
	cancel context.CancelFunc // never called: the deadline ends it
	until  time.Duration      // when it stops being handed out, since storeEpoch
}

// storeEpoch is the base of storeContext's clock: time.Since it reads the monotonic clock alone,
// half the cost of time.Now, on every store call of the message path.
var storeEpoch = time.Now()

// storeContext returns the context bounding one store call made on behalf of a PDU: it ends
// storeTimeout to storeTimeout+1s from now. One is made per second and shared, instead of a context
// and a timer per call.
func storeContext() context.Context {
	now := time.Since(storeEpoch)
	if c := sharedStoreCtx.Load(); c != nil && now < c.until {
		return c.ctx
	}
	until := now + time.Second
	ctx, cancel := context.WithDeadline(context.Background(), storeEpoch.Add(until+storeTimeout))
	// Two callers may both make one at the turn of a second; the one not kept ends at its deadline.
	sharedStoreCtx.Store(&storeCtx{ctx: ctx, cancel: cancel, until: until})
	return ctx
}
