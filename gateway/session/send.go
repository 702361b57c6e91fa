package session

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// waiter carries one response to a goroutine blocked in Send; pooled, with a channel made once.
type waiter struct {
	ch   chan struct{}
	resp Response
	err  error
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

func getWaiter() *waiter { return waiterPool.Get().(*waiter) }

func putWaiter(w *waiter) {
	w.resp, w.err = Response{}, nil
	waiterPool.Put(w)
}

// Send sends a request and waits for its response, within the window: it waits for a free slot first
// (bounded by ctx). A response with a non-OK status is returned along with that status as the error.
// If ctx ends after the request went out, Send returns ctx.Err() and the outcome goes to the Handler
// (HandleResponse, HandleResponseTimeout or Terminate), so that it is never silently lost.
func (s *Session) Send(ctx context.Context, body pdu.Body) (Response, error) {
	if err := s.checkOutbound(body); err != nil {
		return Response{}, err
	}
	if err := s.acquire(ctx); err != nil {
		return Response{}, err
	}
	w := getWaiter()
	seq, err := s.enqueue(kindUser, body, w, nil)
	if err != nil {
		s.release()
		putWaiter(w)
		return Response{}, err
	}
	return s.wait(ctx, seq, w, false)
}

// SendAsync sends a request without waiting for the response: it returns once the request is queued
// for writing (waiting for a window slot first, bounded by ctx). done, if not nil, is called exactly
// once with the response or the error (ErrResponseTimeout, ErrLost) when SendAsync returned nil, and
// never when it returned an error. With a nil done, the Handler receives the outcome. done runs on
// the session's reader or timer goroutine: it must not block, nor send on this session.
func (s *Session) SendAsync(ctx context.Context, body pdu.Body, done func(Response, error)) error {
	var c Completion
	if done != nil {
		c = doneFunc(done) // a func is pointer-shaped: no allocation
	}
	return s.SendAsyncTo(ctx, body, c)
}

// Completion receives the outcome of a request sent with SendAsyncTo. Complete is called exactly
// once, on the session's reader or timer goroutine: it must not block, nor send on this session.
type Completion interface {
	Complete(Response, error)
}

// ResponseBorrower may be implemented by a Completion that reads a submit_sm_resp's body only
// during Complete and keeps neither the body nor a pointer into it (its strings point into frame
// memory, which is never reused, and may be kept). Such a completion is given the session's own
// submit_sm_resp body, reused for the next response; any other gets a body of its own.
type ResponseBorrower interface {
	BorrowsResponse() bool
}

type doneFunc func(Response, error)

func (f doneFunc) Complete(r Response, err error) { f(r, err) }

// SendAsyncTo is SendAsync reporting to c, which a caller can implement on the struct that already
// holds the request's own state, so that sending allocates no closure. A nil c hands the outcome to
// the Handler.
func (s *Session) SendAsyncTo(ctx context.Context, body pdu.Body, c Completion) error {
	if err := s.checkOutbound(body); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	if _, err := s.enqueue(kindUser, body, nil, c); err != nil {
		s.release()
		return err
	}
	return nil
}

// checkOutbound applies the bind-state rules to a request of ours.
func (s *Session) checkOutbound(body pdu.Body) error {
	if body == nil {
		return ErrInvalidResponse
	}
	id := body.CommandID()
	if id.IsResponse() {
		return ErrInvalidResponse
	}
	st := s.State()
	if st == StateClosed {
		return ErrClosed
	}
	if st != StateBound {
		return ErrNotBound
	}
	if !s.allowedOut(id) {
		return ErrNotBound
	}
	return nil
}

func (s *Session) allowedOut(id pdu.CommandID) bool {
	bt := s.BindType()
	switch id {
	case pdu.EnquireLinkID:
		return true
	case pdu.SubmitSMID, pdu.SubmitMultiID, pdu.QuerySMID, pdu.CancelSMID, pdu.ReplaceSMID:
		return s.role == RoleESME && bt.CanSubmit()
	case pdu.DataSMID:
		if s.role == RoleESME {
			return bt.CanSubmit()
		}
		return bt.CanReceive()
	case pdu.DeliverSMID, pdu.AlertNotificationID:
		return s.role == RoleSMSC && bt.CanReceive()
	}
	return false // binds, unbind and outbind have their own methods
}

func (s *Session) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

func (s *Session) release() { <-s.sem }

// enqueue puts a request in the window and writes it. When it returns nil the request's outcome will
// be reported exactly once (to w, done, or the Handler).
func (s *Session) enqueue(kind pendingKind, body pdu.Body, w *waiter, done Completion) (uint32, error) {
	// The monotonic clock alone (time.Since) costs half of time.Now, and this runs per request.
	mono := time.Since(s.started)
	s.mu.Lock()
	if s.win.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if kind == kindUser && s.State() != StateBound {
		s.mu.Unlock()
		return 0, ErrNotBound
	}
	i, ok := s.win.add(mono + s.cfg.ResponseTimeout)
	if !ok {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	p := &s.win.slots[i]
	p.kind, p.w, p.done = kind, w, done
	p.req = Request{Sequence: p.seq, Body: body, Sent: s.started.Add(mono)}
	seq := p.seq
	if !s.timerArmed {
		s.timerArmed = true
		s.expiry.Reset(s.cfg.ResponseTimeout)
	}
	s.mu.Unlock()
	if err := s.write(seq, pdu.ESME_ROK, body); err != nil {
		s.mu.Lock()
		if i := s.win.lookup(seq); i >= 0 {
			s.win.take(i)
			s.mu.Unlock()
			return 0, err
		}
		// Already drained by the ending session, which reports it as lost.
		s.mu.Unlock()
	}
	return seq, nil
}

// wait blocks for the outcome of the request seq carried by w.
func (s *Session) wait(ctx context.Context, seq uint32, w *waiter, internal bool) (Response, error) {
	select {
	case <-w.ch:
	case <-ctx.Done():
		s.mu.Lock()
		if i := s.win.lookup(seq); i >= 0 && s.win.slots[i].w == w {
			if internal {
				s.win.take(i)
			} else {
				s.win.slots[i].w = nil // the Handler owns the outcome from now on
			}
			s.mu.Unlock()
			putWaiter(w)
			return Response{}, ctx.Err()
		}
		s.mu.Unlock()
		<-w.ch // being completed right now
	}
	resp, err := w.resp, w.err
	putWaiter(w)
	return resp, err
}

func (s *Session) sendInternal(ctx context.Context, body pdu.Body) (Response, error) {
	w := getWaiter()
	seq, err := s.enqueue(kindInternal, body, w, nil)
	if err != nil {
		putWaiter(w)
		return Response{}, err
	}
	return s.wait(ctx, seq, w, true)
}

// complete reports the outcome of one of our requests to whoever owns it.
func (s *Session) complete(p *pending, resp Response, err error) {
	if p.kind == kindUser {
		s.release()
	}
	switch {
	case p.w != nil:
		p.w.resp, p.w.err = resp, err
		p.w.ch <- struct{}{}
	case p.done != nil:
		p.done.Complete(resp, err)
	case p.kind == kindEnquire:
		s.enquireDone(err)
	case p.kind == kindInternal:
		// An abandoned bind or unbind: nobody waits for it any more.
	case errors.Is(err, ErrResponseTimeout):
		s.h.HandleResponseTimeout(s, p.req)
	default:
		s.h.HandleResponse(s, p.req, resp)
	}
}

// expire runs on the session's one expiry timer: it fails every request whose deadline has passed
// (the oldest first) and re-arms the timer for the new oldest.
func (s *Session) expire() {
	now := time.Since(s.started)
	var expired []pending
	s.mu.Lock()
	for s.win.head >= 0 {
		p := &s.win.slots[s.win.head]
		if p.deadline > now {
			break
		}
		expired = append(expired, s.win.take(s.win.head))
	}
	if s.win.head >= 0 && !s.win.closed {
		s.expiry.Reset(s.win.slots[s.win.head].deadline - now)
	} else {
		s.timerArmed = false
	}
	s.mu.Unlock()
	for i := range expired {
		s.timeouts.Add(1)
		s.complete(&expired[i], Response{Sequence: expired[i].seq}, ErrResponseTimeout)
	}
}

// write encodes one PDU straight into the outgoing buffer and wakes the writer if it was idle.
func (s *Session) write(seq uint32, status pdu.CommandStatus, body pdu.Body) error {
	if err := s.out.append(seq, status, body); err != nil {
		return err
	}
	s.ctr.wrote(body.CommandID(), status)
	return nil
}

// writeHeader writes a header-only PDU: generic_nack, or a response with an error status.
func (s *Session) writeHeader(id pdu.CommandID, status pdu.CommandStatus, seq uint32) error {
	if err := s.out.appendHeader(id, status, seq); err != nil {
		return err
	}
	s.ctr.wrote(id, status)
	return nil
}
