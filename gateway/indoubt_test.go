package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// doubtStore writes every accept and then reports it in doubt, as a Redis store does when the server
// ran the accept script and died (or stalled) before its reply. While away is set, the reads and
// writes the gateway makes afterwards fail with ErrUnavailable, as they would until the server is back.
type doubtStore struct {
	store.Store
	away    atomic.Bool
	doubted atomic.Int64
	mu      sync.Mutex
	ids     []string // the accepts written and reported in doubt
}

func (s *doubtStore) AcceptMessage(ctx context.Context, m *store.Message) error {
	if err := s.Store.AcceptMessage(ctx, m); err != nil {
		return err
	}
	s.doubted.Add(1)
	s.mu.Lock()
	s.ids = append(s.ids, m.ID)
	s.mu.Unlock()
	return fmt.Errorf("%w: accept %s: EOF", store.ErrInDoubt, m.ID)
}

func (s *doubtStore) GetMessage(ctx context.Context, id string) (*store.Message, error) {
	if s.away.Load() {
		return nil, store.ErrUnavailable
	}
	return s.Store.GetMessage(ctx, id)
}

func (s *doubtStore) CancelMessage(ctx context.Context, id, account string) (*store.Message, []int, error) {
	if s.away.Load() {
		return nil, nil, store.ErrUnavailable
	}
	return s.Store.CancelMessage(ctx, id, account)
}

func (s *doubtStore) ClaimParts(ctx context.Context, upstream, consumer string, max int, wait time.Duration) ([]*store.PartTask, error) {
	if s.away.Load() {
		return nil, store.ErrUnavailable
	}
	tasks, err := s.Store.ClaimParts(ctx, upstream, consumer, max, wait)
	if err == nil && s.away.Load() {
		// The store went away during the claim's wait: its reply never came.
		for _, t := range tasks {
			_ = s.Store.Postpone(ctx, t.Lease, 0)
		}
		return nil, store.ErrUnavailable
	}
	return tasks, err
}

// startDoubtGateway is startGateway with the in-doubt reading back shortened to resolveFor.
func startDoubtGateway(t *testing.T, st store.Store, up ClientConfig, resolveFor time.Duration) (*Gateway, string) {
	t.Helper()
	cfg := acmeVia(t, up)
	cfg.Server.Listeners = []ListenerConfig{{Address: "127.0.0.1:0"}}
	cfg.Server.FailureDelay = -1
	cfg.Upstreams[0].ReconnectMin, cfg.Upstreams[0].ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
	g, err := New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	g.inDoubt.resolveFor = resolveFor
	if err := g.Start(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("gateway shutdown: %v", err)
		}
	})
	return g, g.Server().Addrs()[0].String()
}

// startDoubtRig is startDoubtGateway sending to a simulator it starts, with acme bound to it as a
// transceiver.
func startDoubtRig(t *testing.T, st store.Store, resolveFor time.Duration) (*Gateway, *session.Session, *smscsim.Sim) {
	t.Helper()
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr := startDoubtGateway(t, st, simUpstream("sim", sim.Addr()), resolveFor)
	s, err := bindESMEWith(t, addr, session.BindTransceiver, "acme", "secret")
	if err != nil {
		t.Fatal(err)
	}
	return g, s, sim
}

// TestInDoubtAcceptWrittenIsAccepted: an accept reported in doubt that the store shows written when
// read back is answered ESME_ROK (and the API's Submit succeeds), and goes out once each.
// Run with the store's writes waited for and asynchronous (async_test.go).
func TestInDoubtAcceptWrittenIsAccepted(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(writesName(async), func(t *testing.T) {
			ds := &doubtStore{Store: newEmbedded(t)}
			var st store.Store = ds
			if async {
				st = &asyncDoubtStore{ds}
			}
			g, s, sim := startDoubtRig(t, st, time.Second)
			ctx := sessiontest.Ctx(t)
			resp, err := s.Send(ctx, submit("447700900001"))
			if err != nil {
				t.Fatalf("submit_sm in doubt, written: %v, want ESME_ROK", err)
			}
			id := resp.Body.(*pdu.SubmitSMResp).MessageID
			m, err := g.Submit(ctx, Submission{Account: "acme", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "447700900002"}, Text: "api"})
			if err != nil {
				t.Fatalf("API Submit in doubt, written: %v, want success", err)
			}
			sessiontest.Eventually(t, "both messages at the upstream", func() bool { return len(sim.Submits()) >= 2 })
			time.Sleep(200 * time.Millisecond) // a duplicate would follow at once
			if n := len(sim.Submits()); n != 2 || ds.doubted.Load() != 2 {
				t.Errorf("upstream got %d submit_sm for %d accepts in doubt, want 2", n, ds.doubted.Load())
			}
			for _, mid := range []string{id, m.ID} {
				if got, err := ds.Store.GetMessage(ctx, mid); err != nil || got.Parts[0].UpstreamID == "" {
					t.Errorf("message %s: %v, want it sent upstream", mid, err)
				}
			}
			if a, r := g.inDoubt.accepted.Load(), g.inDoubt.refused.Load(); a != 2 || r != 0 {
				t.Errorf("in doubt: %d accepted, %d refused; want 2, 0", a, r)
			}
		})
	}
}

// TestInDoubtAcceptRefusedNeverSent: an accept reported in doubt while the store stays away is refused
// (ESME_RSYSERR over SMPP, ErrUnavailable from the API's Submit, which the API answers 503), though
// the store did write it; once the store is back the message is cancelled and never reaches the
// upstream, while a message accepted afterwards does.
// Run with the store's writes waited for and asynchronous (async_test.go).
func TestInDoubtAcceptRefusedNeverSent(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(writesName(async), func(t *testing.T) {
			ds := &doubtStore{Store: newEmbedded(t)}
			var st store.Store = ds
			if async {
				st = &asyncDoubtStore{ds}
			}
			g, s, sim := startDoubtRig(t, st, 100*time.Millisecond)
			ctx := sessiontest.Ctx(t)
			ds.away.Store(true)
			_, err := s.Send(ctx, submit("447700900001"))
			var status pdu.CommandStatus
			if !errors.As(err, &status) || status != pdu.ESME_RSYSERR {
				t.Errorf("submit_sm in doubt, store away: %v, want ESME_RSYSERR", err)
			}
			_, err = g.Submit(ctx, Submission{Account: "acme", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "447700900002"}, Text: "api"})
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("API Submit in doubt, store away: %v, want ErrUnavailable", err)
			}
			if n := ds.doubted.Load(); n != 2 {
				t.Fatalf("%d accepts written and reported in doubt, want 2", n)
			}
			time.Sleep(200 * time.Millisecond)
			ds.away.Store(false)
			// A message accepted once the store is back goes out: the upstream's queue moves, and the refused
			// ones, queued before it, must not come with it.
			if err := ds.Store.AcceptMessage(ctx, &store.Message{ID: "after", Account: "acme", Upstream: "sim",
				Destination: store.Address{Addr: "447700900003"}, Parts: []store.Part{{ShortMessage: []byte("after")}}}); err != nil {
				t.Fatal(err)
			}
			sessiontest.Eventually(t, "the later message at the upstream", func() bool { return len(sim.Submits()) >= 1 })
			time.Sleep(300 * time.Millisecond)
			for _, sm := range sim.Submits() {
				if string(sm.ShortMessage) != "after" {
					t.Errorf("refused message %q reached the upstream", sm.ShortMessage)
				}
			}
			sessiontest.Eventually(t, "the refused messages settled", func() bool { return !g.inDoubt.busy() })
			ds.mu.Lock()
			ids := append([]string(nil), ds.ids...)
			ds.mu.Unlock()
			for _, id := range ids {
				m, err := ds.Store.GetMessage(ctx, id)
				if err != nil || m.Parts[0].Status != pdu.DELETED || m.Parts[0].UpstreamID != "" {
					t.Errorf("refused message %s: %v %+v, want its part DELETED, never sent", id, err, m)
				}
			}
			if r := g.inDoubt.refused.Load(); r != 2 {
				t.Errorf("in doubt: %d refused, want 2", r)
			}
		})
	}
}

// claimFirstStore writes an accept and reports it in doubt only after a claim has taken its part: the
// node ran the accept, answered a claim on another connection, and the accept's own reply never came
// (the node died, or stalled and woke while the gateway had given up on the reply). From then on the
// store is away, as doubtStore's.
type claimFirstStore struct {
	*doubtStore
	racing  atomic.Value  // the id being accepted
	claimed chan struct{} // closed when a claim returned a part of it
	once    sync.Once
}

func (s *claimFirstStore) AcceptMessage(ctx context.Context, m *store.Message) error {
	s.racing.Store(m.ID)
	if err := s.doubtStore.Store.AcceptMessage(ctx, m); err != nil {
		return err
	}
	select {
	case <-s.claimed:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("test: no claim took a part of %s", m.ID)
	}
	s.away.Store(true)
	s.doubted.Add(1)
	s.mu.Lock()
	s.ids = append(s.ids, m.ID)
	s.mu.Unlock()
	return fmt.Errorf("%w: accept %s: i/o timeout", store.ErrInDoubt, m.ID)
}

func (s *claimFirstStore) ClaimParts(ctx context.Context, upstream, consumer string, max int, wait time.Duration) ([]*store.PartTask, error) {
	tasks, err := s.doubtStore.ClaimParts(ctx, upstream, consumer, max, wait)
	for _, t := range tasks {
		if id, _ := s.racing.Load().(string); t.MessageID == id {
			s.once.Do(func() { close(s.claimed) })
		}
	}
	return tasks, err
}

// TestInDoubtClaimedBeforeAnswer: a claim that takes a part of a message whose accept has not been
// answered yet (and is then reported in doubt, and refused) does not send it: the claimer waits for
// the accept's outcome, and the refused message's part is settled DELETED once the store is back.
// Before the accept held its id from before the write, the part went out and the submission was
// then refused (issue 12's stall variant: 1 refused message at the upstream).
func TestInDoubtClaimedBeforeAnswer(t *testing.T) {
	st := &claimFirstStore{doubtStore: &doubtStore{Store: newEmbedded(t)}, claimed: make(chan struct{})}
	g, s, sim := startDoubtRig(t, st, 200*time.Millisecond)
	ctx := sessiontest.Ctx(t)
	_, err := s.Send(ctx, submit("447700900001"))
	var status pdu.CommandStatus
	if !errors.As(err, &status) || status != pdu.ESME_RSYSERR {
		t.Fatalf("submit_sm claimed before its accept was answered, then in doubt with the store away: %v, want ESME_RSYSERR", err)
	}
	time.Sleep(200 * time.Millisecond)
	st.away.Store(false)
	sessiontest.Eventually(t, "the refused message settled", func() bool { return !g.inDoubt.busy() })
	time.Sleep(300 * time.Millisecond) // a part given back after the claim would be claimed and sent by now
	if n := len(sim.Submits()); n != 0 {
		t.Errorf("the upstream got %d submit_sm of a refused message", n)
	}
	st.mu.Lock()
	ids := append([]string(nil), st.ids...)
	st.mu.Unlock()
	if len(ids) != 1 {
		t.Fatalf("%d accepts reported in doubt, want 1", len(ids))
	}
	m, err := st.Store.GetMessage(ctx, ids[0])
	if err != nil || m.Parts[0].Status != pdu.DELETED || m.Parts[0].UpstreamID != "" {
		t.Errorf("refused message %s: %v %+v, want its part DELETED, never sent", ids[0], err, m)
	}
	if w, r := g.inDoubt.waited.Load(), g.inDoubt.refused.Load(); w < 1 || r != 1 {
		t.Errorf("in doubt: a claimer waited %d times, %d refused; want at least 1 and 1", w, r)
	}
}

// lateStore writes every accept and then reports the caller's bare deadline, as the embedded
// store's AcceptMessage did before 563a929 when the deadline ended while its write was queued
// for a group commit that still landed afterwards.
type lateStore struct {
	store.Store
	late atomic.Int64
}

func (s *lateStore) AcceptMessage(ctx context.Context, m *store.Message) error {
	if err := s.Store.AcceptMessage(ctx, m); err != nil {
		return err
	}
	s.late.Add(1)
	return context.DeadlineExceeded
}

// TestAcceptDeadlineIsInDoubt: an accept that ends with the context's error is in doubt, not
// refused outright, since a write may land after its caller gave up. Written, it is read back and
// answered ESME_ROK, and goes out once. Before, it was refused ESME_RSYSERR and went out all the
// same: a refused message sent.
// Run with the store's writes waited for and asynchronous (async_test.go).
func TestAcceptDeadlineIsInDoubt(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(writesName(async), func(t *testing.T) {
			ds := &lateStore{Store: newEmbedded(t)}
			var st store.Store = ds
			if async {
				st = &asyncLateStore{ds}
			}
			g, s, sim := startDoubtRig(t, st, time.Second)
			ctx := sessiontest.Ctx(t)
			resp, err := s.Send(ctx, submit("447700900001"))
			if err != nil {
				t.Fatalf("submit_sm written though its accept ended with the deadline: %v, want ESME_ROK", err)
			}
			id := resp.Body.(*pdu.SubmitSMResp).MessageID
			sessiontest.Eventually(t, "the message at the upstream", func() bool { return len(sim.Submits()) >= 1 })
			time.Sleep(200 * time.Millisecond) // a duplicate would follow at once
			if n := len(sim.Submits()); n != 1 || ds.late.Load() != 1 {
				t.Errorf("upstream got %d submit_sm for %d accepts ended late, want 1", n, ds.late.Load())
			}
			if got, err := ds.Store.GetMessage(ctx, id); err != nil || got.Parts[0].UpstreamID == "" {
				t.Errorf("message %s: %v, want it sent upstream", id, err)
			}
			if a, r := g.inDoubt.accepted.Load(), g.inDoubt.refused.Load(); a != 1 || r != 0 {
				t.Errorf("in doubt: %d accepted, %d refused; want 1, 0", a, r)
			}
		})
	}
}

// writesName names a subtest run with the store's writes waited for (sync) or asynchronous.
func writesName(async bool) string {
	if async {
		return "async"
	}
	return "sync"
}
