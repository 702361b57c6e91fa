package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// acceptFunc and settleFunc are completions as functions, for the test stores below.
type acceptFunc func(error)

func (f acceptFunc) AcceptDone(err error) { f(err) }

type settleFunc func(*store.Message, []store.Receipt, error)

func (f settleFunc) SettleDone(m *store.Message, attached []store.Receipt, err error) {
	f(m, attached, err)
}

// asyncOver is the embedded store's asynchronous writes, for the test stores that embed it.
func asyncOver(st store.Store) store.AsyncWrites { return st.(store.AsyncWrites) }

// heldStore writes accepts asynchronously and holds their completions, once the write is durable,
// until release is closed.
type heldStore struct {
	store.Store
	release chan struct{}
	durable atomic.Int64 // accepts the store completed nil, held here
}

func (s *heldStore) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	asyncOver(s.Store).AcceptMessageAsync(ctx, m, acceptFunc(func(err error) {
		if err == nil {
			s.durable.Add(1)
		}
		go func() {
			<-s.release
			c.AcceptDone(err)
		}()
	}))
}

func (s *heldStore) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	asyncOver(s.Store).SettleAsync(ctx, l, u, c)
}

// TestAsyncAcceptAnsweredOnCompletion: with a store that writes asynchronously, a submit_sm is
// answered when its write's completion comes, not before, however long after the write was handed
// over; meanwhile no worker of the pool is taken by it.
func TestAsyncAcceptAnsweredOnCompletion(t *testing.T) {
	st := &heldStore{Store: newEmbedded(t), release: make(chan struct{})}
	g, s, sim := startDoubtRig(t, st, time.Second)
	if g.submit.async == nil {
		t.Fatal("the submitter does not use the store's asynchronous writes")
	}
	ctx := sessiontest.Ctx(t)
	type answer struct {
		resp session.Response
		err  error
	}
	answers := make(chan answer, 1)
	if err := s.SendAsync(ctx, submit("447700900001"), func(r session.Response, err error) { answers <- answer{r, err} }); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "the accept durable", func() bool { return st.durable.Load() == 1 })
	select {
	case a := <-answers:
		t.Fatalf("answered (%v, %v) before the write's completion", a.resp.Status, a.err)
	case <-time.After(200 * time.Millisecond):
	}
	g.work.mu.Lock()
	running := g.work.running
	g.work.mu.Unlock()
	if running != 0 {
		t.Errorf("%d tasks of the pool running while the write's completion is held, want 0", running)
	}
	close(st.release)
	var a answer
	select {
	case a = <-answers:
	case <-time.After(5 * time.Second):
		t.Fatal("not answered after the completion")
	}
	if a.err != nil || a.resp.Status != pdu.ESME_ROK {
		t.Fatalf("answer %v, %v; want ESME_ROK", a.resp.Status, a.err)
	}
	id := a.resp.Body.(*pdu.SubmitSMResp).MessageID
	if m, err := st.Store.GetMessage(ctx, id); err != nil || m.Account != "acme" {
		t.Errorf("answered message %s: %v %+v", id, err, m)
	}
	sessiontest.Eventually(t, "the message at the upstream", func() bool { return len(sim.Submits()) == 1 })
	if n := g.stats.accepted.Load(); n != 1 {
		t.Errorf("%d accepted counted, want 1", n)
	}
}

// failingAsyncStore completes every asynchronous accept with ErrUnavailable, writing nothing, from a
// goroutine of its own as a store's would.
type failingAsyncStore struct {
	store.Store
}

func (s *failingAsyncStore) AcceptMessageAsync(_ context.Context, m *store.Message, c store.AcceptCompletion) {
	go c.AcceptDone(fmt.Errorf("%w: test: disk full", store.ErrUnavailable))
}

func (s *failingAsyncStore) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	asyncOver(s.Store).SettleAsync(ctx, l, u, c)
}

// TestAsyncAcceptFailedIsRefused: an asynchronous accept completed with a plain ErrUnavailable
// (surely not written) is refused ESME_RSYSERR at once, not read back as one in doubt, and counted
// rejected.
func TestAsyncAcceptFailedIsRefused(t *testing.T) {
	st := &failingAsyncStore{Store: newEmbedded(t)}
	g, s, sim := startDoubtRig(t, st, time.Second)
	_, err := s.Send(sessiontest.Ctx(t), submit("447700900001"))
	var status pdu.CommandStatus
	if !errors.As(err, &status) || status != pdu.ESME_RSYSERR {
		t.Fatalf("submit_sm whose write failed: %v, want ESME_RSYSERR", err)
	}
	if r, a, d := g.stats.rejected.Load(), g.stats.accepted.Load(), g.inDoubt.refused.Load()+g.inDoubt.accepted.Load(); r != 1 || a != 0 || d != 0 {
		t.Errorf("%d rejected, %d accepted, %d resolved in doubt; want 1, 0, 0", r, a, d)
	}
	if g.inDoubt.busy() {
		t.Error("a failed accept left in the in-doubt list")
	}
	g.inDoubt.mu.Lock()
	sending := len(g.inDoubt.sending)
	g.inDoubt.mu.Unlock()
	if sending != 0 {
		t.Errorf("%d accepts still held as sending after their completion", sending)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(sim.Submits()); n != 0 {
		t.Errorf("the upstream got %d submit_sm of a refused message", n)
	}
}

// asyncDoubtStore is doubtStore over the asynchronous writes: each accept is written, and its
// completion told ErrInDoubt.
type asyncDoubtStore struct {
	*doubtStore
}

func (s *asyncDoubtStore) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	id := m.ID
	asyncOver(s.doubtStore.Store).AcceptMessageAsync(ctx, m, acceptFunc(func(err error) {
		if err == nil {
			s.doubted.Add(1)
			s.mu.Lock()
			s.ids = append(s.ids, id)
			s.mu.Unlock()
			err = fmt.Errorf("%w: accept %s: EOF", store.ErrInDoubt, id)
		}
		c.AcceptDone(err)
	}))
}

func (s *asyncDoubtStore) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	asyncOver(s.doubtStore.Store).SettleAsync(ctx, l, u, c)
}

// asyncLateStore is lateStore over the asynchronous writes: each accept is written, and its
// completion told the bare deadline.
type asyncLateStore struct {
	*lateStore
}

func (s *asyncLateStore) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	asyncOver(s.lateStore.Store).AcceptMessageAsync(ctx, m, acceptFunc(func(err error) {
		if err == nil {
			s.late.Add(1)
			err = context.DeadlineExceeded
		}
		c.AcceptDone(err)
	}))
}

func (s *asyncLateStore) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	asyncOver(s.lateStore.Store).SettleAsync(ctx, l, u, c)
}

// asyncSlowSettleStore is slowSettleStore over the asynchronous writes: each settle's completion
// comes delay after the write is durable, and is counted then.
type asyncSlowSettleStore struct {
	*slowSettleStore
}

func (s *asyncSlowSettleStore) AcceptMessageAsync(ctx context.Context, m *store.Message, c store.AcceptCompletion) {
	asyncOver(s.Store).AcceptMessageAsync(ctx, m, c)
}

func (s *asyncSlowSettleStore) SettleAsync(ctx context.Context, l store.Lease, u store.PartUpdate, c store.SettleCompletion) {
	asyncOver(s.Store).SettleAsync(ctx, l, u, settleFunc(func(m *store.Message, attached []store.Receipt, err error) {
		go func() {
			time.Sleep(s.delay)
			if err == nil && l.Queue.Kind == store.SubmitQueue {
				s.acked.Add(1)
			}
			c.SettleDone(m, attached, err)
		}()
	}))
}

// TestAsyncOfDecorators: the message path writes asynchronously only when the store behind the
// decorators has the asynchronous writes.
func TestAsyncOfDecorators(t *testing.T) {
	emb := newEmbedded(t)
	var unwrapNil unwrapStore
	for _, c := range []struct {
		name string
		st   store.Store
		want bool
	}{
		{"embedded", emb, true},
		{"a decorator without them", &ackCounter{Store: emb}, false},
		{"an unwrapping decorator of the embedded store", &unwrapStore{asyncStore{emb}}, true},
		{"an unwrapping decorator of a store without them", &unwrapStore{asyncStore{&ackCounter{Store: emb}}}, false},
		{"an unwrapping decorator of nothing", &unwrapNil, false},
	} {
		if got := asyncOf(c.st) != nil; got != c.want {
			t.Errorf("%s: asynchronous %v, want %v", c.name, got, c.want)
		}
	}
}

// asyncStore claims the asynchronous writes whatever it embeds; unwrapStore says what it wraps.
type asyncStore struct{ store.Store }

func (asyncStore) AcceptMessageAsync(context.Context, *store.Message, store.AcceptCompletion) {}
func (asyncStore) SettleAsync(context.Context, store.Lease, store.PartUpdate, store.SettleCompletion) {
}

type unwrapStore struct{ asyncStore }

func (u *unwrapStore) Unwrap() store.Store { return u.asyncStore.Store }

// TestAsyncCloseWaitsForCompletions: closing the pool (the last step of Shutdown) waits for the
// completions of the asynchronous writes handed over, as it waits for its tasks: a submit_sm whose
// write is durable and its completion held keeps close from returning until it is answered.
func TestAsyncCloseWaitsForCompletions(t *testing.T) {
	st := &heldStore{Store: newEmbedded(t), release: make(chan struct{})}
	g, s, _ := startDoubtRig(t, st, time.Second)
	answered := make(chan error, 1)
	if err := s.SendAsync(sessiontest.Ctx(t), submit("447700900001"), func(_ session.Response, err error) { answered <- err }); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "the accept durable", func() bool { return st.durable.Load() == 1 })
	closed := make(chan struct{})
	go func() {
		g.work.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("the pool closed with a write's completion still to come")
	case <-time.After(200 * time.Millisecond):
	}
	close(st.release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the pool did not close once the completion came")
	}
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("answer: %v, want ESME_ROK", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the submit_sm was never answered")
	}
	// The message goes on upstream meanwhile, and its settle, run on its caller once the pool is
	// closed, is a write of its own: it too ends.
	sessiontest.Eventually(t, "no write outstanding", func() bool { return g.work.writes.Load() == 0 })
}
