package gateway

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// LongMOMode is how a long MO (UDH 8- or 16-bit, or SAR TLVs) reaches an account's binds.
type LongMOMode string

// Long MO modes.
const (
	// LongMOParts is the default: each part as it came, one deliver_sm each, queued durably and
	// answered to the upstream on its own; the ESME reassembles.
	LongMOParts LongMOMode = "parts"
	// LongMOPayload reassembles the parts first and sends the whole as one deliver_sm carrying it in
	// message_payload (short_message empty, sar_* TLVs and the concatenation UDH gone; other UDH IEs
	// kept, with UDHI set). The parts are held in memory until the last comes (each answered to the
	// upstream at once, the last once the whole is queued), so a restart loses a partly received
	// message; one that stays incomplete past moReassembly.Timeout (or is pushed out by its bounds)
	// is queued as the parts it had, without their link, rather than lost.
	LongMOPayload LongMOMode = "payload"
)

// ParseLongMOMode reads a configured long-MO mode; "" is LongMOParts.
func ParseLongMOMode(s string) (LongMOMode, error) {
	switch m := LongMOMode(s); m {
	case "", LongMOParts:
		return LongMOParts, nil
	case LongMOPayload:
		return m, nil
	}
	return "", fmt.Errorf("long_mo %q is neither parts nor payload", s)
}

// heldKey is the reassembly key of the parts held for accounts that get long MO whole, kept apart
// from the parts already queued (keyed by the upstream's name alone) so that givenUp knows which
// parts still need queueing. Upstream names hold no NUL.
func heldKey(upstream string) string { return upstream + "\x00held" }

// upstreamOfKey returns the upstream a reassembly key names and whether its parts were held.
func upstreamOfKey(key string) (string, bool) {
	up, held := strings.CutSuffix(key, "\x00held")
	return up, held
}

// wholeKey names a long MO whose whole could not be queued (fromUpstream.unqueued).
type wholeKey struct {
	upstream, source, dest string
	mode                   pdu.SplitMode
	ref                    uint16
	total                  uint8
}

// maxUnqueued bounds fromUpstream.unqueued; past it the oldest is not kept (logged as lost).
const maxUnqueued = 1024

// moWhole takes an MO part for an account that gets long MO whole. It reports false when d is not
// a part of a long message (or its link cannot be read): d then goes to the account as it is.
// Otherwise the part is held and answered ESME_ROK, and the part that completes its message is
// answered once the whole is queued: ESME_RX_T_APPN when the store fails, and the whole is kept
// to be queued when that part comes again (the Reassembler would take it for a late duplicate).
func (r *fromUpstream) moWhole(ctx context.Context, upstream, account string, d *pdu.DeliverSM, del *store.Delivery) (pdu.CommandStatus, bool) {
	part, err := pdu.ReadPart(d)
	if err != nil || part.Mode == 0 || part.Total <= 1 {
		return 0, false
	}
	key := wholeKey{upstream: upstream, source: part.Source, dest: part.Destination, mode: part.Mode, ref: part.Ref, total: part.Total}
	msg, err := r.reasm.Add(heldKey(upstream), part)
	if err != nil {
		r.log.Warn().Err(err).Str("upstream", upstream).Str("account", account).Uint16("ref", part.Ref).
			Msg("MO part not reassembled; queued alone")
		return 0, false
	}
	r.armExpiry()
	var whole *store.Delivery
	switch {
	case msg != nil:
		whole = wholeMO(del, msg)
	default:
		r.unqMu.Lock()
		whole = r.unqueued[key]
		r.unqMu.Unlock()
		if whole == nil {
			r.stats.mo()
			return pdu.ESME_ROK, true // held, or a copy of a part held or delivered already
		}
	}
	if err := r.st.EnqueueDelivery(ctx, payloadDelivery(whole)); err != nil {
		r.log.Error().Err(err).Str("upstream", upstream).Str("account", account).Uint16("ref", part.Ref).
			Msg("long MO not queued; the upstream is asked to send its last part again")
		r.unqMu.Lock()
		if r.unqueued == nil {
			r.unqueued = make(map[wholeKey]*store.Delivery)
		}
		if len(r.unqueued) >= maxUnqueued {
			for k := range r.unqueued {
				r.log.Error().Str("upstream", k.upstream).Uint16("ref", k.ref).Msg("long MO not queued and no longer kept: lost")
				delete(r.unqueued, k)
				break
			}
		}
		r.unqueued[key] = whole
		r.unqMu.Unlock()
		return pdu.ESME_RX_T_APPN, true
	}
	r.unqMu.Lock()
	delete(r.unqueued, key)
	r.unqMu.Unlock()
	r.stats.mo()
	r.deliv.startIfBound(account)
	r.events.publish(Event{Kind: EventMO, Account: account, Upstream: upstream, MO: whole, At: whole.CreatedAt})
	r.log.Debug().Str("upstream", upstream).Str("account", account).Uint16("ref", part.Ref).Int("parts", int(part.Total)).
		Msg("long MO reassembled and queued whole")
	return pdu.ESME_ROK, true
}

// payloadDelivery is the deliver_sm of a reassembled MO for an account that gets long MO whole: its
// user data (with its UDH, if wholeMO kept one) in message_payload and short_message empty, as SMPP
// 3.4 section 5.3.2.32 has it: the two may not both carry the message.
func payloadDelivery(w *store.Delivery) *store.Delivery {
	out := *w
	opts := pdu.Options(bytes.Clone(w.TLVs))
	opts.SetMessagePayload(w.ShortMessage)
	out.TLVs, out.ShortMessage = opts, nil
	return &out
}

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
		r.events.publish(Event{Kind: EventMO, Account: account, Upstream: upstream, MO: del, At: del.CreatedAt})
		return
	}
	msg, err := r.reasm.Add(upstream, part)
	if err != nil {
		r.log.Warn().Err(err).Str("upstream", upstream).Str("account", account).Uint16("ref", part.Ref).
			Msg("MO part not reassembled; published alone")
		r.events.publish(Event{Kind: EventMO, Account: account, Upstream: upstream, MO: del, At: del.CreatedAt})
		return
	}
	r.armExpiry()
	if msg == nil {
		return
	}
	whole := wholeMO(del, msg)
	r.events.publish(Event{Kind: EventMO, Account: account, Upstream: upstream, MO: whole, At: whole.CreatedAt})
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

// givenUp publishes the parts of a message the Reassembler gave up on, one event each; parts held
// for an account that gets long MO whole are queued for it first, each on its own.
func (r *fromUpstream) givenUp(e pdu.Evicted) {
	account, ok := r.MOAccount(e.Destination)
	if !ok {
		return // the MO routes no longer send it anywhere
	}
	upstream, wasHeld := upstreamOfKey(e.Key)
	held := 0
	now := time.Now()
	for _, data := range e.Parts {
		if data == nil {
			continue
		}
		held++
		del := &store.Delivery{
			Account: account, Kind: store.DeliveryMO,
			Source: store.Address{Addr: e.Source}, Destination: store.Address{Addr: e.Destination},
			DataCoding: e.DataCoding, ShortMessage: data, CreatedAt: now,
		}
		if wasHeld {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			if err := r.st.EnqueueDelivery(ctx, del); err != nil {
				r.log.Error().Err(err).Str("upstream", upstream).Str("account", account).Uint16("ref", e.Ref).
					Msg("part of an incomplete long MO not queued: lost")
			}
			cancel()
		}
		r.events.publish(Event{Kind: EventMO, Account: account, Upstream: upstream, At: now, MO: del})
	}
	if wasHeld && held > 0 {
		r.deliv.startIfBound(account)
	}
	r.log.Warn().Str("upstream", upstream).Str("account", account).Stringer("reason", e.Reason).Uint16("ref", e.Ref).
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
