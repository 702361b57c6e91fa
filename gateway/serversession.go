package gateway

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// serverSession is the Handler of one server connection.
type serverSession struct {
	session.BaseHandler
	srv     *Server
	account Account
	bucket  limiter
	bound   atomic.Bool
}

func (h *serverSession) HandleBind(s *session.Session, req session.Request) pdu.CommandStatus {
	arrived := time.Now()
	br := BindRequest{Remote: s.RemoteAddr()}
	if bt, b, ok := session.BindOf(req.Body); ok {
		br.SystemID, br.Password, br.SystemType, br.BindType = b.SystemID, b.Password, b.SystemType, bt
	}
	// The bind is decided on the session's reader: ctx ends when the session does (bind timeout,
	// Shutdown), so that a bind waiting on another's password check gives up then.
	ctx, cancel := context.WithCancel(h.srv.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.Closing():
			cancel()
		case <-ctx.Done():
		}
	}()
	v := h.srv.bindGate.authenticate(ctx, h.srv.auth, s, br, arrived, s.Logger())
	if v.status == pdu.ESME_ROK {
		acct := v.account
		// The account's own system_id, so that the registry and MaxBinds see one spelling.
		if acct.SystemID == "" {
			acct.SystemID = br.SystemID
		}
		st, bucket := h.srv.register(s, acct)
		if st != pdu.ESME_ROK {
			s.Logger().Warn().Str("system_id", br.SystemID).Int("max_binds", acct.MaxBinds).Msg("bind refused: too many binds")
			return st
		}
		h.bucket = bucket
		h.account = acct
		h.bound.Store(true)
		ip, _ := remoteIP(br.Remote)
		h.srv.bindGate.succeeded(ip)
		return pdu.ESME_ROK
	}
	// The answer goes out before the connection's bind timeout closes it: a refused bind always gets
	// its bind_resp.
	answerAt := v.notBefore
	if deadline := s.Started().Add(bindAnswerLimit(s.Config().BindTimeout)); answerAt.After(deadline) {
		answerAt = deadline
	}
	delay := time.Until(answerAt)
	// Refusals with nothing checked (penalty window, busy, peer gone) come by the thousand in a flood:
	// the checked failures, a few per window, are the ones worth a warning.
	ev := s.Logger().Debug()
	if v.checked {
		ev = s.Logger().Warn()
	}
	ev.Str("system_id", br.SystemID).Stringer("bind_type", br.BindType).Stringer("status", v.status).
		Str("reason", v.why).Dur("delay", max(delay, 0)).Msg("bind refused")
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.Closing():
		case <-h.srv.ctx.Done():
		}
		t.Stop()
	}
	return v.status
}

func (h *serverSession) HandleRequest(s *session.Session, req session.Request) {
	if h.bucket != nil && !h.bucket.Allow(time.Now()) {
		_ = s.Respond(req, pdu.ESME_RTHROTTLED, nil)
		return
	}
	h.srv.sink.HandleMessage(Inbound{Session: s, Account: &h.account, Request: req})
}

// submitSMBorrower is a MessageHandler that holds no submit_sm body once HandleMessage returns
// (session.SubmitSMBorrower).
type submitSMBorrower interface {
	borrowsSubmitSM() bool
}

// BorrowsSubmitSM implements session.SubmitSMBorrower for a sink that does.
func (h *serverSession) BorrowsSubmitSM() bool {
	b, ok := h.srv.sink.(submitSMBorrower)
	return ok && b.borrowsSubmitSM()
}

func (h *serverSession) HandleBound(s *session.Session) {
	if h.srv.observer != nil {
		h.srv.observer.HandleBound(s, &h.account)
	}
}

func (h *serverSession) HandleClosed(s *session.Session, reason error) {
	h.srv.forget(s, h.account.SystemID)
	s.Logger().Info().AnErr("reason", reason).Str("system_id", h.account.SystemID).Msg("session closed")
}
