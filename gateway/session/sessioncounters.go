package session

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// sessionCounters count what crosses a session, by direction and kind. The reader and the writers
// update them with atomic adds only (no lock on the PDU path); Info reads them without stopping
// anything, so a snapshot may be a PDU or two apart between counters.
type sessionCounters struct {
	requestsIn, requestsOut     atomic.Uint64 // requests read / written (bind, enquire_link, submit_sm, ...)
	responsesIn, responsesOut   atomic.Uint64 // responses (generic_nack included) read / written
	respErrorsIn, respErrorsOut atomic.Uint64 // those of them with a non-OK command_status
	submitsIn, submitsOut       atomic.Uint64 // submit_sm read / written
	submitErrors                atomic.Uint64 // submit_sm_resp with an error status, either way
	deliversIn, deliversOut     atomic.Uint64 // deliver_sm read / written
	deliverErrors               atomic.Uint64 // deliver_sm_resp with an error status, either way
	enquireLinks                atomic.Uint64 // enquire_link requests, both ways
	throttled                   atomic.Uint64 // responses carrying ESME_RTHROTTLED, either way
	unparsable                  atomic.Uint64 // PDUs read that could not be decoded
	lastRead                    atomic.Int64  // unix nanoseconds of the last PDU read; 0 before any
	ifVersion                   atomic.Uint32 // interface_version of the bind; 0 before the bind
	boundAt                     atomic.Int64  // unix nanoseconds of the bind; 0 before it
	pdus                        pduCounters   // by command and status, for metrics (see Meter)
}

// bound records a successful bind made with interface_version version.
func (c *sessionCounters) bound(version uint8) {
	c.ifVersion.Store(uint32(version))
	c.boundAt.Store(time.Now().UnixNano())
}

// read counts a PDU read at at (the reader's clock for the burst it came in).
func (c *sessionCounters) read(h pdu.Header, at time.Time) {
	c.lastRead.Store(at.UnixNano())
	c.pdus.count(In, h.ID, h.Status)
	c.count(h.ID, h.Status, &c.requestsIn, &c.responsesIn, &c.respErrorsIn, &c.submitsIn, &c.deliversIn)
}

// unreadable counts a PDU read at at that could not be decoded.
func (c *sessionCounters) unreadable(at time.Time) {
	c.lastRead.Store(at.UnixNano())
	c.unparsable.Add(1)
}

// wrote counts a PDU written (queued for the writer).
func (c *sessionCounters) wrote(id pdu.CommandID, status pdu.CommandStatus) {
	c.pdus.count(Out, id, status)
	c.count(id, status, &c.requestsOut, &c.responsesOut, &c.respErrorsOut, &c.submitsOut, &c.deliversOut)
}

func (c *sessionCounters) count(id pdu.CommandID, status pdu.CommandStatus, reqs, resps, respErrs, submits, delivers *atomic.Uint64) {
	if !id.IsResponse() {
		reqs.Add(1)
		switch id {
		case pdu.SubmitSMID:
			submits.Add(1)
		case pdu.DeliverSMID:
			delivers.Add(1)
		case pdu.EnquireLinkID:
			c.enquireLinks.Add(1)
		}
		return
	}
	resps.Add(1)
	if status == pdu.ESME_ROK {
		return
	}
	respErrs.Add(1)
	switch id {
	case pdu.SubmitSMRespID:
		c.submitErrors.Add(1)
	case pdu.DeliverSMRespID:
		c.deliverErrors.Add(1)
	}
	if status == pdu.ESME_RTHROTTLED {
		c.throttled.Add(1)
	}
}

// fill copies the counters into in.
func (c *sessionCounters) fill(in *Info) {
	in.RequestsIn, in.RequestsOut = c.requestsIn.Load(), c.requestsOut.Load()
	in.ResponsesIn, in.ResponsesOut = c.responsesIn.Load(), c.responsesOut.Load()
	in.ResponseErrorsIn, in.ResponseErrorsOut = c.respErrorsIn.Load(), c.respErrorsOut.Load()
	in.SubmitSMIn, in.SubmitSMOut, in.SubmitSMErrors = c.submitsIn.Load(), c.submitsOut.Load(), c.submitErrors.Load()
	in.DeliverSMIn, in.DeliverSMOut, in.DeliverSMErrors = c.deliversIn.Load(), c.deliversOut.Load(), c.deliverErrors.Load()
	in.EnquireLinks, in.Throttled, in.Unparsable = c.enquireLinks.Load(), c.throttled.Load(), c.unparsable.Load()
	if n := c.lastRead.Load(); n != 0 {
		in.LastActivity = time.Unix(0, n)
	}
	if n := c.boundAt.Load(); n != 0 {
		in.BoundAt = time.Unix(0, n)
	}
	in.InterfaceVersion = uint8(c.ifVersion.Load())
}

func isTLS(c net.Conn) bool {
	_, ok := c.(*tls.Conn)
	return ok
}
