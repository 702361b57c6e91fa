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
// reached, do waits, which holds up the session reader that asked and so pushes back on its peer
// through TCP. Concurrency, rather than a few workers in turn, is what lets the writes share group
// commits: the store's batch is as large as the number of writes waiting on it, so the limit is sized
// to the inbound limits (Config.Workers), not to the CPUs. A task goes to a worker waiting for one if
// there is, else to a new worker; a worker idle for workerIdle exits. Once closed, work runs on the
// caller, so nothing reported late is dropped.
type pool struct {
	slots chan struct{} // a token per task running
	idle  chan task     // unbuffered: a send succeeds only when a worker is waiting
	quit  chan struct{} // closed by close: idle workers exit
	mu    sync.RWMutex
	wg    sync.WaitGroup
	done  bool

	started atomic.Uint64 // workers started since the pool was made, for tests
}

func newPool(limit int) *pool {
	return &pool{slots: make(chan struct{}, limit), idle: make(chan task), quit: make(chan struct{})}
}

// do runs f on a worker once fewer than limit tasks are running.
func (p *pool) do(f func()) { p.run(funcTask(f)) }

// run runs t on a worker once fewer than limit tasks are running.
func (p *pool) run(t task) {
	p.mu.RLock()
	if p.done {
		p.mu.RUnlock()
		t.run()
		return
	}
	p.slots <- struct{}{}
	select {
	case p.idle <- t:
		p.mu.RUnlock()
		return
	default:
	}
	p.wg.Add(1)
	p.mu.RUnlock()
	p.started.Add(1)
	go p.worker(t)
}

// worker runs t, then the tasks handed to it while it waits, until it has waited workerIdle for
// one. The timer is re-armed only when it fires, not per task: a task only moves the time it last
// worked.
func (p *pool) worker(t task) {
	defer p.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.run()
		<-p.slots
		last := time.Now()
		for t = nil; t == nil; {
			select {
			case t = <-p.idle:
			case <-p.quit:
				return
			case <-idle.C:
				since := time.Since(last)
				if since >= workerIdle {
					return
				}
				idle.Reset(workerIdle - since)
			}
		}
	}
}

// close waits for the work under way; later work runs on its caller.
func (p *pool) close() {
	p.mu.Lock()
	if !p.done {
		p.done = true
		close(p.quit)
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
	until  time.Time          // when it stops being handed out
}

// storeContext returns the context bounding one store call made on behalf of a PDU: it ends
// storeTimeout to storeTimeout+1s from now. One is made per second and shared, instead of a context
// and a timer per call.
func storeContext() context.Context {
	now := time.Now()
	if c := sharedStoreCtx.Load(); c != nil && now.Before(c.until) {
		return c.ctx
	}
	until := now.Add(time.Second)
	ctx, cancel := context.WithDeadline(context.Background(), until.Add(storeTimeout))
	// Two callers may both make one at the turn of a second; the one not kept ends at its deadline.
	sharedStoreCtx.Store(&storeCtx{ctx: ctx, cancel: cancel, until: until})
	return ctx
}
