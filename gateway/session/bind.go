package session

import (
	"context"
	"errors"

	"github.com/smppgw/smppgw/pdu"
)

// Bind sends a bind request of type bt (ESME role) and waits for the answer; on ESME_ROK the session
// is bound. A refusal is returned as its status (errors.Is(err, pdu.ESME_RINVPASWD)).
func (s *Session) Bind(ctx context.Context, bt BindType, p BindParams) (Response, error) {
	if s.role != RoleESME {
		return Response{}, ErrNotBound
	}
	if s.State() != StateOpen {
		if s.State() == StateClosed {
			return Response{}, ErrClosed
		}
		return Response{}, ErrAlreadyBound
	}
	if !s.binding.CompareAndSwap(false, true) {
		return Response{}, ErrAlreadyBound
	}
	defer s.binding.Store(false)
	body := bindBody(bt, &pdu.BindTransceiver{SystemID: p.SystemID, Password: p.Password, SystemType: p.SystemType,
		InterfaceVersion: 0x34, AddrTON: p.AddrTON, AddrNPI: p.AddrNPI, AddressRange: p.AddressRange})
	if body == nil {
		return Response{}, errors.New("session: Bind needs a bind type")
	}
	resp, err := s.sendInternal(ctx, body)
	if err != nil {
		return resp, err
	}
	// The reader moved the session to bound before handing over the response (see boundBy).
	if s.State() != StateBound {
		return resp, ErrClosed
	}
	return resp, nil
}

// boundBy records a successful bind of ours. It runs on the reader before the next PDU is read, so a
// deliver_sm that follows the bind_resp at once finds the session bound.
func (s *Session) boundBy(req pdu.Body, resp pdu.Body) {
	bt, b, ok := BindOf(req)
	if !ok {
		return
	}
	sysID := b.SystemID
	s.mu.Lock()
	s.systemID = sysID
	s.peerID = respSystemID(resp)
	s.mu.Unlock()
	s.bindType.Store(uint32(bt))
	s.ctr.bound(b.InterfaceVersion)
	if s.state.CompareAndSwap(uint32(StateOpen), uint32(StateBound)) {
		s.bindTmr.Stop()
		s.log.Info().Str("system_id", sysID).Stringer("bind_type", bt).Msg("bound")
	}
}

func respSystemID(b pdu.Body) string {
	switch r := b.(type) {
	case *pdu.BindTransmitterResp:
		return r.SystemID
	case *pdu.BindReceiverResp:
		return r.SystemID
	case *pdu.BindTransceiverResp:
		return r.SystemID
	}
	return ""
}

// Outbind sends outbind (SMSC role, before any bind) asking the ESME to bind on this connection.
func (s *Session) Outbind(systemID, password string) error {
	if s.role != RoleSMSC || s.State() != StateOpen {
		return ErrNotBound
	}
	s.mu.Lock()
	seq := s.win.next
	s.win.next = nextSeq(seq)
	s.mu.Unlock()
	return s.write(seq, pdu.ESME_ROK, &pdu.Outbind{SystemID: systemID, Password: password})
}

// bind handles a bind request: the SMSC role asks its Handler; anything else refuses.
func (s *Session) bind(h pdu.Header, body pdu.Body) {
	resp := h.ID.Response()
	if s.role != RoleSMSC {
		_ = s.writeHeader(resp, pdu.ESME_RINVBNDSTS, h.Sequence)
		return
	}
	if s.State() != StateOpen {
		_ = s.writeHeader(resp, pdu.ESME_RALYBND, h.Sequence)
		return
	}
	var sysID string
	var version uint8
	bt, b, ok := BindOf(body)
	if ok {
		sysID, version = b.SystemID, b.InterfaceVersion
	}
	st := s.h.HandleBind(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt})
	if st != pdu.ESME_ROK {
		_ = s.writeHeader(resp, st, h.Sequence)
		return
	}
	s.mu.Lock()
	s.systemID = sysID
	s.peerID = s.localID
	s.mu.Unlock()
	s.bindType.Store(uint32(bt))
	s.ctr.bound(version)
	var rb pdu.Body
	switch bt {
	case BindTransmitter:
		rb = &pdu.BindTransmitterResp{SystemID: s.localID}
	case BindReceiver:
		rb = &pdu.BindReceiverResp{SystemID: s.localID}
	default:
		rb = &pdu.BindTransceiverResp{SystemID: s.localID}
	}
	// bind_resp goes out before the session counts as bound, so that nothing we send (a deliver_sm
	// from another goroutine) can overtake it.
	_ = s.write(h.Sequence, pdu.ESME_ROK, rb)
	if !s.state.CompareAndSwap(uint32(StateOpen), uint32(StateBound)) {
		return
	}
	s.bindTmr.Stop()
	s.log.Info().Str("system_id", sysID).Stringer("bind_type", bt).Msg("bound")
	if n, ok := s.h.(BoundHandler); ok {
		n.HandleBound(s)
	}
}
