package smscsim

import (
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// edits is what the simulator keeps of cancel_sm and replace_sm: every request, in arrival order,
// and the status it answers them with.
type edits struct {
	status   pdu.CommandStatus // ESME_ROK unless SetEditStatus said otherwise
	cancels  []*pdu.CancelSM
	replaces []*pdu.ReplaceSM
}

// SetEditStatus makes the simulator answer cancel_sm and replace_sm with status (ESME_ROK, the
// default, to accept them; ESME_RCANCELFAIL or ESME_RREPLACEFAIL to refuse them).
func (s *Sim) SetEditStatus(status pdu.CommandStatus) {
	s.mu.Lock()
	s.edits.status = status
	s.mu.Unlock()
}

// Cancels returns the cancel_sm received so far.
func (s *Sim) Cancels() []*pdu.CancelSM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pdu.CancelSM(nil), s.edits.cancels...)
}

// Replaces returns the replace_sm received so far.
func (s *Sim) Replaces() []*pdu.ReplaceSM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pdu.ReplaceSM(nil), s.edits.replaces...)
}

// handleEdit records and answers req when it is a cancel_sm or a replace_sm, and reports whether it
// was. The simulator keeps no state per message for them: the answer is the configured status.
func (s *Sim) handleEdit(ss *session.Session, req session.Request) bool {
	s.mu.Lock()
	switch b := req.Body.(type) {
	case *pdu.CancelSM:
		s.edits.cancels = append(s.edits.cancels, b)
	case *pdu.ReplaceSM:
		s.edits.replaces = append(s.edits.replaces, b)
	default:
		s.mu.Unlock()
		return false
	}
	status := s.edits.status
	s.mu.Unlock()
	_ = s.respondCounted(ss, req, status, nil)
	return true
}
