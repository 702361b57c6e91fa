package session

import (
	"context"
	"io"

	"github.com/smppgw/smppgw/pdu"
)

// Unbind ends the session gracefully. Our new requests are refused at once; those in flight, and the
// peer's requests received so far, get up to UnbindTimeout (and ctx) to be answered, while the peer's
// requests are served as usual. Then unbind is sent, unbind_resp and the answers to what the peer
// sent meanwhile are awaited for up to UnbindTimeout again, and the connection is closed. Our
// requests still pending become lost PDUs. An unbound (open) session is just closed.
//
// What the peer sends once our unbind is on the wire is still served in the ESME role (receipts and
// MO from an upstream, which the store takes), and refused with drainStatus in the SMSC role (new
// submissions, which the ESME sends again on its next bind).
func (s *Session) Unbind(ctx context.Context) error {
	if !s.state.CompareAndSwap(uint32(StateBound), uint32(StateUnbinding)) {
		switch s.State() {
		case StateOpen:
			s.shutdown(ErrUnbound, true)
		case StateClosed:
			return ErrClosed
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.UnbindTimeout)
	// Holding every window slot means nothing of ours is in flight.
drain:
	for i := 0; i < cap(s.sem); i++ {
		select {
		case s.sem <- struct{}{}:
		case <-dctx.Done():
			break drain
		case <-s.closing:
			break drain
		}
	}
	// Answer what the peer sent so far before our unbind goes out, and hold what it sends next (the
	// reader stops) until it has: some peers stop reading at an unbind (Kannel closes the connection
	// on reading one and sends again whatever it saw no answer to), so an answer behind the unbind
	// is not seen, and an ESME_ROK not seen is a duplicate.
	s.quiesce.Store(true)
	s.awaitInbound(dctx)
	cancel()
	uctx, cancel := context.WithTimeout(ctx, s.cfg.UnbindTimeout)
	w := getWaiter()
	seq, err := s.enqueue(kindInternal, &pdu.Unbind{}, w, nil)
	close(s.unbindOut)
	if err != nil {
		putWaiter(w)
	} else {
		_, err = s.wait(uctx, seq, w, true)
	}
	// What the peer sent after our unbind and before its unbind_resp is answered before we close.
	s.awaitInbound(uctx)
	cancel()
	s.shutdown(ErrUnbound, true)
	select {
	case <-s.done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// Close ends the session without unbinding: what is queued is flushed, the connection is closed, and
// pending requests become lost PDUs. It does not wait; see Done.
func (s *Session) Close() { s.shutdown(ErrClosed, true) }

// Abort ends the session at once: the connection is closed without flushing what is queued, and
// pending requests become lost PDUs. It does not wait; see Done.
func (s *Session) Abort() { s.shutdown(ErrClosed, false) }

// awaitInbound waits until every request of the peer's has been answered, ctx ends or the session
// closes. Only Unbind waits, after moving the session out of StateBound, which makes inboundDone
// signal inIdle.
func (s *Session) awaitInbound(ctx context.Context) {
	for s.inPending.Load() > 0 {
		select {
		case <-s.inIdle:
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// drainStatus answers what an ESME submits to us (SMSC role) once our unbind is on the wire: the
// session takes nothing more, and the ESME should send it again on its next bind, to this instance
// or another. ESME_RTHROTTLED, because it is the one status the common ESMEs all re-queue:
//   - Kannel 1.4.5, gw/smsc/smsc_smpp.c: smpp_status_to_smscconn_failure_reason maps ESME_RMSGQFUL,
//     ESME_RTHROTTLED, ESME_RX_T_APPN and ESME_RSYSERR to SMSCCONN_FAILED_TEMPORARILY, which
//     bb_smscconn_send_failed re-queues (bounded only by sms-resend-retry, unlimited by default);
//     every other status, ESME_RINVBNDSTS included, is SMSCCONN_FAILED_REJECTED and the message is
//     dropped. ESME_RTHROTTLED also pauses its sending for SMPP_THROTTLING_SLEEP_TIME, which suits a
//     bind about to close. Older releases map only ESME_RMSGQFUL and ESME_RTHROTTLED to temporary.
//   - Jasmin, sm-listener submit_error_retrial (jasmin/managers/configs.py): by default ESME_RTHROTTLED
//     is retried 20 times every 30s, ESME_RSYSERR and ESME_RMSGQFUL only twice, and any status not in
//     the table (ESME_RINVBNDSTS) is not retried at all.
//   - node smpp (npm "smpp", lib/smpp.js) has no retry policy of its own: it hands command_status to
//     the application's callback, also after an unbind, until the socket closes; 0x58 is the status
//     applications treat as "slow down and retry", ESME_RSYSERR may mean the message was processed.
//
// Our own Client treats ESME_RTHROTTLED as throttling as well (pause, then retry the part).
const drainStatus = pdu.ESME_RTHROTTLED

// admitDraining decides a request of the peer's that came while we unbind, already counted as
// unanswered; false means it was answered (or the session is ending) and goes no further. Until our
// unbind is written it is served as usual, except that once Unbind waits for the answers so far, the
// reader holds it (not counted, so that the wait ends) until the unbind is out. After that, what
// the store can take is still served in the ESME role (receipts and MO from an upstream), and a new
// submission is refused with drainStatus in the SMSC role.
func (s *Session) admitDraining(h pdu.Header) bool {
	select {
	case <-s.unbindOut:
	default:
		if !s.quiesce.Load() {
			return true
		}
		s.inboundDone()
		select {
		case <-s.unbindOut:
		case <-s.closing:
			return false
		}
		s.inPending.Add(1)
	}
	if s.role == RoleSMSC {
		s.refuse(h, drainStatus)
		s.inboundDone()
		return false
	}
	return true
}

// writeFailed ends the session after a failed write; the writer closes the connection.
func (s *Session) writeFailed(err error) { s.shutdown(err, false) }

// shutdown starts the end of the session once: with flush, what is queued is written before the
// connection closes; without, the connection closes now. The reader then finishes the session.
func (s *Session) shutdown(reason error, flush bool) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closeReason = reason
		s.mu.Unlock()
		close(s.closing)
		s.out.stop(!flush)
		if !flush {
			s.conn.Close()
		}
		s.out.wake()
	})
}

// finish ends the session once the reader has stopped: it waits for the writer, fails every pending
// request (lost), and tells the Handler.
func (s *Session) finish() {
	s.shutdown(io.EOF, false)
	<-s.out.done
	s.expiry.Stop()
	s.bindTmr.Stop()
	if s.enquire != nil {
		s.enquire.Stop()
	}
	s.mu.Lock()
	s.win.closed = true
	var pend []pending
	for s.win.head >= 0 {
		pend = append(pend, s.win.take(s.win.head))
	}
	reason := s.closeReason
	s.mu.Unlock()
	s.state.Store(uint32(StateClosed))
	var lost []Request
	for i := range pend {
		p := &pend[i]
		s.lost.Add(1)
		if p.w == nil && p.done == nil && p.kind == kindUser {
			lost = append(lost, p.req)
			s.release()
			continue
		}
		s.complete(p, Response{Sequence: p.seq}, ErrLost)
	}
	s.log.Debug().AnErr("reason", reason).Int("lost", len(pend)).Msg("session ended")
	if s.cfg.Meter != nil {
		s.cfg.Meter.end(s)
	}
	s.h.HandleClosed(s, reason)
	s.h.Terminate(s, lost)
	close(s.done)
}
