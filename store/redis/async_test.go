package redis

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// completion records the outcome of an asynchronous accept or settle: each must come once.
type completion struct {
	calls atomic.Int32
	err   error
	m     *store.Message
	check func() // run first in the completion, on the store's goroutine
	done  chan struct{}
}

func newCompletion() *completion { return &completion{done: make(chan struct{})} }

func (c *completion) AcceptDone(err error) { c.SettleDone(nil, nil, err) }

func (c *completion) SettleDone(m *store.Message, _ []store.Receipt, err error) {
	if c.calls.Add(1) != 1 {
		return // counted; the test fails on it
	}
	if c.check != nil {
		c.check()
	}
	c.m, c.err = m, err
	close(c.done)
}

func (c *completion) completed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *completion) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(d):
		t.Fatalf("no completion within %v", d)
		return nil
	}
}

// stores runs f against a single node and a one-node Cluster, each with a store over a client
// of its own whose read time-out outlasts the tests' SIGSTOPs.
func stores(t *testing.T, cfg Config, f func(t *testing.T, srv *redistest.Server, s *Store)) {
	for _, cluster := range []bool{false, true} {
		t.Run("cluster="+strconv.FormatBool(cluster), func(t *testing.T) {
			var (
				srv *redistest.Server
				c   goredis.UniversalClient
			)
			if cluster {
				srv = redistest.StartCluster(t)
				c = goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{srv.Addr()}, MaxRetries: -1, MaxRedirects: -1, ReadTimeout: 5 * time.Second})
			} else {
				srv = redistest.Start(t, redistest.Options{AppendFsync: "always"})
				c = goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1, ReadTimeout: 5 * time.Second})
			}
			t.Cleanup(func() { c.Close() })
			cfg.Options = storetest.Options()
			s, err := New(context.Background(), c, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			f(t, srv, s)
		})
	}
}

func stop(t *testing.T, srv *redistest.Server) (cont func()) {
	t.Helper()
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	cont = func() {
		if stopped {
			stopped = false
			if err := srv.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(cont)
	return cont
}

// TestAsyncAcceptAnsweredOnceWritten: with the server stopped, none of 20 asynchronous accepts is
// completed; resumed, each is completed once, nil, and its message is in Redis when it is.
func TestAsyncAcceptAnsweredOnceWritten(t *testing.T) {
	stores(t, Config{}, func(t *testing.T, srv *redistest.Server, s *Store) {
		ctx := context.Background()
		var missing atomic.Int32
		cont := stop(t, srv)
		cs := make([]*completion, 20)
		for i := range cs {
			id := "w" + strconv.Itoa(i)
			c := newCompletion()
			c.check = func() {
				if n, err := s.c.Exists(ctx, s.kMsg(id)).Result(); n != 1 || err != nil {
					missing.Add(1)
				}
			}
			cs[i] = c
			s.AcceptMessageAsync(ctx, storetest.NewMessage(id, "acme", "up", 1+i%2), c)
		}
		time.Sleep(100 * time.Millisecond)
		for i, c := range cs {
			if c.completed() {
				t.Fatalf("accept %d completed while the server was stopped: %v", i, c.err)
			}
		}
		cont()
		for i, c := range cs {
			if err := c.wait(t, 5*time.Second); err != nil {
				t.Errorf("accept %d: %v", i, err)
			}
		}
		if n := missing.Load(); n != 0 {
			t.Errorf("%d accepts completed before their message was in Redis", n)
		}
		s.Close()
		for i, c := range cs {
			if n := c.calls.Load(); n != 1 {
				t.Errorf("accept %d completed %d times", i, n)
			}
		}
	})
}

// TestAsyncSettle: an asynchronous settle is completed with the message as Settle returns it,
// and its entry is acknowledged.
func TestAsyncSettle(t *testing.T) {
	stores(t, Config{}, func(t *testing.T, srv *redistest.Server, s *Store) {
		ctx := context.Background()
		if err := s.AcceptMessage(ctx, storetest.NewMessage("st", "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
		tk := claimOne(t, s)
		c := newCompletion()
		s.SettleAsync(ctx, tk.Lease, store.PartUpdate{MessageID: "st", Part: 0, Upstream: "up", UpstreamID: "U1", Status: pdu.ENROUTE}, c)
		if err := c.wait(t, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if c.m == nil || len(c.m.Parts) != 1 || c.m.Parts[0].UpstreamID != "U1" || c.m.Parts[0].Status != pdu.ENROUTE {
			t.Errorf("settle completed with %+v", c.m)
		}
		if n, err := s.c.XLen(ctx, s.streamKeys(store.Queue{Kind: store.SubmitQueue, Name: "up"})[s.shardOf("st")].(string)).Result(); err != nil || n != 0 {
			t.Errorf("stream holds %d entries after the settle (%v), want 0", n, err)
		}
	})
}

func claimOne(t *testing.T, s *Store) *store.PartTask {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		got, err := s.ClaimParts(context.Background(), "up", "c", 1, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			return got[0]
		}
	}
	t.Fatal("no part to claim")
	return nil
}

// TestAsyncFailedRoundFails: an accept refused by its script (the id is taken) is completed with
// ErrExists, and one whose round trip fails (the server is gone) with ErrUnavailable, not in doubt.
func TestAsyncFailedRoundFails(t *testing.T) {
	stores(t, Config{}, func(t *testing.T, srv *redistest.Server, s *Store) {
		ctx := context.Background()
		if err := s.AcceptMessage(ctx, storetest.NewMessage("dup", "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
		c := newCompletion()
		s.AcceptMessageAsync(ctx, storetest.NewMessage("dup", "acme", "up", 1), c)
		if err := c.wait(t, 5*time.Second); !errors.Is(err, store.ErrExists) {
			t.Errorf("accept of a taken id: %v, want ErrExists", err)
		}
		srv.Kill()
		c = newCompletion()
		s.AcceptMessageAsync(ctx, storetest.NewMessage("gone", "acme", "up", 1), c)
		if err := c.wait(t, 10*time.Second); !errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrInDoubt) {
			t.Errorf("accept on a dead server: %v, want ErrUnavailable and not ErrInDoubt", err)
		}
	})
}

// TestAsyncRefusedBeforeQueued: a write refused before it is queued (invalid, a lease not of this
// store, the store closed) is completed before the call returns.
func TestAsyncRefusedBeforeQueued(t *testing.T) {
	stores(t, Config{}, func(t *testing.T, srv *redistest.Server, s *Store) {
		ctx := context.Background()
		c := newCompletion()
		s.AcceptMessageAsync(ctx, storetest.NewMessage("", "acme", "up", 1), c)
		if !c.completed() || !errors.Is(c.err, store.ErrInvalid) {
			t.Errorf("accept without an id: completed %v, %v; want ErrInvalid at once", c.completed(), c.err)
		}
		c = newCompletion()
		s.SettleAsync(ctx, store.Lease{Queue: store.Queue{Kind: store.SubmitQueue, Name: "up"}, Entry: "nonsense"},
			store.PartUpdate{MessageID: "x", Upstream: "up", Status: pdu.ENROUTE}, c)
		if !c.completed() || c.err == nil {
			t.Errorf("settle of a bad lease: completed %v, %v; want an error at once", c.completed(), c.err)
		}
		s.Close()
		c = newCompletion()
		s.AcceptMessageAsync(ctx, storetest.NewMessage("late", "acme", "up", 1), c)
		if !c.completed() || !errors.Is(c.err, store.ErrClosed) {
			t.Errorf("accept after Close: completed %v, %v; want ErrClosed at once", c.completed(), c.err)
		}
	})
}

// TestAsyncDeadlineInDoubt: an accept and a settle sent to a stopped server whose context ends
// are completed in doubt at once, while the server is still stopped, and both land once it
// resumes. An accept still queued behind a held flusher when its context ends is refused, not
// in doubt, and never written.
func TestAsyncDeadlineInDoubt(t *testing.T) {
	stores(t, Config{Flushers: 1}, func(t *testing.T, srv *redistest.Server, s *Store) {
		bg := context.Background()
		if err := s.AcceptMessage(bg, storetest.NewMessage("sd", "acme", "up", 1)); err != nil {
			t.Fatal(err)
		}
		tk := claimOne(t, s)
		cont := stop(t, srv)
		ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
		defer cancel()
		ca, cs := newCompletion(), newCompletion()
		s.AcceptMessageAsync(ctx, storetest.NewMessage("doubt", "acme", "up", 2), ca)
		s.SettleAsync(ctx, tk.Lease, store.PartUpdate{MessageID: "sd", Part: 0, Upstream: "up", UpstreamID: "U2", Status: pdu.ENROUTE}, cs)
		for name, c := range map[string]*completion{"accept": ca, "settle": cs} {
			if err := c.wait(t, 2*time.Second); !errors.Is(err, store.ErrInDoubt) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s past its deadline on a stopped server: %v, want ErrInDoubt and DeadlineExceeded", name, err)
			}
		}
		cont()
		// Both land once the server resumes (on Cluster the settle a round trip after its id map).
		var m, sd *store.Message
		var err, errSD error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			m, err = s.GetMessage(bg, "doubt")
			sd, errSD = s.GetMessage(bg, "sd")
			if err == nil && errSD == nil && sd.Parts[0].UpstreamID == "U2" {
				break
			}
		}
		if m == nil || len(m.Parts) != 2 {
			t.Errorf("accept in doubt: %v, %v; want it written once the server resumed", m, err)
		}
		if sd == nil || sd.Parts[0].UpstreamID != "U2" {
			t.Errorf("settle in doubt: %+v, %v; want it written once the server resumed", sd, errSD)
		}

		// The flusher held in a write of its own: the accept behind it is never sent.
		held, gate := make(chan struct{}), make(chan struct{})
		go func() {
			_ = s.do(bg, func(goredis.Pipeliner) bool {
				select {
				case <-held:
					return false
				default:
				}
				close(held)
				<-gate
				return true
			})
		}()
		<-held
		ctx2, cancel2 := context.WithTimeout(bg, 50*time.Millisecond)
		defer cancel2()
		cn := newCompletion()
		s.AcceptMessageAsync(ctx2, storetest.NewMessage("never", "acme", "up", 1), cn)
		err = cn.wait(t, 2*time.Second)
		close(gate)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrInDoubt) {
			t.Errorf("accept past its deadline behind a held flusher: %v, want DeadlineExceeded and not ErrInDoubt", err)
		}
		s.Close() // every write done
		if n, err := s.c.Exists(bg, s.kMsg("never")).Result(); err != nil || n != 0 {
			t.Errorf("the accept refused before it was sent was written (%d, %v)", n, err)
		}
		if n := cn.calls.Load() + ca.calls.Load() + cs.calls.Load(); n != 3 {
			t.Errorf("%d completions of 3 writes", n)
		}
	})
}

// TestAsyncCloseWhilePending: Close returns only once the writes sent to a stopped server were
// answered and completed.
func TestAsyncCloseWhilePending(t *testing.T) {
	stores(t, Config{}, func(t *testing.T, srv *redistest.Server, s *Store) {
		ctx := context.Background()
		cont := stop(t, srv)
		cs := make([]*completion, 10)
		for i := range cs {
			cs[i] = newCompletion()
			s.AcceptMessageAsync(ctx, storetest.NewMessage("cl"+strconv.Itoa(i), "acme", "up", 1), cs[i])
		}
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
			t.Fatal("Close returned while writes were pending")
		case <-time.After(100 * time.Millisecond):
		}
		cont()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return")
		}
		for i, c := range cs {
			if !c.completed() || c.err != nil {
				t.Errorf("accept %d after Close: completed %v, %v", i, c.completed(), c.err)
			}
		}
	})
}

// TestGroupCommitsCounted: GroupCommits counts the group commit's round trips. Accepts one after
// the other take one each; eight at once share fewer.
func TestGroupCommitsCounted(t *testing.T) {
	stores(t, Config{}, func(t *testing.T, _ *redistest.Server, s *Store) {
		ctx := context.Background()
		before := s.GroupCommits()
		for i := range 5 {
			if err := s.AcceptMessage(ctx, storetest.NewMessage("gc"+strconv.Itoa(i), "acme", "up", 1)); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.GroupCommits() - before; got != 5 {
			t.Errorf("5 accepts one after the other: %d round trips, want 5", got)
		}
		before = s.GroupCommits()
		cs := make([]*completion, 8)
		for i := range cs {
			cs[i] = newCompletion()
			s.AcceptMessageAsync(ctx, storetest.NewMessage("gca"+strconv.Itoa(i), "acme", "up", 1), cs[i])
		}
		for i, c := range cs {
			if err := c.wait(t, 5*time.Second); err != nil {
				t.Fatalf("accept %d: %v", i, err)
			}
		}
		if got := s.GroupCommits() - before; got < 1 || got > 8 {
			t.Errorf("8 accepts at once: %d round trips, want 1 to 8", got)
		}
	})
}
