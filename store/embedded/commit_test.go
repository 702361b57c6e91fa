package embedded

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/cputime"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestGatherBounded: while a sync is under way the stager gathers the writes that come, and
// stops when the syncer is done, when the batch has gatherBatch writes, or when the queue closes;
// with no sync under way it does not wait.
func TestGatherBounded(t *testing.T) {
	q := &commitQueue{max: 1024, ch: make(chan *wop, 1024), idle: make(chan struct{}, 1)}
	first := &wop{}
	done := make(chan []*wop, 1)
	within := func(what string) []*wop {
		t.Helper()
		select {
		case ops := <-done:
			return ops
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: gather still waiting after 10s", what)
			return nil
		}
	}

	// No sync under way: back at once with the first write alone.
	if ops := q.gather([]*wop{first}); len(ops) != 1 || ops[0] != first {
		t.Fatalf("no sync under way: %d ops, want the first alone", len(ops))
	}

	// A sync under way: writes that come join; the syncer's signal ends the wait.
	q.syncing.Store(1)
	q.idle <- struct{}{} // a token left by an earlier batch must not end the wait
	go func() { done <- q.gather([]*wop{first}) }()
	for range 3 {
		q.ch <- &wop{}
	}
	for deadline := time.Now().Add(10 * time.Second); len(q.ch) > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	select {
	case ops := <-done:
		t.Fatalf("gather returned %d ops while the sync was under way", len(ops))
	case <-time.After(20 * time.Millisecond):
	}
	q.syncing.Store(0)
	q.idle <- struct{}{}
	if ops := within("syncer done"); len(ops) != 4 {
		t.Fatalf("syncer done: %d ops, want 4 (the first and 3 that came)", len(ops))
	}

	// A full gathered batch does not wait for the sync.
	q.syncing.Store(1)
	for range gatherBatch + 5 {
		q.ch <- &wop{}
	}
	go func() { done <- q.gather([]*wop{first}) }()
	if ops := within("a batch's worth queued"); len(ops) != gatherBatch {
		t.Fatalf("%d queued: %d ops, want %d", gatherBatch+5, len(ops), gatherBatch)
	}
	if len(q.ch) != 6 {
		t.Errorf("%d writes left queued, want 6", len(q.ch))
	}

	// A closed queue ends the wait with what is left.
	close(q.ch)
	go func() { done <- q.gather([]*wop{first}) }()
	if ops := within("queue closed"); len(ops) != 7 {
		t.Fatalf("queue closed: %d ops, want 7", len(ops))
	}
}

// TestLoneWriteAfterLoad: a lone write after a steady load is answered, in a commit of its own.
func TestLoneWriteAfterLoad(t *testing.T) {
	// neverFreeze: no write of the store's own (an old memtable's freeze) joins the count.
	s, err := open(filepath.Join(t.TempDir(), "db"), storetest.Options(), neverFreeze)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("steady-%d-%d", w, i), "a", "up", 1)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	before := s.wq.Flushes()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.AcceptMessage(cctx, storetest.NewMessage("lone", "a", "up", 1)); err != nil {
		t.Fatalf("lone write: %v", err)
	}
	if n := s.wq.Flushes() - before; n != 1 {
		t.Errorf("lone write took %d commits, want 1", n)
	}
	if _, err := s.GetMessage(ctx, "lone"); err != nil {
		t.Errorf("lone write not readable: %v", err)
	}
}

// TestBatchesFormUnderLoad: 256 writers at once share commits, gathering on or off.
func TestBatchesFormUnderLoad(t *testing.T) {
	for _, gather := range []bool{false, true} {
		t.Run(fmt.Sprintf("gather=%v", gather), func(t *testing.T) {
			s := openT(t, store.Options{})
			s.wq.noGather.Store(!gather)
			ctx := context.Background()
			const writers, each = 256, 8
			before := s.wq.Flushes()
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("load-%d-%d", w, i), "a", "up", 1)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			n := s.wq.Flushes() - before
			if n == 0 || n > writers*each/8 {
				t.Errorf("%d writes took %d commits, want 1 to %d (batches of 8 or more on average)", writers*each, n, writers*each/8)
			}
		})
	}
}

// BenchmarkPacedAccept accepts messages on a schedule, rate a second from up to 256 callers at
// once (message n due n/rate seconds after the first), with the stager gathering or not:
// commits/op is fdatasyncs a message, cpu-us/op the process's CPU a message, p50-us and p99-us
// the latency of AcceptMessage. Run it with a fixed count
// (-benchtime 20000x): b.N/rate is its length.
func BenchmarkPacedAccept(b *testing.B) {
	for _, rate := range []int{2000, 10000, 30000} {
		for _, gather := range []bool{false, true} {
			b.Run(fmt.Sprintf("rate=%d/gather=%v", rate, gather), func(b *testing.B) {
				s := harness().Open(b, store.Options{}).(*harnessStore)
				s.wq.noGather.Store(!gather)
				pacedAccept(b, s.Store, rate)
			})
		}
	}
}

func pacedAccept(b *testing.B, s *Store, rate int) {
	ctx := context.Background()
	prefix := fmt.Sprintf("paced-%d-", time.Now().UnixNano())
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var failed atomic.Value
	b.ReportAllocs()
	flushes := s.wq.Flushes()
	cpu := cputime.PerOp(b)
	b.ResetTimer()
	first := time.Now()
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(b.N); i = next.Add(1) - 1 {
				due := first.Add(time.Duration(i) * time.Second / time.Duration(rate))
				time.Sleep(time.Until(due))
				start := time.Now() // not due: a sleep may end late, a millisecond in an idle process
				if err := s.AcceptMessage(ctx, storetest.NewMessage(fmt.Sprintf("%s%09d", prefix, i), "a", "up", 1)); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	cpu()
	if err := failed.Load(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(s.wq.Flushes()-flushes)/float64(b.N), "commits/op")
	slices.Sort(lat)
	b.ReportMetric(float64(lat[b.N/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[b.N*99/100].Microseconds()), "p99-us")
}
