package session

import (
	"errors"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// idleCheck runs on the enquire_link timer: once nothing has been read for a whole interval, it
// sends enquire_link; if that goes unanswered, enquireDone closes the session. The timer is re-armed
// for the end of the interval that started with the last PDU read, so the link is probed one interval
// after it fell silent (not one to two intervals, as a fixed tick comparing counters would).
func (s *Session) idleCheck() {
	select {
	case <-s.closing:
		return
	default:
	}
	next := s.cfg.EnquireLink
	if idle := time.Since(s.started) - time.Duration(s.lastIn.Load()); idle < s.cfg.EnquireLink {
		next -= idle
	} else if s.State() == StateBound && s.enqBusy.CompareAndSwap(false, true) {
		if _, err := s.enqueue(kindEnquire, &pdu.EnquireLink{}, nil, nil); err != nil {
			s.enqBusy.Store(false)
		}
	}
	s.mu.Lock()
	s.enquire.Reset(next)
	s.mu.Unlock()
}

func (s *Session) enquireDone(err error) {
	s.enqBusy.Store(false)
	if errors.Is(err, ErrResponseTimeout) {
		s.log.Warn().Msg("enquire_link unanswered; closing")
		s.shutdown(ErrEnquireLinkTimeout, false)
	}
}
