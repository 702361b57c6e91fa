package batch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errClosed = errors.New("closed")

// TestGroupsAndAnswersEachCaller checks every caller gets its own result, and that writes
// queued while a flush runs are taken together.
func TestGroupsAndAnswersEachCaller(t *testing.T) {
	var flushes, biggest atomic.Int64
	release := make(chan struct{})
	b := New(1, 64, errClosed, func(ops []*Op[int]) {
		if flushes.Add(1) == 1 {
			<-release // hold the first batch so the others pile up
		}
		if n := int64(len(ops)); n > biggest.Load() {
			biggest.Store(n)
		}
		for _, o := range ops {
			if o.V%2 == 1 {
				o.Err = errors.New("odd")
			}
		}
	})
	defer b.Close()
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.Do(context.Background(), i)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (i%2 == 1) != (err != nil) {
			t.Errorf("op %d: err %v", i, err)
		}
	}
	if flushes.Load() >= 50 || biggest.Load() < 2 {
		t.Errorf("%d flushes, biggest batch %d: writes were not grouped", flushes.Load(), biggest.Load())
	}
}

func TestMaxBatch(t *testing.T) {
	var over atomic.Bool
	b := New(2, 3, errClosed, func(ops []*Op[int]) {
		if len(ops) > 3 {
			over.Store(true)
		}
	})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.Do(context.Background(), i) }()
	}
	wg.Wait()
	b.Close()
	if over.Load() {
		t.Errorf("a batch exceeded max")
	}
}

func TestCloseAndContext(t *testing.T) {
	block := make(chan struct{})
	b := New(1, 1, errClosed, func(ops []*Op[int]) { <-block })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Do(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Do past its deadline: %v", err)
	}
	close(block)
	b.Close()
	if err := b.Do(context.Background(), 2); !errors.Is(err, errClosed) {
		t.Errorf("Do after Close: %v, want errClosed", err)
	}
	b.Close() // twice is fine
}

func BenchmarkDo(b *testing.B) {
	bt := New(1, 1024, errClosed, func(ops []*Op[int]) {})
	defer bt.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = bt.Do(context.Background(), 1)
		}
	})
}
