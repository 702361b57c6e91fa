package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// inDoubt keeps the promise "nothing refused is ever sent" for accepts whose outcome the store could
// not tell (store.ErrInDoubt: the write went out, no reply came back, so it was applied whole or not
// at all; or a bare context error, which both stores now wrap in ErrInDoubt when their write may
// still land, and which is still read back here in case a store does not).
//
// Every accept is written with its id held (accept): from before the write goes out until its outcome
// is known, a claimer of this instance that takes a part of it waits for that outcome (drop) instead
// of sending it. Without the hold, a node that ran the accept and lost or delayed its reply (it died,
// or stalled and woke) could serve a claim of the part before the gateway had heard that the accept
// was in doubt: the part went out, and the submission was then refused. Other instances cannot claim
// the part before the write exists, and this one cannot claim it unheld.
//
// An accept in doubt is then read back for a short while (resolveFor, within the submitter's store
// time-out, so well inside an ESME's response time-out): found, it is answered ESME_ROK as any accept;
// not found once the store answers, refused. Still unknown, it is refused (ESME_RSYSERR, 503 on the
// API) and its id kept here, and a background loop cancels it (store.Edits.CancelMessage: its queued
// parts are removed and marked DELETED) as soon as the store answers, so a message that was written
// after all never goes out. Until that is done, this instance's claimers settle any claimed part of it
// as DELETED instead of sending it (drop).
//
// What is not covered: another instance's claimer may take a part of such a message in the moment
// between the store coming back and the loop's cancel (at most one interval plus a round trip after
// the store answers; claims of that shard fail too while its node is down). An entry also stays until
// the message is found final or has stayed unfound for lateWrite, since a write that timed out on a
// live but slow server (or one stopped longer than that) may still be applied after a read found
// nothing.
type inDoubt struct {
	st         store.Store
	log        zerolog.Logger
	resolveFor time.Duration // how long an accept is read back before it is answered
	interval   time.Duration // how often the loop retries; how long a claimer waits for an accept's outcome
	lateWrite  time.Duration // how long "not found" stays inconclusive

	mu      sync.Mutex
	sending map[string]struct{} // accepts on their way to the store, outcome not known yet
	ids     map[string]doubt    // accepts in doubt: being read back, or refused
	waiting []*holdWaiter       // claimers waiting for an id to leave sending
	waiters sync.Pool           // of *holdWaiter
	wake    chan struct{}

	// Outcomes, for tests and logs.
	accepted  atomic.Int64 // found on reading back: answered ESME_ROK
	refused   atomic.Int64 // refused while in doubt
	cancelled atomic.Int64 // refused, then found written and cancelled before any part went out
	leaked    atomic.Int64 // refused, then found written with a part already sent (another instance)
	dropped   atomic.Int64 // parts this instance claimed and settled DELETED instead of sending
	waited    atomic.Int64 // claimed parts whose accept's outcome a claimer waited for
}

// doubt is one accept whose outcome is not known yet: being read back (resolving), or refused.
type doubt struct {
	account   string
	at        time.Time
	resolving bool
}

// maxInDoubt bounds the list; beyond it a refused accept is only logged (the store would have to stay
// down through that many in-doubt writes).
const maxInDoubt = 1 << 20

func newInDoubt(st store.Store, log zerolog.Logger) *inDoubt {
	return &inDoubt{st: st, log: log.With().Str("component", "indoubt").Logger(),
		resolveFor: 2 * time.Second, interval: 100 * time.Millisecond, lateWrite: 30 * time.Second,
		sending: map[string]struct{}{}, ids: map[string]doubt{}, wake: make(chan struct{}, 1)}
}

// holdWaiter is a claimer waiting for the outcome of one accept: unsend of its id signals ch. They
// are pooled with the timer that bounds their waits, so a wait allocates nothing, and an accept's
// end wakes only a claimer waiting for that id.
type holdWaiter struct {
	id    string
	ch    chan struct{} // buffered: unsend never blocks
	timer *time.Timer   // stopped between waits
}

func newHoldWaiter() *holdWaiter {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &holdWaiter{ch: make(chan struct{}, 1), timer: t}
}

// accept writes m with st.AcceptMessage, its id held until the outcome is known. It returns nil when
// m was written, else the error to refuse it with (an accept in doubt is resolved first).
func (d *inDoubt) accept(ctx context.Context, st store.Store, m *store.Message) error {
	if d == nil {
		return st.AcceptMessage(ctx, m)
	}
	d.hold(m.ID)
	return d.outcome(ctx, m, st.AcceptMessage(ctx, m))
}

// hold holds id as sending: its accept is about to go out. outcome ends the hold.
func (d *inDoubt) hold(id string) {
	if d == nil {
		return
	}
	d.mu.Lock()
	d.sending[id] = struct{}{}
	d.mu.Unlock()
}

// outcome ends the hold of m's accept, which ended with err, and returns nil when m was written,
// else the error to refuse it with: an accept in doubt is resolved first (it reads the store back,
// for up to resolveFor), anything else returned as it is.
func (d *inDoubt) outcome(ctx context.Context, m *store.Message, err error) error {
	if d == nil {
		return err
	}
	// A bare context error is in doubt too: a store may give up waiting while its write still lands.
	// Both stores say so with ErrInDoubt since 563a929 (embedded) and before (Redis); this costs a
	// read-back only after a time-out.
	if errors.Is(err, store.ErrInDoubt) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return d.resolve(ctx, m, err)
	}
	// Written, or surely not (refused before it went out, or the id was taken: then the message of
	// that id is another's, and is not ours to hold).
	d.mu.Lock()
	d.unsend(m.ID)
	d.mu.Unlock()
	return err
}

// unsend ends id's hold as sending and wakes the claimers waiting for its outcome. d.mu is held.
func (d *inDoubt) unsend(id string) {
	delete(d.sending, id)
	for _, w := range d.waiting {
		if w.id == id {
			select {
			case w.ch <- struct{}{}:
			default:
			}
		}
	}
}

// resolve is called with the ErrInDoubt (or the context's error) of m's accept. It returns nil
// when m was written (it is answered as accepted), or an error to refuse it with; when the outcome
// is still unknown, m's id is kept for the loop, which makes sure it never goes out.
func (d *inDoubt) resolve(ctx context.Context, m *store.Message, err error) error {
	if d == nil {
		return err
	}
	// Held as resolving from now, in the same step that ends its hold as sending: a claimer that
	// takes a part of it meanwhile (the write may have landed) gives it back unsent until the answer
	// is known.
	d.mu.Lock()
	d.ids[m.ID] = doubt{account: m.Account, at: time.Now(), resolving: true}
	d.unsend(m.ID)
	d.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, d.resolveFor)
	defer cancel()
	for {
		got, gerr := d.st.GetMessage(rctx, m.ID)
		switch {
		case gerr == nil && got.Account == m.Account:
			d.accepted.Add(1)
			d.mu.Lock()
			delete(d.ids, m.ID)
			d.mu.Unlock()
			d.log.Info().Str("message_id", m.ID).Msg("accept in doubt: found written; accepted")
			return nil
		case errors.Is(gerr, store.ErrNotFound), gerr == nil:
			// Not written (or not ours); a late write is still cancelled by the loop.
			d.add(m, err)
			return err
		}
		select {
		case <-rctx.Done():
			d.add(m, err)
			return err
		case <-time.After(d.interval / 2):
		}
	}
}

// add keeps m's id until the loop settles it.
func (d *inDoubt) add(m *store.Message, err error) {
	d.refused.Add(1)
	d.mu.Lock()
	n := len(d.ids)
	if n < maxInDoubt {
		d.ids[m.ID] = doubt{account: m.Account, at: time.Now()}
	} else {
		delete(d.ids, m.ID)
	}
	d.mu.Unlock()
	if n >= maxInDoubt {
		d.log.Error().Str("message_id", m.ID).Msg("accept in doubt and the in-doubt list is full: the message may go out though refused")
		return
	}
	d.log.Warn().Err(err).Str("message_id", m.ID).Msg("accept in doubt: refused; it is cancelled should it turn out written")
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// state reports whether id is in doubt, and if so whether it is still being read back. An id whose
// accept is still on its way to the store is waited for (with w, which must not be in use elsewhere),
// until deadline at the latest; past it, it is reported as being read back.
func (d *inDoubt) state(ctx context.Context, w *holdWaiter, id string, deadline time.Time) (held, resolving bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	waited := false
	for {
		if _, ok := d.sending[id]; !ok {
			v, ok := d.ids[id]
			return ok, v.resolving
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return true, true
		}
		if !waited {
			waited = true
			d.waited.Add(1)
		}
		// Registered under d.mu, in the same step as the look at sending: the unsend of id comes
		// after, and signals w.ch. A signal left over from an earlier id is harmless: the loop looks
		// again.
		w.id = id
		d.waiting = append(d.waiting, w)
		d.mu.Unlock()
		w.timer.Reset(left)
		select {
		case <-w.ch:
		case <-w.timer.C:
		case <-ctx.Done():
		}
		w.timer.Stop()
		d.mu.Lock()
		for i, x := range d.waiting {
			if x == w {
				last := len(d.waiting) - 1
				d.waiting[i] = d.waiting[last]
				d.waiting[last] = nil
				d.waiting = d.waiting[:last]
				break
			}
		}
		w.id = ""
	}
}

// drop returns tasks without the parts of messages in doubt: those of a refused message it settles
// DELETED (acknowledged, never sent); those of one still being read back it gives back unsent, to be
// claimed again once the answer is known. A part of a message whose accept is still on its way (the
// claim was answered before the accept's reply came back) is waited for, one interval at most for
// all of tasks, and then treated as the outcome says. A part whose write fails comes back after its
// visibility time-out and is looked at again then.
func (d *inDoubt) drop(ctx context.Context, tasks []*store.PartTask) []*store.PartTask {
	if d == nil {
		return tasks
	}
	d.mu.Lock()
	empty := len(d.ids) == 0 && len(d.sending) == 0
	d.mu.Unlock()
	if empty {
		return tasks
	}
	deadline := time.Now().Add(d.interval)
	w, _ := d.waiters.Get().(*holdWaiter)
	if w == nil {
		w = newHoldWaiter()
	}
	defer d.waiters.Put(w)
	out := tasks[:0]
	for _, t := range tasks {
		held, resolving := d.state(ctx, w, t.MessageID, deadline)
		if !held {
			out = append(out, t)
			continue
		}
		if resolving {
			if err := d.st.Postpone(ctx, t.Lease, d.interval); err != nil {
				d.log.Warn().Err(err).Str("message_id", t.MessageID).Msg("part of a message in doubt not given back; it returns after the visibility time-out")
			}
			continue
		}
		d.dropped.Add(1)
		_, _, err := d.st.Settle(ctx, t.Lease, store.PartUpdate{MessageID: t.MessageID, Part: t.Part, Upstream: t.Lease.Queue.Name, Status: pdu.DELETED})
		d.log.Warn().Err(err).Str("message_id", t.MessageID).Int("part", t.Part).Msg("part of a refused message in doubt claimed: settled DELETED, not sent")
	}
	return out
}

// run settles the list until ctx ends.
func (d *inDoubt) run(ctx context.Context) {
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		d.mu.Lock()
		n := len(d.ids)
		d.mu.Unlock()
		wait := t.C
		if n == 0 {
			wait = nil
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-wait:
		}
		d.pass(ctx)
	}
}

// pass tries each id once; it stops at the first store error (the store is still away).
func (d *inDoubt) pass(ctx context.Context) {
	d.mu.Lock()
	ids := make(map[string]doubt, len(d.ids))
	for id, v := range d.ids {
		ids[id] = v
	}
	d.mu.Unlock()
	for id, v := range ids {
		if ctx.Err() != nil {
			return
		}
		if v.resolving {
			continue // resolve decides
		}
		done, err := d.settle(ctx, id, v)
		if err != nil {
			return
		}
		if done {
			d.mu.Lock()
			delete(d.ids, id)
			d.mu.Unlock()
		}
	}
}

// settle cancels message id and reports whether it is settled for good: every part final or sent, or
// not found for lateWrite after its accept.
func (d *inDoubt) settle(ctx context.Context, id string, v doubt) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	m, cancelled, err := d.st.CancelMessage(cctx, id, v.account)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return time.Since(v.at) > d.lateWrite, nil
	case err != nil:
		return false, err
	}
	sent := 0
	for i := range m.Parts {
		p := &m.Parts[i]
		if p.UpstreamID != "" {
			sent++
		} else if !p.Status.Final() {
			return false, nil // claimed elsewhere or by us right now: tried again next pass
		}
	}
	if sent > 0 {
		d.leaked.Add(1)
		d.log.Error().Str("message_id", id).Int("parts_sent", sent).Msg("refused message in doubt was written and a part went out before it could be cancelled")
	} else if len(cancelled) > 0 {
		d.cancelled.Add(1)
		d.log.Warn().Str("message_id", id).Ints("parts", cancelled).Msg("refused message in doubt was written after all: cancelled")
	}
	return true, nil
}

// busy reports whether any refused accept is still in doubt.
func (d *inDoubt) busy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ids) > 0
}
