package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/cputime"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// acceptResult records the completions of asynchronous accepts: each must come once.
type acceptResult struct {
	id    string
	calls atomic.Int32
	err   error
	done  chan struct{}
}

func newAcceptResult(id string) *acceptResult {
	return &acceptResult{id: id, done: make(chan struct{})}
}

func (r *acceptResult) AcceptDone(err error) {
	if r.calls.Add(1) != 1 {
		return // counted; the test fails on it
	}
	r.err = err
	close(r.done)
}

// wait waits for r's completion, at most d.
func (r *acceptResult) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("%s: no completion within %v", r.id, d)
		return nil
	}
}

// stallSyncer holds the syncer up in the after function of a write of its own until the returned
// release is called: the batches queued meanwhile wait. It returns once the syncer is held.
func stallSyncer(t *testing.T, s *Store) (release func()) {
	t.Helper()
	held, gate := make(chan struct{}), make(chan struct{})
	go func() {
		_ = s.write(context.Background(), func(*txn) error { return nil }, func() {
			close(held)
			<-gate
		})
	}()
	select {
	case <-held:
	case <-time.After(5 * time.Second):
		t.Fatal("the syncer never ran the stalling write")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release
}

// TestAsyncAcceptAnsweredOnceDurable: an asynchronous accept is completed only once its batch is
// committed: with the syncer held up, none of 50 queued accepts is completed; released, each is
// completed once, nil, and is there.
func TestAsyncAcceptAnsweredOnceDurable(t *testing.T) {
	s := openT(t, storetest.Options())
	release := stallSyncer(t, s)
	ctx := context.Background()
	var rs []*acceptResult
	for i := range 50 {
		r := newAcceptResult(fmt.Sprintf("a%02d", i))
		rs = append(rs, r)
		s.AcceptMessageAsync(ctx, storetest.NewMessage(r.id, "acct", "up", 1), r)
	}
	time.Sleep(200 * time.Millisecond)
	for _, r := range rs {
		if n := r.calls.Load(); n != 0 {
			t.Fatalf("%s completed %d times while its batch waited for the syncer", r.id, n)
		}
	}
	release()
	for _, r := range rs {
		if err := r.wait(t, 5*time.Second); err != nil {
			t.Errorf("%s: %v", r.id, err)
		}
		if _, err := s.GetMessage(ctx, r.id); err != nil {
			t.Errorf("%s completed nil, then GetMessage: %v", r.id, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	for _, r := range rs {
		if n := r.calls.Load(); n != 1 {
			t.Errorf("%s completed %d times, want 1", r.id, n)
		}
	}
}

// TestAsyncAcceptFailedCommitFails: accepts whose batch cannot be made durable are completed with
// ErrUnavailable, not nil. The store breaks while their batch waits for the syncer, so an answer
// given before the commit (at staging, or before finish) would be nil.
func TestAsyncAcceptFailedCommitFails(t *testing.T) {
	s := openT(t, storetest.Options())
	release := stallSyncer(t, s)
	ctx := context.Background()
	var rs []*acceptResult
	for i := range 20 {
		r := newAcceptResult(fmt.Sprintf("f%02d", i))
		rs = append(rs, r)
		s.AcceptMessageAsync(ctx, storetest.NewMessage(r.id, "acct", "up", 1), r)
	}
	time.Sleep(50 * time.Millisecond) // staged, most of them
	s.setBroken(errors.New("test: the disk is gone"))
	release()
	for _, r := range rs {
		if err := r.wait(t, 5*time.Second); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", r.id, err)
		}
	}
}

// TestAsyncRefusedBeforeQueued: an accept the store refuses before it is queued (invalid, or the
// store closed) is completed before AcceptMessageAsync returns, once, with the synchronous call's
// error.
func TestAsyncRefusedBeforeQueued(t *testing.T) {
	s := openT(t, storetest.Options())
	ctx := context.Background()
	r := newAcceptResult("")
	s.AcceptMessageAsync(ctx, &store.Message{Account: "acct", Upstream: "up"}, r)
	if n := r.calls.Load(); n != 1 || !errors.Is(r.err, store.ErrInvalid) {
		t.Errorf("invalid message: %d completions before the call returned, %v; want 1, ErrInvalid", n, r.err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r = newAcceptResult("c1")
	s.AcceptMessageAsync(ctx, storetest.NewMessage(r.id, "acct", "up", 1), r)
	if n := r.calls.Load(); n != 1 || !errors.Is(r.err, store.ErrClosed) {
		t.Errorf("closed store: %d completions before the call returned, %v; want 1, ErrClosed", n, r.err)
	}
}

// TestAsyncDeadlineWhileQueuedIsInDoubt: an accept whose context ends while its batch waits is
// completed ErrInDoubt (with the context's error) within a few watcher ticks, though the syncer is
// still held up, and only once: the write lands once the syncer goes on, as a synchronous caller in
// doubt would find it.
func TestAsyncDeadlineWhileQueuedIsInDoubt(t *testing.T) {
	s := openT(t, storetest.Options())
	release := stallSyncer(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	r := newAcceptResult("late")
	start := time.Now()
	s.AcceptMessageAsync(ctx, storetest.NewMessage(r.id, "acct", "up", 1), r)
	err := r.wait(t, 5*time.Second)
	if !errors.Is(err, store.ErrInDoubt) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("completed with %v, want ErrInDoubt and the deadline", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("in doubt reported after %v, with a deadline of 30ms", took)
	}
	release()
	bg := context.Background()
	waitFor(t, "the write in doubt landed", func() bool {
		_, err := s.GetMessage(bg, r.id)
		return err == nil
	})
	if n := r.calls.Load(); n != 1 {
		t.Errorf("completed %d times, want 1", n)
	}
}

// settleResult records the completion of an asynchronous settle.
type settleResult struct {
	calls    atomic.Int32
	m        *store.Message
	attached []store.Receipt
	err      error
	done     chan struct{}
}

func (r *settleResult) SettleDone(m *store.Message, attached []store.Receipt, err error) {
	if r.calls.Add(1) != 1 {
		return
	}
	r.m, r.attached, r.err = m, attached, err
	close(r.done)
}

// TestAsyncSettle: an asynchronous settle completes with what Settle returns (the message with its
// part ENROUTE, and the receipt that came first, attached) and acknowledges the entry; one whose
// context ends while the syncer is held up is completed in doubt and its entry is not lost: it is
// claimable again after its visibility time-out unless the write landed.
func TestAsyncSettle(t *testing.T) {
	opts := storetest.Options()
	s := openT(t, opts)
	ctx := context.Background()
	for _, id := range []string{"s1", "s2"} {
		if err := s.AcceptMessage(ctx, storetest.NewMessage(id, "acct", "up", 1)); err != nil {
			t.Fatal(err)
		}
	}
	if _, parked, err := s.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "U1", State: pdu.DELIVERED, Received: time.Now()}); err != nil || !parked {
		t.Fatalf("receipt before its mapping: parked %v, %v", parked, err)
	}
	tasks, err := s.ClaimParts(ctx, "up", "c", 10, 0)
	if err != nil || len(tasks) != 2 {
		t.Fatalf("claimed %d, %v; want 2", len(tasks), err)
	}
	r := &settleResult{done: make(chan struct{})}
	s.SettleAsync(ctx, tasks[0].Lease, store.PartUpdate{MessageID: tasks[0].MessageID, Part: 0, Upstream: "up", UpstreamID: "U1", Status: pdu.ENROUTE}, r)
	select {
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("settle not completed")
	}
	if r.err != nil || r.m == nil || r.m.ID != tasks[0].MessageID || len(r.attached) != 1 || r.attached[0].UpstreamID != "U1" {
		t.Fatalf("settle completed with %v, %+v, %d attached; want the message and the one receipt", r.err, r.m, len(r.attached))
	}
	m, err := s.GetMessage(ctx, tasks[0].MessageID)
	if err != nil || m.Parts[0].UpstreamID != "U1" || m.Parts[0].Status != pdu.DELIVERED {
		t.Errorf("settled message: %v %+v, want U1 DELIVERED", err, m)
	}

	release := stallSyncer(t, s)
	dctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	r2 := &settleResult{done: make(chan struct{})}
	s.SettleAsync(dctx, tasks[1].Lease, store.PartUpdate{MessageID: tasks[1].MessageID, Part: 0, Upstream: "up", UpstreamID: "U2", Status: pdu.ENROUTE}, r2)
	select {
	case <-r2.done:
	case <-time.After(5 * time.Second):
		t.Fatal("settle in doubt not completed")
	}
	if !errors.Is(r2.err, store.ErrInDoubt) || r2.m != nil {
		t.Errorf("settle past its deadline: %v, %+v; want ErrInDoubt and no message", r2.err, r2.m)
	}
	release()
	waitFor(t, "the settle in doubt landed", func() bool {
		m, err := s.GetMessage(ctx, tasks[1].MessageID)
		return err == nil && m.Parts[0].UpstreamID == "U2"
	})
	if n := r2.calls.Load(); n != 1 {
		t.Errorf("settle in doubt completed %d times, want 1", n)
	}
}

// TestAsyncCloseWhilePending: Close while asynchronous writes are queued and being made commits
// them, and returns once every one is completed, once; those completed nil are there after a
// reopen, those refused (ErrClosed, before they were queued) are not.
func TestAsyncCloseWhilePending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	rs := make([]*acceptResult, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				rs[i] = newAcceptResult(fmt.Sprintf("p%04d", i))
				s.AcceptMessageAsync(context.Background(), storetest.NewMessage(rs[i].id, "acct", "up", 1), rs[i])
			}
		})
	}
	time.Sleep(5 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s, err = Open(path, storetest.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ok, refused int
	for _, r := range rs {
		calls := r.calls.Load()
		if calls != 1 {
			t.Errorf("%s: completed %d times by Close's return (or its own call's), want 1", r.id, calls)
			continue
		}
		_, gerr := s.GetMessage(context.Background(), r.id)
		switch {
		case r.err == nil:
			ok++
			if gerr != nil {
				t.Errorf("%s: completed nil, after reopen: %v", r.id, gerr)
			}
		case errors.Is(r.err, store.ErrClosed):
			refused++
			if !errors.Is(gerr, store.ErrNotFound) {
				t.Errorf("%s: refused (%v), after reopen: %v, want not found", r.id, r.err, gerr)
			}
		default:
			t.Errorf("%s: %v, want nil or ErrClosed", r.id, r.err)
		}
	}
	t.Logf("%d committed, %d refused after Close", ok, refused)
	if ok == 0 {
		t.Error("no write was committed before Close: the test raced nothing")
	}
}

const asyncCrashChildEnv = "EMBEDDED_ASYNC_CRASH_CHILD"

// TestAsyncCrashKeepsAcknowledged is TestCrashKeepsAcknowledged with the asynchronous writes:
// a child accepting and settling with AcceptMessageAsync and SettleAsync, printing each write its
// completion reported done, is killed with SIGKILL; every message and settle it reported is there
// after a reopen.
func TestAsyncCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(asyncCrashChildEnv) != "" {
		asyncCrashChild(os.Getenv(asyncCrashChildEnv), os.Getenv("EMBEDDED_CRASH_ROUND"))
		return
	}
	crashRounds(t, "TestAsyncCrashKeepsAcknowledged", asyncCrashChildEnv, 3)
}

// crashSay prints "kind id" once a write's completion reports it done.
type crashSay struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (c *crashSay) say(kind, id string) {
	c.mu.Lock()
	fmt.Fprintln(c.w, kind, id)
	c.w.Flush()
	c.mu.Unlock()
}

type crashAccept struct {
	c    *crashSay
	id   string
	done chan error
}

func (a *crashAccept) AcceptDone(err error) {
	if err == nil {
		a.c.say("A", a.id)
	}
	a.done <- err
}

type crashSettle struct {
	c    *crashSay
	id   string
	done chan error
}

func (a *crashSettle) SettleDone(_ *store.Message, _ []store.Receipt, err error) {
	if err == nil {
		a.c.say("S", a.id)
	}
	a.done <- err
}

// asyncCrashChild is crashChild with the asynchronous writes: 16 accepters keeping 8 accepts in
// flight each, and 4 claimers settling what they claim without waiting between settles.
func asyncCrashChild(path, round string) {
	s, err := Open(path, storetest.Options())
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &crashSay{w: bufio.NewWriter(os.Stdout)}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			done := make(chan error, 8)
			inFlight := 0
			for i := range 60000 / 16 {
				if inFlight == 8 {
					if <-done != nil {
						return
					}
					inFlight--
				}
				id := fmt.Sprintf("r%s-%d-%d", round, g, i)
				s.AcceptMessageAsync(ctx, storetest.NewMessage(id, "acct", "up", 1), &crashAccept{c: c, id: id, done: done})
				inFlight++
			}
		})
	}
	for k := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				got, err := s.ClaimParts(ctx, "up", fmt.Sprint("c", k), 32, 50*time.Millisecond)
				if err != nil {
					return
				}
				done := make(chan error, len(got))
				for _, p := range got {
					u := store.PartUpdate{MessageID: p.MessageID, Part: p.Part, Upstream: "up", UpstreamID: "U" + p.MessageID, Status: pdu.ENROUTE}
					s.SettleAsync(ctx, p.Lease, u, &crashSettle{c: c, id: p.MessageID, done: done})
				}
				for range got {
					<-done
				}
			}
		})
	}
	wg.Wait()
	os.Exit(0) // not killed in time: the parent reports it
}

// semDone releases a slot of its semaphore when an asynchronous accept completes.
type semDone struct {
	sem    chan struct{}
	failed *atomic.Int64
}

func (d semDone) AcceptDone(err error) {
	if err != nil {
		d.failed.Add(1)
	}
	<-d.sem
}

// BenchmarkAcceptInFlight accepts b.N messages of one part with 256 in flight: waited for by 256
// goroutines (sync), or handed over from one goroutine with a completion each (async). cpu-us/op
// is the process's CPU time per accept.
func BenchmarkAcceptInFlight(b *testing.B) {
	const inFlight = 256
	for _, async := range []bool{false, true} {
		name := "sync"
		if async {
			name = "async"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "db"), storetest.Options())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			msgs := make([]*store.Message, b.N)
			for i := range msgs {
				msgs[i] = storetest.NewMessage(fmt.Sprintf("b%09d", i), "acct", "up", 1)
			}
			var failed atomic.Int64
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cputime.Process()
			if async {
				sem := make(chan struct{}, inFlight)
				done := semDone{sem: sem, failed: &failed}
				for _, m := range msgs {
					sem <- struct{}{}
					s.AcceptMessageAsync(ctx, m, done)
				}
				for range inFlight {
					sem <- struct{}{}
				}
			} else {
				var wg sync.WaitGroup
				for w := range inFlight {
					wg.Go(func() {
						for i := w; i < len(msgs); i += inFlight {
							if err := s.AcceptMessage(ctx, msgs[i]); err != nil {
								failed.Add(1)
							}
						}
					})
				}
				wg.Wait()
			}
			b.StopTimer()
			b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-us/op")
			if n := failed.Load(); n != 0 {
				b.Fatalf("%d accepts failed", n)
			}
		})
	}
}
