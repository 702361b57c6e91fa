package session

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// sessionCounters count what crosses a session. Every PDU is counted once, by direction, command and
// status (pdus, which a Meter also reads); the operator's totals in Info (requests, responses,
// errors, submit_sm, deliver_sm, enquire_link, throttled) are sums of those counts, taken when Info is
// read, not kept beside them. The reader and the writers update them with atomic adds only (no lock
// on the PDU path); Info reads them without stopping anything, so a snapshot may be a PDU or two
// apart between counters.
type sessionCounters struct {
	unparsable atomic.Uint64 // PDUs read that could not be decoded
	lastRead   atomic.Int64  // unix nanoseconds of the last PDU read; 0 before any
	ifVersion  atomic.Uint32 // interface_version of the bind; 0 before the bind
	boundAt    atomic.Int64  // unix nanoseconds of the bind; 0 before it
	pdus       pduCounters   // by direction, command and status
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
}

// unreadable counts a PDU read at at that could not be decoded.
func (c *sessionCounters) unreadable(at time.Time) {
	c.lastRead.Store(at.UnixNano())
	c.unparsable.Add(1)
}

// wrote counts a PDU written (queued for the writer).
func (c *sessionCounters) wrote(id pdu.CommandID, status pdu.CommandStatus) {
	c.pdus.count(Out, id, status)
}

// fill copies the counters into in, summing the per-command counts into the operator's totals.
func (c *sessionCounters) fill(in *Info) {
	var n Counts
	c.pdus.fill(&n)
	ok, throttled := statusIndex(pdu.ESME_ROK), statusIndex(pdu.ESME_RTHROTTLED)
	submit, deliver, enquire := commandIndex(pdu.SubmitSMID), commandIndex(pdu.DeliverSMID), commandIndex(pdu.EnquireLinkID)
	var reqs, resps, respErrs [2]uint64
	for d := range n.Requests {
		for i := range n.Requests[d] {
			reqs[d] += n.Requests[d][i]
			for j, v := range n.Responses[d][i] {
				resps[d] += v
				if j != ok {
					respErrs[d] += v
					switch i {
					case submit:
						in.SubmitSMErrors += v
					case deliver:
						in.DeliverSMErrors += v
					}
				}
				if j == throttled {
					in.Throttled += v
				}
			}
		}
	}
	in.RequestsIn, in.RequestsOut = reqs[In], reqs[Out]
	in.ResponsesIn, in.ResponsesOut = resps[In], resps[Out]
	in.ResponseErrorsIn, in.ResponseErrorsOut = respErrs[In], respErrs[Out]
	in.SubmitSMIn, in.SubmitSMOut = n.Requests[In][submit], n.Requests[Out][submit]
	in.DeliverSMIn, in.DeliverSMOut = n.Requests[In][deliver], n.Requests[Out][deliver]
	in.EnquireLinks = n.Requests[In][enquire] + n.Requests[Out][enquire]
	in.Unparsable = c.unparsable.Load()
	if v := c.lastRead.Load(); v != 0 {
		in.LastActivity = time.Unix(0, v)
	}
	if v := c.boundAt.Load(); v != 0 {
		in.BoundAt = time.Unix(0, v)
	}
	in.InterfaceVersion = uint8(c.ifVersion.Load())
}

func isTLS(c net.Conn) bool {
	_, ok := c.(*tls.Conn)
	return ok
}
