package session

import (
	"errors"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Errors callers branch on. A response with a non-OK status is returned as its pdu.CommandStatus, so
// errors.Is(err, pdu.ESME_RTHROTTLED) works on what Send returns.
var (
	// ErrClosed: the session is closed (or closing) and takes no more requests.
	ErrClosed = errors.New("session: closed")
	// ErrNotBound: the request is not allowed in the session's bind state.
	ErrNotBound = errors.New("session: not bound for this request")
	// ErrAlreadyBound: Bind on a session that is bound or unbinding.
	ErrAlreadyBound = errors.New("session: already bound")
	// ErrResponseTimeout: no response came within Config.ResponseTimeout.
	ErrResponseTimeout = errors.New("session: response timeout")
	// ErrLost: the request was sent (or queued to be) but the session ended before its response came;
	// the peer may or may not have acted on it.
	ErrLost = errors.New("session: ended before the response")
	// ErrEnquireLinkTimeout is the close reason when an idle-time enquire_link went unanswered.
	ErrEnquireLinkTimeout = errors.New("session: enquire_link unanswered")
	// ErrBindTimeout is the close reason when a connection did not bind within Config.BindTimeout.
	ErrBindTimeout = errors.New("session: no bind within the bind timeout")
	// ErrPeerUnbound is the close reason when the peer sent unbind.
	ErrPeerUnbound = errors.New("session: peer unbound")
	// ErrUnbound is the close reason after our own unbind.
	ErrUnbound = errors.New("session: unbound")
	// ErrUnexpectedResponse: the peer answered a request with a response of another command.
	ErrUnexpectedResponse = errors.New("session: response does not match the request")
	// ErrInvalidResponse: Respond was given a body that does not answer the request.
	ErrInvalidResponse = errors.New("session: body does not answer the request")
)

// Request is a request PDU: one of ours awaiting (or denied) a response, or one of the peer's awaiting
// ours.
type Request struct {
	Sequence uint32
	Body     pdu.Body
	Sent     time.Time // when ours was queued for writing; when the peer's was read (to within a burst)
	inbound  bool      // the peer's, counted against the inbound limit until answered
}

// Response is the answer to one of our requests. Body is the typed response body, or *pdu.GenericNack
// when the peer could not handle the request at all.
type Response struct {
	Sequence uint32
	Status   pdu.CommandStatus
	Body     pdu.Body
}

// Handler is what a role plugs into a session, after SMPPEX.Session's callbacks. Callbacks run on the
// session's reader goroutine (HandleResponseTimeout on its timer): they must not wait for a response
// themselves (start a goroutine for that) and should return quickly, answering requests through
// Session.Respond, now or later. A Handler may also implement BoundHandler, to be told when a peer's
// bind has completed.
type Handler interface {
	// HandleBind decides a bind request from the peer (server role only) and returns the status to
	// answer with; ESME_ROK binds the session.
	HandleBind(s *Session, req Request) pdu.CommandStatus
	// HandleRequest receives every other request the bind state allows (submit_sm, deliver_sm, outbind,
	// ...). Each must be answered exactly once with s.Respond (outbind has no answer); until then it
	// counts against the inbound limit.
	HandleRequest(s *Session, req Request)
	// HandleResponse receives the response to a request sent with SendAsync and no done function.
	// A non-OK status is in resp.Status.
	HandleResponse(s *Session, req Request, resp Response)
	// HandleResponseTimeout receives a request sent with SendAsync and no done function that got no
	// response within the timeout. A response arriving later is logged and dropped.
	HandleResponseTimeout(s *Session, req Request)
	// HandleUnparsable is told of a PDU that could not be decoded; the session has already answered it
	// (generic_nack or an error response) as the specification asks.
	HandleUnparsable(s *Session, h pdu.Header, err error)
	// HandleClosed is told once that the session ended, and why: io.EOF when the peer closed the
	// socket, ErrUnbound or ErrPeerUnbound after an unbind, another error for a socket error.
	HandleClosed(s *Session, reason error)
	// Terminate is called last with the lost PDUs: requests sent with SendAsync and no done function
	// that never got a response, in send order. (Send and SendAsync with a done function report the
	// same loss to their caller as ErrLost instead, so that every request has exactly one owner.)
	Terminate(s *Session, lost []Request)
}

// BoundHandler may be implemented by a Handler to learn when a peer's bind has completed (SMSC role):
// bind_resp written and the session bound, so that what it sends now follows the bind_resp. It runs
// on the reader, after HandleBind accepted, and must not block.
type BoundHandler interface {
	HandleBound(s *Session)
}

// SubmitSMBorrower may be implemented by a Handler that holds no peer's submit_sm body once
// HandleRequest returns: it copies or aliases the fields it keeps (their strings and octets point
// into frame memory, which is never reused) but keeps neither req.Body nor a pointer into it, and
// answers later through a Request whose Body is another body of the command (Respond reads only its
// command id). The session then decodes every submit_sm into one body of its own, reused for the
// next, instead of allocating one each.
type SubmitSMBorrower interface {
	BorrowsSubmitSM() bool
}

// BaseHandler is a Handler with defaults, to embed in a role so that it overrides only what it needs:
// binds are refused, requests are answered ESME_RINVCMDID (the role does not support them), and the
// rest is logged.
type BaseHandler struct{}

// HandleBind refuses with ESME_RBINDFAIL.
func (BaseHandler) HandleBind(*Session, Request) pdu.CommandStatus { return pdu.ESME_RBINDFAIL }

// HandleRequest answers ESME_RINVCMDID.
func (BaseHandler) HandleRequest(s *Session, req Request) {
	if req.Body.CommandID() == pdu.OutbindID {
		s.log.Warn().Msg("outbind ignored: the role does not accept outbinds")
		return
	}
	_ = s.Respond(req, pdu.ESME_RINVCMDID, nil)
}

// HandleResponse logs a non-OK status.
func (BaseHandler) HandleResponse(s *Session, req Request, resp Response) {
	if resp.Status != pdu.ESME_ROK {
		s.log.Info().Stringer("command", req.Body.CommandID()).Uint32("seq", req.Sequence).Stringer("status", resp.Status).Msg("request refused")
	}
}

// HandleResponseTimeout logs.
func (BaseHandler) HandleResponseTimeout(s *Session, req Request) {
	s.log.Warn().Stringer("command", req.Body.CommandID()).Uint32("seq", req.Sequence).Msg("response timeout")
}

// HandleUnparsable logs.
func (BaseHandler) HandleUnparsable(s *Session, h pdu.Header, err error) {
	s.log.Warn().Stringer("command", h.ID).Uint32("seq", h.Sequence).Err(err).Msg("unparsable PDU")
}

// HandleClosed logs.
func (BaseHandler) HandleClosed(s *Session, reason error) {
	s.log.Info().AnErr("reason", reason).Msg("session closed")
}

// Terminate logs the number of lost PDUs.
func (BaseHandler) Terminate(s *Session, lost []Request) {
	if len(lost) > 0 {
		s.log.Warn().Int("lost", len(lost)).Msg("session ended with unanswered requests")
	}
}
