package gateway

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// inFlightWait bounds how long a cancel_sm or replace_sm waits for a part in flight (claimed by an
// upstream's bind, its submit_sm_resp not yet in) to be answered, so that it can be forwarded with
// the upstream id the answer brings.
const inFlightWait = 2 * time.Second

// editor answers cancel_sm and replace_sm from ESMEs, for the account's own messages (another
// account's message id is refused as an unknown one). Parts still queued here are cancelled or
// replaced in the store (store.Edits), so they never go out, or go out with the new text; parts
// already sent are forwarded to the upstream that holds them, with its upstream id, on that
// upstream's bind, and its answer is passed back.
//
// Not supported: cancel_sm without a message_id (all messages of a service_type, source and
// destination) is refused with ESME_RCANCELFAIL; replace_sm of a message split into several parts
// here (an API submission) is refused with ESME_RREPLACEFAIL.
type editor struct {
	st   store.Store
	ups  *upstreamSet
	work *pool
	log  zerolog.Logger
}

func newEditor(st store.Store, ups *upstreamSet, work *pool, log zerolog.Logger) *editor {
	return &editor{st: st, ups: ups, work: work, log: log.With().Str("component", "edit").Logger()}
}

// handle answers a cancel_sm or replace_sm from account, off the session's reader.
func (e *editor) handle(m Inbound, account string) {
	if e == nil {
		_ = m.Respond(pdu.ESME_RINVCMDID, nil)
		return
	}
	switch b := m.Request.Body.(type) {
	case *pdu.CancelSM:
		c := *b
		c.ServiceType, c.MessageID = strings.Clone(b.ServiceType), strings.Clone(b.MessageID)
		c.SourceAddr, c.DestinationAddr = strings.Clone(b.SourceAddr), strings.Clone(b.DestinationAddr)
		e.work.do(func() { _ = m.Respond(e.cancel(account, &c), nil) })
	case *pdu.ReplaceSM:
		r := *b
		r.MessageID, r.SourceAddr = strings.Clone(b.MessageID), strings.Clone(b.SourceAddr)
		r.ScheduleDeliveryTime, r.ValidityPeriod = strings.Clone(b.ScheduleDeliveryTime), strings.Clone(b.ValidityPeriod)
		r.ShortMessage = bytes.Clone(b.ShortMessage)
		e.work.do(func() { _ = m.Respond(e.replace(account, &r), nil) })
	default:
		_ = m.Respond(pdu.ESME_RINVCMDID, nil)
	}
}

// lookup reads the account's message id, checking the addresses the request gives (empty: not
// checked). Any mismatch is fail, as an unknown id.
func (e *editor) lookup(ctx context.Context, account, id, src, dst string, fail pdu.CommandStatus) (*store.Message, pdu.CommandStatus) {
	if id == "" {
		return nil, fail
	}
	msg, err := e.st.GetMessage(ctx, MessageIDKey(id))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fail
	case err != nil:
		e.log.Warn().Err(err).Str("message_id", id).Msg("message not read")
		return nil, pdu.ESME_RSYSERR
	case msg.Account != account, src != "" && src != msg.Source.Addr, dst != "" && dst != msg.Destination.Addr:
		return nil, fail
	}
	return msg, pdu.ESME_ROK
}

// editStatus is the answer to a store edit's error.
func (e *editor) editStatus(err error, id string, fail pdu.CommandStatus) pdu.CommandStatus {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return fail
	}
	e.log.Warn().Err(err).Str("message_id", id).Msg("message not edited: store failed")
	return pdu.ESME_RSYSERR
}

// cancel cancels the queued parts of the message in the store and forwards a cancel_sm for those
// sent. ESME_ROK when every part that was not final is cancelled, here or upstream.
func (e *editor) cancel(account string, c *pdu.CancelSM) pdu.CommandStatus {
	ctx, done := context.WithTimeout(context.Background(), storeTimeout)
	defer done()
	msg, status := e.lookup(ctx, account, c.MessageID, c.SourceAddr, c.DestinationAddr, pdu.ESME_RCANCELFAIL)
	if status != pdu.ESME_ROK {
		return status
	}
	msg, here, err := e.st.CancelMessage(ctx, msg.ID, account)
	if err != nil {
		return e.editStatus(err, c.MessageID, pdu.ESME_RCANCELFAIL)
	}
	msg, sent, inFlight := e.settled(ctx, msg)
	if len(here) == 0 && len(sent) == 0 {
		return pdu.ESME_RCANCELFAIL // final already, or still in flight
	}
	status = pdu.ESME_ROK
	if inFlight {
		status = pdu.ESME_RCANCELFAIL
	}
	for _, i := range sent {
		p := &msg.Parts[i]
		st := e.forward(ctx, p.Upstream, &pdu.CancelSM{
			ServiceType: msg.ServiceType, MessageID: p.UpstreamID,
			SourceAddrTON: msg.Source.TON, SourceAddrNPI: msg.Source.NPI, SourceAddr: msg.Source.Addr,
			DestAddrTON: msg.Destination.TON, DestAddrNPI: msg.Destination.NPI, DestinationAddr: msg.Destination.Addr,
		}, pdu.ESME_RCANCELFAIL)
		if st != pdu.ESME_ROK {
			if status == pdu.ESME_ROK {
				status = st
			}
			continue
		}
		if _, _, err := e.st.UpdatePart(ctx, store.PartUpdate{MessageID: msg.ID, Part: i, Status: pdu.DELETED}); err != nil {
			e.log.Warn().Err(err).Str("message_id", msg.ID).Int("part", i).Msg("cancelled upstream, not recorded")
		}
	}
	e.log.Info().Str("account", account).Str("message_id", msg.ID).Ints("here", here).Ints("upstream", sent).
		Stringer("status", status).Msg("cancel_sm")
	return status
}

// replace replaces the message's part in the store while it is queued, or forwards a replace_sm
// to the upstream that holds it.
func (e *editor) replace(account string, r *pdu.ReplaceSM) pdu.CommandStatus {
	ctx, done := context.WithTimeout(context.Background(), storeTimeout)
	defer done()
	msg, status := e.lookup(ctx, account, r.MessageID, r.SourceAddr, "", pdu.ESME_RREPLACEFAIL)
	if status != pdu.ESME_ROK {
		return status
	}
	now := time.Now()
	schedule, err := pdu.ParseTime(r.ScheduleDeliveryTime, now)
	if err != nil {
		return pdu.ESME_RINVSCHED
	}
	validity, err := pdu.ParseTime(r.ValidityPeriod, now)
	if err != nil {
		return pdu.ESME_RINVEXPIRY
	}
	if len(r.ShortMessage) == 0 {
		return pdu.ESME_RINVMSGLEN // canned messages (sm_default_msg_id) are not kept here
	}
	rep := store.Replacement{ShortMessage: r.ShortMessage, RegisteredDelivery: r.RegisteredDelivery, Validity: validity, Schedule: schedule}
	msg, here, err := e.st.ReplaceMessage(ctx, msg.ID, account, rep)
	if err != nil {
		return e.editStatus(err, r.MessageID, pdu.ESME_RREPLACEFAIL)
	}
	if len(here) > 0 {
		e.log.Info().Str("account", account).Str("message_id", msg.ID).Msg("replace_sm done in the queue")
		return pdu.ESME_ROK
	}
	msg, sent, _ := e.settled(ctx, msg)
	if len(sent) == 0 {
		return pdu.ESME_RREPLACEFAIL // final already, or still in flight
	}
	p := &msg.Parts[sent[0]]
	fwd := *r
	fwd.MessageID = p.UpstreamID
	fwd.SourceAddrTON, fwd.SourceAddrNPI, fwd.SourceAddr = msg.Source.TON, msg.Source.NPI, msg.Source.Addr
	status = e.forward(ctx, p.Upstream, &fwd, pdu.ESME_RREPLACEFAIL)
	e.log.Info().Str("account", account).Str("message_id", msg.ID).Str("upstream", p.Upstream).Stringer("status", status).Msg("replace_sm forwarded")
	return status
}

// settled waits (up to inFlightWait) for the parts of msg in flight to be answered, and returns the
// message then, the parts sent and not final (to forward), and whether parts are still in flight.
func (e *editor) settled(ctx context.Context, msg *store.Message) (*store.Message, []int, bool) {
	deadline := time.Now().Add(inFlightWait)
	for {
		var sent []int
		inFlight := false
		for i := range msg.Parts {
			switch p := &msg.Parts[i]; {
			case p.Status.Final():
			case p.UpstreamID != "":
				sent = append(sent, i)
			default:
				inFlight = true
			}
		}
		if !inFlight || time.Now().After(deadline) {
			return msg, sent, inFlight
		}
		select {
		case <-ctx.Done():
			return msg, sent, inFlight
		case <-time.After(20 * time.Millisecond):
		}
		m, err := e.st.GetMessage(ctx, msg.ID)
		if err != nil {
			return msg, sent, inFlight
		}
		msg = m
	}
}

// forward sends body on the bind of upstream and returns its answer's status; fail when there is no
// bind or no answer.
func (e *editor) forward(ctx context.Context, upstream string, body pdu.Body, fail pdu.CommandStatus) pdu.CommandStatus {
	u, err := e.ups.get(upstream)
	if err != nil {
		e.log.Warn().Err(err).Msg("edit not forwarded: unknown upstream")
		return fail
	}
	s := u.client.Session()
	if s == nil {
		e.log.Warn().Str("upstream", upstream).Stringer("command", body.CommandID()).Msg("edit not forwarded: upstream not bound")
		return fail
	}
	resp, err := s.Send(ctx, body)
	if err != nil {
		e.log.Warn().Err(err).Str("upstream", upstream).Stringer("command", body.CommandID()).Msg("edit not answered upstream")
		return fail
	}
	return resp.Status
}

// queryResp is the query_sm_resp of msg: what the API's GetMessage shows of it. The state is the
// message's aggregate status; the final date is when its last part reached its final state (the
// latest of the parts' done times the API shows), in UTC; the error is the one of the part that
// decided the status (the first part in that state with an error), as a command status or
// receipt err: code, capped at 255.
func queryResp(msg *store.Message) *pdu.QuerySMResp {
	resp := &pdu.QuerySMResp{MessageID: msg.ID, MessageState: msg.Status}
	if msg.Status.Final() {
		var done time.Time
		for i := range msg.Parts {
			if p := &msg.Parts[i]; p.Status.Final() && p.UpdatedAt.After(done) {
				done = p.UpdatedAt
			}
		}
		if done.IsZero() {
			done = msg.UpdatedAt
		}
		resp.FinalDate = string(pdu.AppendAbsoluteTime(nil, done.UTC()))
	}
	for i := range msg.Parts {
		if p := &msg.Parts[i]; p.Error != 0 && (p.Status == msg.Status || resp.ErrorCode == 0) {
			resp.ErrorCode = uint8(min(p.Error, 255))
			if p.Status == msg.Status {
				break
			}
		}
	}
	return resp
}

// MessageIDKey is the id an ESME (or an API caller) gives, as the store keeps it: our ids are decimal digits
// or lower-case hex (hex and uuid forms), so an id given in upper case (as some peers print hex) is the
// same id and is looked up in lower case.
func MessageIDKey(id string) string {
	for i := 0; i < len(id); i++ {
		if c := id[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(id)
		}
	}
	return id
}
