package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// result records a DoAsync's completions: each must come once.
type result struct {
	calls atomic.Int32
	err   error
	late  bool
	done  chan struct{}
}

func newResult() *result { return &result{done: make(chan struct{})} }

func (r *result) Complete(err error, late bool) {
	if r.calls.Add(1) != 1 {
		return // counted; the test fails on it
	}
	r.err, r.late = err, late
	close(r.done)
}

func (r *result) wait(t *testing.T, d time.Duration) (error, bool) {
	t.Helper()
	select {
	case <-r.done:
		return r.err, r.late
	case <-time.After(d):
		t.Fatalf("no completion within %v", d)
		return nil, false
	}
}

func (r *result) completed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// heldFlusher is a batcher of one flusher whose first batch waits for release; written counts
// the ops flushed, and odd values fail.
type heldFlusher struct {
	b         *Batcher[int]
	held      chan struct{}
	release   chan struct{}
	written   atomic.Int64
	seen      sync.Map // values flushed
	releaseFn func()
}

func newHeld(t *testing.T) *heldFlusher {
	h := &heldFlusher{held: make(chan struct{}), release: make(chan struct{})}
	var first atomic.Bool
	h.b = New(1, 64, errClosed, func(ops []*Op[int]) {
		if first.CompareAndSwap(false, true) {
			close(h.held)
			<-h.release
		}
		for _, o := range ops {
			h.seen.Store(o.V, true)
			if o.V%2 == 1 {
				o.Err = errors.New("odd")
				continue
			}
			h.written.Add(1)
		}
	})
	go func() { _ = h.b.Do(context.Background(), 0) }() // the batch that holds the flusher
	select {
	case <-h.held:
	case <-time.After(5 * time.Second):
		t.Fatal("the flusher never took the holding batch")
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(h.release) }); h.b.Close() })
	h.releaseFn = func() { once.Do(func() { close(h.release) }) }
	return h
}

// TestDoAsyncAnsweredAfterFlush: an asynchronous write is completed only once its batch was
// written, each with its own outcome (odd values fail), once.
func TestDoAsyncAnsweredAfterFlush(t *testing.T) {
	h := newHeld(t)
	rs := make([]*result, 50)
	for i := range rs {
		rs[i] = newResult()
		h.b.DoAsync(context.Background(), 2+i, rs[i])
	}
	time.Sleep(50 * time.Millisecond)
	for i, r := range rs {
		if r.completed() {
			t.Fatalf("op %d completed while its batch was not written", 2+i)
		}
	}
	h.releaseFn()
	for i, r := range rs {
		err, late := r.wait(t, 5*time.Second)
		if late || (i%2 == 1) != (err != nil) {
			t.Errorf("op %d: err %v late %v", 2+i, err, late)
		}
	}
	h.b.Close()
	for i, r := range rs {
		if n := r.calls.Load(); n != 1 {
			t.Errorf("op %d completed %d times", 2+i, n)
		}
	}
	if n := h.written.Load(); n != 1+25 {
		t.Errorf("%d ops written, want 26", n)
	}
}

// TestDoAsyncRefusedBeforeQueued: a write the batcher never queues is completed before DoAsync
// returns, not late: after Close with closeErr, and with ctx's error when its context ends while
// the queue is full.
func TestDoAsyncRefusedBeforeQueued(t *testing.T) {
	h := newHeld(t)
	// One flusher, max 64: the queue holds 64 ops; the 65th waits for room.
	for i := range 64 {
		h.b.DoAsync(context.Background(), 2*(i+1), newResult())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r := newResult()
	h.b.DoAsync(ctx, 1000, r)
	if !r.completed() {
		t.Fatal("a write whose context ended before it was queued was not completed by DoAsync")
	}
	if !errors.Is(r.err, context.DeadlineExceeded) || r.late {
		t.Errorf("refused while the queue was full: %v late %v, want DeadlineExceeded, not late", r.err, r.late)
	}
	h.releaseFn()
	h.b.Close()
	if _, ok := h.seen.Load(1000); ok {
		t.Error("a write refused before it was queued was written")
	}
	r = newResult()
	h.b.DoAsync(context.Background(), 2, r)
	if !r.completed() || !errors.Is(r.err, errClosed) || r.late {
		t.Errorf("DoAsync after Close: completed %v, %v late %v; want errClosed at once", r.completed(), r.err, r.late)
	}
}

// TestDoAsyncDeadlineWhileQueued: a write whose context ends while it is queued is completed
// late at once, while the flusher is held; the write is still done, and not completed again.
func TestDoAsyncDeadlineWhileQueued(t *testing.T) {
	h := newHeld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r := newResult()
	h.b.DoAsync(ctx, 4, r)
	err, late := r.wait(t, 2*time.Second)
	if !errors.Is(err, context.DeadlineExceeded) || !late {
		t.Errorf("deadline while queued: %v late %v, want DeadlineExceeded, late", err, late)
	}
	h.releaseFn()
	h.b.Close()
	if _, ok := h.seen.Load(4); !ok {
		t.Error("the write completed late was not written: it should be, as queued")
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("completed %d times", n)
	}
}

// TestDoAsyncCloseWaitsForCompletions: Close returns only once every queued asynchronous write
// was written and completed.
func TestDoAsyncCloseWaitsForCompletions(t *testing.T) {
	h := newHeld(t)
	rs := make([]*result, 20)
	for i := range rs {
		rs[i] = newResult()
		h.b.DoAsync(context.Background(), 2*(i+1), rs[i])
	}
	closed := make(chan struct{})
	go func() { h.b.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while writes were pending")
	case <-time.After(50 * time.Millisecond):
	}
	h.releaseFn()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	for i, r := range rs {
		if !r.completed() || r.err != nil {
			t.Errorf("op %d after Close: completed %v, err %v", i, r.completed(), r.err)
		}
	}
}

func BenchmarkDoAsync(b *testing.B) {
	bt := New(1, 1024, errClosed, func(ops []*Op[int]) {})
	defer bt.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var wg sync.WaitGroup
		c := wgCompletion{&wg}
		for pb.Next() {
			wg.Add(1)
			bt.DoAsync(context.Background(), 1, c)
		}
		wg.Wait()
	})
}

type wgCompletion struct{ wg *sync.WaitGroup }

func (c wgCompletion) Complete(error, bool) { c.wg.Done() }
