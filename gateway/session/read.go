package session

import (
	"errors"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Respond answers one of the peer's requests, as received by Handler.HandleRequest (or a Handler's
// bind). A nil body sends the empty response body for an OK status, and a header-only response for
// an error status, as SMPP 3.4 allows. Each request must be answered once.
func (s *Session) Respond(req Request, status pdu.CommandStatus, body pdu.Body) error {
	if req.Body == nil {
		return ErrInvalidResponse
	}
	id := req.Body.CommandID()
	if !hasResponse(id) {
		return ErrInvalidResponse
	}
	if body != nil && body.CommandID() != id.Response() {
		return ErrInvalidResponse
	}
	var err error
	switch {
	case body == nil && status != pdu.ESME_ROK:
		err = s.writeHeader(id.Response(), status, req.Sequence)
	case body == nil:
		err = s.write(req.Sequence, status, pdu.New(id.Response()))
	default:
		err = s.write(req.Sequence, status, body)
	}
	if req.inbound {
		// Answered once the answer is queued, not before: Unbind closes when nothing is unanswered.
		s.inboundDone()
	}
	return err
}

// allowedIn applies the bind-state rules to a request of the peer's. While we unbind, the bind's
// requests are still taken (see Unbind and admitDraining).
func (s *Session) allowedIn(id pdu.CommandID) bool {
	if st := s.State(); st != StateBound && st != StateUnbinding {
		return false
	}
	bt := s.BindType()
	switch id {
	case pdu.SubmitSMID, pdu.SubmitMultiID, pdu.QuerySMID, pdu.CancelSMID, pdu.ReplaceSMID:
		return s.role == RoleSMSC && bt.CanSubmit()
	case pdu.DataSMID:
		if s.role == RoleSMSC {
			return bt.CanSubmit()
		}
		return bt.CanReceive()
	case pdu.DeliverSMID, pdu.AlertNotificationID:
		return s.role == RoleESME && bt.CanReceive()
	}
	return false
}

func (s *Session) inboundDone() {
	for {
		n := s.inPending.Load()
		if n <= 0 {
			return
		}
		if s.inPending.CompareAndSwap(n, n-1) {
			if int(n) >= s.cfg.InboundLimit {
				select {
				case s.inWake <- struct{}{}:
				default:
				}
			}
			if n == 1 && s.State() != StateBound {
				select {
				case s.inIdle <- struct{}{}:
				default:
				}
			}
			return
		}
	}
}

// readLoop owns the socket's read side and the session's end.
func (s *Session) readLoop() {
	defer s.finish()
	r := pdu.NewReader(s.conn, s.cfg.MaxPDULength)
	for {
		if !s.cfg.ThrottleInbound {
			for int(s.inPending.Load()) >= s.cfg.InboundLimit {
				select {
				case <-s.inWake:
				case <-s.closing:
					return
				}
			}
		}
		// A peer that sends without reading our answers would make them pile up: stop reading
		// while more than maxQueuedOut octets wait for the writer.
		for s.out.queued.Load() > maxQueuedOut {
			select {
			case <-s.out.space:
			case <-s.closing:
				return
			}
		}
		fresh := r.Buffered() == 0
		h, body, err := s.read(r)
		if fresh {
			// One clock read per burst of PDUs, not per PDU.
			mono := time.Since(s.started)
			s.readAt = s.started.Add(mono)
			s.lastIn.Store(int64(mono))
		}
		if err != nil {
			var fe *pdu.FieldError
			if !errors.As(err, &fe) {
				if s.unbindAcked.Load() {
					// The peer closed after answering our unbind, as it may.
					err = ErrUnbound
				}
				s.shutdown(err, false)
				return
			}
			s.pdusIn.Add(1)
			s.ctr.unreadable(s.readAt)
			if s.unparsable(h, err) {
				s.shutdown(err, true)
				return
			}
			continue
		}
		s.pdusIn.Add(1)
		s.ctr.read(h, s.readAt)
		if !s.dispatch(h, body) {
			return
		}
	}
}

// read reads one frame and decodes it, as pdu.Reader.Read does, but into the session's own body for
// a submit_sm when the Handler borrows them, and for every submit_sm_resp (response gives a copy to
// a completion that does not borrow it).
func (s *Session) read(r *pdu.Reader) (pdu.Header, pdu.Body, error) {
	h, raw, err := r.ReadFrame()
	if err != nil {
		return h, nil, err
	}
	switch {
	case h.ID == pdu.SubmitSMID && s.borrowSubmit:
		if s.submitBody == nil {
			s.submitBody = new(pdu.SubmitSM)
		}
		// DecodeBody sets every field, so nothing of the previous submit_sm is left.
		if err := s.submitBody.DecodeBody(raw); err != nil {
			return h, nil, err
		}
		return h, s.submitBody, nil
	case h.ID == pdu.SubmitSMRespID:
		if s.respBody == nil {
			s.respBody = new(pdu.SubmitSMResp)
		}
		if h.Status != pdu.ESME_ROK && len(raw) == 0 {
			// An error answer may come header only (pdu.Decode gives the empty body).
			*s.respBody = pdu.SubmitSMResp{}
		} else if err := s.respBody.DecodeBody(raw); err != nil {
			return h, nil, err
		}
		return h, s.respBody, nil
	}
	b, err := pdu.Decode(h, raw)
	return h, b, err
}

// unparsable answers a PDU that could not be decoded and reports whether the stream is beyond
// trusting (a bad command_length).
func (s *Session) unparsable(h pdu.Header, err error) (fatal bool) {
	switch {
	case errors.Is(err, pdu.ErrLength):
		_ = s.writeHeader(pdu.GenericNackID, pdu.ESME_RINVCMDLEN, h.Sequence)
		fatal = true
	case errors.Is(err, pdu.ErrUnknownCommand):
		_ = s.writeHeader(pdu.GenericNackID, pdu.ESME_RINVCMDID, h.Sequence)
	case h.ID.IsResponse():
		// A response we cannot read still answers the request: complete it with the decode error.
		s.mu.Lock()
		i := s.win.lookup(h.Sequence)
		var p pending
		if i >= 0 {
			p = s.win.take(i)
		}
		s.mu.Unlock()
		if i >= 0 {
			s.complete(&p, Response{Sequence: h.Sequence, Status: h.Status}, err)
		}
	default:
		s.refuse(h, pdu.StatusOf(err))
	}
	s.log.Warn().Stringer("command", h.ID).Uint32("seq", h.Sequence).Err(err).Msg("unparsable PDU")
	s.h.HandleUnparsable(s, h, err)
	return fatal
}

// dispatch handles one decoded PDU; false means the reader must stop.
func (s *Session) dispatch(h pdu.Header, body pdu.Body) bool {
	if h.ID.IsResponse() {
		s.response(h, body)
		return true
	}
	switch h.ID {
	case pdu.EnquireLinkID:
		_ = s.write(h.Sequence, pdu.ESME_ROK, &pdu.EnquireLinkResp{})
	case pdu.UnbindID:
		if s.State() != StateBound {
			_ = s.writeHeader(pdu.UnbindRespID, pdu.ESME_RINVBNDSTS, h.Sequence)
			return true
		}
		s.state.Store(uint32(StateUnbinding))
		_ = s.write(h.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
		s.shutdown(ErrPeerUnbound, true)
		return false
	case pdu.BindTransmitterID, pdu.BindReceiverID, pdu.BindTransceiverID:
		s.bind(h, body)
	case pdu.OutbindID:
		if s.role == RoleESME && s.State() == StateOpen {
			s.h.HandleRequest(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt})
		} else {
			s.log.Warn().Stringer("state", s.State()).Msg("outbind in the wrong role or state refused")
			s.refuse(h, pdu.ESME_RINVBNDSTS)
		}
	default:
		if !s.allowedIn(h.ID) {
			s.refuse(h, pdu.ESME_RINVBNDSTS)
			return true
		}
		if h.ID == pdu.AlertNotificationID {
			// Nothing answers an alert_notification, so it does not count as unanswered.
			s.h.HandleRequest(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt})
			return true
		}
		if s.cfg.ThrottleInbound && int(s.inPending.Load()) >= s.cfg.InboundLimit {
			_ = s.writeHeader(h.ID.Response(), pdu.ESME_RTHROTTLED, h.Sequence)
			return true
		}
		// Counted before the state is read: Unbind moves the state first and reads the count later,
		// so either this request is seen as unbinding or Unbind sees it counted.
		s.inPending.Add(1)
		if s.State() != StateBound && !s.admitDraining(h) {
			return true
		}
		s.h.HandleRequest(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt, inbound: true})
	}
	return true
}

// hasResponse reports whether SMPP 3.4 defines a response to the request id: every request has one
// but outbind (section 4.1.7: the ESME answers with a bind) and alert_notification (sections 2.1 and
// 4.12: no response).
func hasResponse(id pdu.CommandID) bool {
	return !id.IsResponse() && id != pdu.OutbindID && id != pdu.AlertNotificationID
}

// refuse answers a request of the peer's that the session does not take with status, in the
// request's own response, header only. Outbind and alert_notification have none: their response
// ids (0x8000000B, 0x80000102) exist nowhere in the specification (section 5.1.2), so a peer would
// read an unknown command. They get generic_nack instead, the one negative answer that needs no
// response id of the request's (section 4.3 uses it where a PDU cannot be answered by its own
// response: a bad header, an unknown command); table 2-1 (section 2.3) allows neither in the wrong
// role or state, hence ESME_RINVBNDSTS there, and a body that does not decode gets its decode
// status. Ignoring them would be allowed too, but the peer would not learn why nothing happened.
func (s *Session) refuse(h pdu.Header, status pdu.CommandStatus) {
	id := pdu.GenericNackID
	if hasResponse(h.ID) {
		id = h.ID.Response()
	}
	_ = s.writeHeader(id, status, h.Sequence)
}

// response matches a response to our pending request and completes it; one that matches nothing
// (it came after the timeout, or is bogus) is counted, logged and dropped.
func (s *Session) response(h pdu.Header, body pdu.Body) {
	s.mu.Lock()
	i := s.win.lookup(h.Sequence)
	if i < 0 {
		s.mu.Unlock()
		s.late.Add(1)
		s.log.Debug().Stringer("command", h.ID).Uint32("seq", h.Sequence).Msg("response matches no pending request; dropped")
		return
	}
	p := s.win.take(i)
	s.mu.Unlock()
	if h.ID == pdu.UnbindRespID && p.kind == kindInternal {
		// Our unbind is answered: the end is ours, whatever the peer does with the socket next.
		// Requests of the peer's still being served keep it open until answered (Unbind bounds that).
		s.unbindAcked.Store(true)
		if s.inPending.Load() == 0 {
			s.shutdown(ErrUnbound, true)
		}
	}
	if p.kind == kindUser {
		s.ctr.pdus.observe(s.readAt.Sub(p.req.Sent))
	}
	if body == pdu.Body(s.respBody) && s.respBody != nil {
		if b, ok := p.done.(ResponseBorrower); !ok || !b.BorrowsResponse() {
			own := *s.respBody
			body = &own
		}
	}
	resp := Response{Sequence: h.Sequence, Status: h.Status, Body: body}
	var err error
	switch {
	case h.ID == pdu.GenericNackID:
		err = h.Status
		if h.Status == pdu.ESME_ROK {
			err = pdu.ESME_RUNKNOWNERR
		}
	case h.ID != p.req.Body.CommandID().Response():
		err = ErrUnexpectedResponse
	case h.Status != pdu.ESME_ROK:
		err = h.Status
	case p.kind == kindInternal:
		s.boundBy(p.req.Body, body)
	}
	s.complete(&p, resp, err)
}
