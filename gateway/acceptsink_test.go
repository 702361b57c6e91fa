package gateway

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/smppgw/smppgw/pdu"
)

// acceptSink is a MessageHandler that accepts every submission at once with a fresh message id (hex
// counter), and refuses query_sm, cancel_sm and replace_sm with their failure statuses. It is the
// trivial in-process responder of these tests and benchmarks.
type acceptSink struct {
	next atomic.Uint64
	// OnMessage, if set, sees each request before it is answered.
	OnMessage func(Inbound)
}

var acceptRespPool = sync.Pool{New: func() any { return new(pdu.SubmitSMResp) }}

// HandleMessage implements MessageHandler.
func (a *acceptSink) HandleMessage(m Inbound) {
	if a.OnMessage != nil {
		a.OnMessage(m)
	}
	var err error
	switch m.Request.Body.(type) {
	case *pdu.SubmitSM:
		// Respond encodes before returning, so the body can be reused at once.
		r := acceptRespPool.Get().(*pdu.SubmitSMResp)
		r.MessageID = strconv.FormatUint(a.next.Add(1), 16)
		err = m.Respond(pdu.ESME_ROK, r)
		r.MessageID = ""
		acceptRespPool.Put(r)
	case *pdu.DataSM:
		err = m.Respond(pdu.ESME_ROK, &pdu.DataSMResp{MessageID: strconv.FormatUint(a.next.Add(1), 16)})
	case *pdu.SubmitMulti:
		err = m.Respond(pdu.ESME_ROK, &pdu.SubmitMultiResp{MessageID: strconv.FormatUint(a.next.Add(1), 16)})
	case *pdu.QuerySM:
		err = m.Respond(pdu.ESME_RQUERYFAIL, nil)
	case *pdu.CancelSM:
		err = m.Respond(pdu.ESME_RCANCELFAIL, nil)
	case *pdu.ReplaceSM:
		err = m.Respond(pdu.ESME_RREPLACEFAIL, nil)
	default:
		err = m.Respond(pdu.ESME_RINVCMDID, nil)
	}
	if err != nil {
		m.Session.Logger().Debug().Err(err).Msg("answer not sent")
	}
}

// Accepted is how many message ids acceptSink has handed out.
func (a *acceptSink) Accepted() uint64 { return a.next.Load() }
