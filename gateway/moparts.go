package gateway

import (
	"bytes"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// moReassembly bounds the reassembly of long MO for the API's events and webhooks: at most
// MaxPending incomplete messages and MaxOctets of their parts are held in memory (the oldest
// incomplete message is given up to make room), and a message whose parts do not all arrive within
// Timeout of its first is given up too. A message given up reaches the API as the parts it had, one
// event each (what the API got before reassembly), with a warning in the log: every part an upstream
// had answered reaches the API once, whole or alone.
//
// The parts are held in memory only: a restart loses a partly received message for the API (the parts
// that came before it are not published). The account's deliver_sm parts are durable as before, since
// each part is queued for the account, and answered to the upstream, on its own.
var moReassembly = pdu.ReassemblerConfig{
	Timeout:    5 * time.Minute,
	MaxPending: pdu.DefaultReassemblyMaxSets,
	MaxOctets:  16 << 20,
}

// initReassembly builds r's Reassembler; its expiry runs every tenth of cfg.Timeout while
// incomplete messages are held, so a given-up message is published within 1.1 Timeout of its first
// part even when nothing more comes.
func (r *fromUpstream) initReassembly(cfg pdu.ReassemblerConfig) {
	cfg.OnEvict = r.givenUp
	reasm, err := pdu.NewReassembler(cfg)
	if err != nil {
		panic("gateway: moReassembly: " + err.Error()) // a constant of this package
	}
	r.reasm = reasm
	r.expTick = cfg.Timeout / 10
	if r.expTick <= 0 {
		r.expTick = pdu.DefaultReassemblyTimeout / 10
	}
}

// publishMO publishes an MO part queued for account: at once when it is a whole message, else once
// its message is whole. A part already held (an upstream resending it) publishes nothing; parts may
// come in any order. Reassembly is keyed by upstream, then by source, destination, link mode,
// reference and total (pdu.Reassembler), so two upstreams' references never meet.
func (r *fromUpstream) publishMO(upstream, account string, d *pdu.DeliverSM, del *store.Delivery) {
	part, err := pdu.ReadPart(d)
	if err != nil || part.Mode == 0 || part.Total <= 1 {
		// Not a part of a long message, or one whose link cannot be read: it is whole as it is.
		r.events.publish(Event{Kind: EventMO, Account: account, MO: del, At: del.CreatedAt})
		return
	}
	msg, err := r.reasm.Add(upstream, part)
	if err != nil {
		r.log.Warn().Err(err).Str("upstream", upstream).Str("account", account).Uint16("ref", part.Ref).
			Msg("MO part not reassembled; published alone")
		r.events.publish(Event{Kind: EventMO, Account: account, MO: del, At: del.CreatedAt})
		return
	}
	r.armExpiry()
	if msg == nil {
		return
	}
	whole := wholeMO(del, msg)
	r.events.publish(Event{Kind: EventMO, Account: account, MO: whole, At: whole.CreatedAt})
	r.log.Debug().Str("upstream", upstream).Str("account", account).Uint16("ref", msg.Ref).Int("parts", int(msg.Total)).
		Msg("long MO reassembled")
}

// wholeMO is a reassembled MO as the API sees it: the completing part's fields (addresses, data
// coding, time), the whole user data in short_message, with a UDH only when the first part's carried
// IEs other than concatenation (port addressing, say), and its TLVs without the sar_* ones and
// message_payload.
func wholeMO(last *store.Delivery, msg *pdu.Message) *store.Delivery {
	w := &store.Delivery{
		Account: last.Account, Kind: store.DeliveryMO, Source: last.Source, Destination: last.Destination,
		ESMClass: last.ESMClass &^ pdu.EsmClassUDHI, ProtocolID: last.ProtocolID, DataCoding: msg.DataCoding,
		ShortMessage: msg.Data, CreatedAt: last.CreatedAt,
	}
	if len(msg.Header) > 0 {
		w.ESMClass |= pdu.EsmClassUDHI
		sm := make([]byte, 0, 1+len(msg.Header)+len(msg.Data))
		sm = append(append(append(sm, byte(len(msg.Header))), msg.Header...), msg.Data...)
		w.ShortMessage = sm
	}
	opts := pdu.Options(bytes.Clone(last.TLVs))
	for _, t := range []pdu.Tag{pdu.TagSARMsgRefNum, pdu.TagSARTotalSegments, pdu.TagSARSegmentSeqnum, pdu.TagMessagePayload} {
		opts.Delete(t)
	}
	if len(opts) > 0 {
		w.TLVs = opts
	}
	return w
}

// givenUp publishes the parts of a message the Reassembler gave up on, one event each.
func (r *fromUpstream) givenUp(e pdu.Evicted) {
	account, ok := r.MOAccount(e.Destination)
	if !ok {
		return // the MO routes no longer send it anywhere
	}
	held := 0
	now := time.Now()
	for _, data := range e.Parts {
		if data == nil {
			continue
		}
		held++
		r.events.publish(Event{Kind: EventMO, Account: account, At: now, MO: &store.Delivery{
			Account: account, Kind: store.DeliveryMO,
			Source: store.Address{Addr: e.Source}, Destination: store.Address{Addr: e.Destination},
			DataCoding: e.DataCoding, ShortMessage: data, CreatedAt: now,
		}})
	}
	r.log.Warn().Str("upstream", e.Key).Str("account", account).Stringer("reason", e.Reason).Uint16("ref", e.Ref).
		Int("parts", held).Int("total", int(e.Total)).Msg("long MO incomplete; its parts published alone")
}

// armExpiry makes sure the Reassembler's expiry runs while it holds incomplete messages. A timer
// rather than a ticker: nothing runs while no long MO is pending.
func (r *fromUpstream) armExpiry() {
	r.expMu.Lock()
	defer r.expMu.Unlock()
	if r.expNext != nil || r.reasm.Pending() == 0 {
		return
	}
	r.expNext = time.AfterFunc(r.expTick, func() {
		r.reasm.Expire()
		r.expMu.Lock()
		r.expNext = nil
		r.expMu.Unlock()
		r.armExpiry()
	})
}
