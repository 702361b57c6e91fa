package gateway

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// submit_multi is taken as one message per SME destination: each goes through the same validation,
// routing and store.AcceptMessage as a submit_sm of its own (concurrently, on the pool, so that they
// share group commits), gets a gateway message id of its own, is queued for its own route and has its
// own receipt, which carries that id. Distribution lists are not kept here: a dl_name is refused.
//
// SMPP 3.4 gives submit_multi_resp one message_id. It is the id of the first destination accepted,
// in the order of the dest_address entries; the other destinations' ids are not in the answer. Each
// destination's receipt carries its own id (and the destination as its source_addr), and query_sm
// answers for each id. A refused destination is in unsuccess_sme with the status a submit_sm to it
// would have got. When every destination is refused, the answer's status is theirs if they share one,
// else ESME_RSUBMITFAIL, and the unsuccess_sme list comes with it all the same.

// multiDest is what became of one dest_address entry.
type multiDest struct {
	addr   pdu.UnsuccessSME // the address, and the status when refused
	msg    *store.Message   // validated and routed; nil when refused
	stored bool             // accepted into the store
}

func (sub *submitter) submitMulti(m Inbound, account string, b *pdu.SubmitMulti) {
	if len(b.DestAddresses) == 0 {
		sub.stats.rejected.Add(1)
		_ = m.Respond(pdu.ESME_RINVNUMDESTS, nil)
		return
	}
	now := time.Now()
	dests := make([]multiDest, len(b.DestAddresses))
	valid := 0
	for i, d := range b.DestAddresses {
		md := &dests[i]
		switch d.Flag {
		case 1: // SME address
			md.addr = pdu.UnsuccessSME{TON: d.TON, NPI: d.NPI, Addr: strings.Clone(d.Addr)}
			sm := &pdu.SubmitSM{
				ServiceType:   b.ServiceType,
				SourceAddrTON: b.SourceAddrTON, SourceAddrNPI: b.SourceAddrNPI, SourceAddr: b.SourceAddr,
				DestAddrTON: d.TON, DestAddrNPI: d.NPI, DestinationAddr: d.Addr,
				EsmClass: b.EsmClass, ProtocolID: b.ProtocolID, PriorityFlag: b.PriorityFlag,
				ScheduleDeliveryTime: b.ScheduleDeliveryTime, ValidityPeriod: b.ValidityPeriod,
				RegisteredDelivery: b.RegisteredDelivery, ReplaceIfPresentFlag: b.ReplaceIfPresentFlag,
				DataCoding: b.DataCoding, SMDefaultMsgID: b.SMDefaultMsgID, ShortMessage: b.ShortMessage, Options: b.Options,
			}
			msg, err := sub.fromSubmitSM(account, sm, now)
			if err != nil {
				md.addr.ErrorStatus = statusForAcceptError(err)
				sub.log.Info().Str("account", account).Str("dest", d.Addr).Err(err).Stringer("status", md.addr.ErrorStatus).Msg("submit_multi destination refused")
				continue
			}
			md.msg = msg
			valid++
		case 2: // distribution list name
			// ESME_RCNTSUBDL ("cannot submit to distribution list") rather than ESME_RINVDLNAME: the
			// name may be fine, the gateway keeps no lists at all.
			md.addr = pdu.UnsuccessSME{Addr: strings.Clone(d.DLName), ErrorStatus: pdu.ESME_RCNTSUBDL}
			sub.log.Info().Str("account", account).Str("dl_name", d.DLName).Msg("submit_multi distribution list refused")
		default:
			md.addr = pdu.UnsuccessSME{TON: d.TON, NPI: d.NPI, Addr: strings.Clone(d.Addr), ErrorStatus: pdu.ESME_RINVDESTFLAG}
		}
	}
	if valid == 0 {
		sub.answerMulti(m, account, dests)
		return
	}
	// The last accept to finish answers: no goroutine waits for the others.
	var left atomic.Int32
	left.Store(int32(valid))
	for i := range dests {
		md := &dests[i]
		if md.msg == nil {
			continue
		}
		sub.work.do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err := sub.accept(ctx, md.msg)
			cancel()
			if err != nil {
				md.addr.ErrorStatus = statusForAcceptError(err)
			} else {
				md.stored = true
			}
			if left.Add(-1) == 0 {
				sub.answerMulti(m, account, dests)
			}
		})
	}
}

// answerMulti sends the submit_multi_resp of dests, every accept done.
func (sub *submitter) answerMulti(m Inbound, account string, dests []multiDest) {
	resp := &pdu.SubmitMultiResp{}
	var refused pdu.CommandStatus
	mixed := false
	for _, md := range dests {
		if md.stored {
			if resp.MessageID == "" {
				resp.MessageID = md.msg.ID
			}
			continue
		}
		sub.stats.rejected.Add(1)
		resp.UnsuccessSMEs = append(resp.UnsuccessSMEs, md.addr)
		if refused != 0 && refused != md.addr.ErrorStatus {
			mixed = true
		}
		refused = md.addr.ErrorStatus
	}
	status := pdu.ESME_ROK
	switch {
	case resp.MessageID != "":
	case mixed:
		status = pdu.ESME_RSUBMITFAIL
	default:
		status = refused
	}
	if err := m.Respond(status, resp); err != nil {
		sub.log.Warn().Err(err).Str("account", account).Str("message_id", resp.MessageID).Msg("submit_multi_resp not sent")
	}
}
