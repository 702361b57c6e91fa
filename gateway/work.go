package gateway

import "sync"

// pool is the one way the message path runs work off a session's reader: every store write made on
// behalf of a PDU (accepting a submit_sm, answering query_sm, recording an upstream's receipt or MO,
// settling a part, settling a deliver_sm's answer) runs on a goroutine of its own, at most limit at
// once. The bound is what keeps memory and store load finite whatever the peers do; while it is
// reached, do waits, which holds up the session reader that asked and so pushes back on its peer
// through TCP. Concurrency, rather than a few workers in turn, is what lets the writes share group
// commits: the store's batch is as large as the number of writes waiting on it, so the limit is sized
// to the inbound limits (Config.Workers), not to the CPUs. Once closed, work runs on the caller, so
// nothing reported late is dropped.
type pool struct {
	slots chan struct{}
	mu    sync.RWMutex
	wg    sync.WaitGroup
	done  bool
}

func newPool(limit int) *pool { return &pool{slots: make(chan struct{}, limit)} }

// do runs f on a goroutine of its own once fewer than limit are running.
func (p *pool) do(f func()) {
	p.mu.RLock()
	if p.done {
		p.mu.RUnlock()
		f()
		return
	}
	p.slots <- struct{}{}
	p.wg.Add(1)
	p.mu.RUnlock()
	go func() {
		defer p.wg.Done()
		defer func() { <-p.slots }()
		f()
	}()
}

// close waits for the work under way; later work runs on its caller.
func (p *pool) close() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.wg.Wait()
}
