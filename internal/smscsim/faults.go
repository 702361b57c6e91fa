package smscsim

import (
	"sync"
	"time"
)

// LinkFaults are standing faults: they apply to every submission on every link until changed with
// SetLinkFaults, unlike a Fault, which applies to a number of submissions. The zero value is no fault.
type LinkFaults struct {
	// Delay holds each answer to a submission back this long (its receipt follows the answer).
	// 0 answers at once.
	Delay time.Duration `json:"delay"`
	// DropEvery drops a link (what is queued is written first, no unbind) once its Nth, 2Nth, ...
	// submission since the bind has been answered (or held). 0 never drops.
	DropEvery int `json:"drop_every"`
	// ThrottleAbove is a rate, in submissions per second over all links together, beyond which
	// submissions are answered ESME_RTHROTTLED: a token bucket holding up to max(1, rate) submissions,
	// full at first. 0 never throttles.
	ThrottleAbove float64 `json:"throttle_above"`
}

// delayQueue runs functions at their due times, in the order they were pushed, on one timer armed for
// the head: a link's delayed answers cost no goroutine each. A function pushed with an earlier due
// time than the one before it waits for that one, so answers keep their order when the delay shrinks.
type delayQueue struct {
	mu      sync.Mutex
	q       []delayed
	t       *time.Timer
	stopped bool
	running sync.WaitGroup // a run in progress, which stop waits for
}

type delayed struct {
	due time.Time
	f   func()
}

// push queues f to run at due; after stop it is dropped.
func (d *delayQueue) push(due time.Time, f func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	d.q = append(d.q, delayed{due, f})
	if len(d.q) == 1 {
		d.arm(time.Until(due))
	}
}

func (d *delayQueue) arm(after time.Duration) {
	if d.t == nil {
		d.t = time.AfterFunc(after, d.run)
		return
	}
	d.t.Reset(after)
}

// run is the timer's: it runs every function due now, then re-arms for the next.
func (d *delayQueue) run() {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.running.Add(1)
	defer d.running.Done()
	now := time.Now()
	n := 0
	for n < len(d.q) && !d.q[n].due.After(now) {
		n++
	}
	due := make([]func(), n)
	for i := range n {
		due[i] = d.q[i].f
	}
	d.q = append(d.q[:0], d.q[n:]...)
	if len(d.q) > 0 {
		d.arm(time.Until(d.q[0].due))
	}
	d.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// stop drops what is queued and waits for a run in progress; it must not be called from a queued function.
func (d *delayQueue) stop() {
	d.mu.Lock()
	d.stopped = true
	d.q = nil
	if d.t != nil {
		d.t.Stop()
	}
	d.mu.Unlock()
	d.running.Wait()
}
