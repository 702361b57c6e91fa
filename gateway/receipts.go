package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

// receipts correlates upstream receipts with our messages and hands them on (DESIGN.md, "Message
// life", step 3). A receipt is recorded with store.AddReceipt, which applies it to the message its
// upstream id maps to, or parks it when it beat its submit_sm_resp (the settler's store.Settle then
// applies it and gives it back here). Once applied it is published to the API's subscribers and,
// when the message asked for one, queued for the account as a receipt deliver_sm carrying our
// message id; the account's delivery loop sends it.
//
// A receipt goes back by the channel its message came in by (store.Message.Origin), as Jasmin and
// Kannel do: an SMPP message's to the account's binds (and the API's subscribers), an API
// message's to the API only (the receipt stream, webhooks, its callback URL). An account that
// submits over the API only never binds a receiver, and its receipt deliver_sms would pile up in
// its delivery queue, which has no time-out. An account whose application submits over the API
// and listens on a receiver bind opts in with api_receipts_over_smpp (Account.APIReceiptsOverSMPP).
// A message recorded before origins were kept reads as an SMPP one, as before.
//
// An upstream may deliver one receipt twice (its own retry after a lost deliver_sm_resp, a
// failover between its nodes): the second is recorded like the first (the store keeps what came)
// but handed on to nobody, and counted (Stats.ReceiptsDuplicate). See duplicate.
type receipts struct {
	st       store.Store
	log      zerolog.Logger
	events   *hub
	stats    *counters
	deliv    *deliverer
	accounts *accountOptions

	// unhanded holds receipts recorded in the store whose hand-on failed (the upstream was answered
	// ESME_RX_T_APPN and sends them again): the copy it sends again is recorded after the first, so
	// duplicate would take it for a repeat and hand it to nobody. Bounded by maxUnhanded; a restart
	// forgets it (the copy after a restart is then counted a duplicate: logged).
	mu       sync.Mutex
	unhanded map[receiptKey]struct{}
}

// receiptKey is what makes two receipts of a message the same receipt: duplicate compares by it, and
// unhanded is keyed by it.
type receiptKey struct {
	message, upstream, upstreamID string
	part                          int
	state                         pdu.MessageState
	err                           uint32
}

func keyOf(m *store.Message, rc store.Receipt) receiptKey {
	return receiptKey{message: m.ID, upstream: rc.Upstream, upstreamID: rc.UpstreamID, part: rc.Part, state: rc.State, err: rc.Error}
}

// maxUnhanded bounds receipts.unhanded: a store refusing every delivery for long fills it, and
// beyond it a receipt sent again is handled as a duplicate, as after a restart.
const maxUnhanded = 10000

func newReceipts(st store.Store, events *hub, stats *counters, deliv *deliverer, accounts *accountOptions, log zerolog.Logger) *receipts {
	return &receipts{st: st, events: events, stats: stats, deliv: deliv, accounts: accounts, log: log.With().Str("component", "receipts").Logger()}
}

// ReceiptMode is how an account's binds are sent the receipts of a message the gateway sent
// upstream in several parts (an API message it split), so it matters to an account whose API
// messages' receipts reach its binds (Account.APIReceiptsOverSMPP). A message an ESME sent as its
// own parts (UDH or SAR, one submit_sm each) is one message per part already, each with its own id
// and receipt, so the mode does not concern it.
type ReceiptMode string

// Receipt modes.
const (
	// ReceiptPerMessage is the default: one receipt when every part is final, with the message's
	// aggregate state (DELIVERED only when every part was).
	ReceiptPerMessage ReceiptMode = "message"
	// ReceiptPerPart forwards each part's receipt as it comes, each carrying the message id: the
	// only id the ESME was given (the parts' ids are the upstream's, which the ESME never saw), so
	// the ESME correlates them as it correlates one-part receipts, and counts them to know that every
	// part was reported. (Jasmin, for the messages it splits, asks for a receipt on the last part only
	// and reports it under the message's one id: our "message" mode, without waiting on the others.)
	ReceiptPerPart ReceiptMode = "part"
)

// ParseReceiptMode reads a configured receipt mode; "" is ReceiptPerMessage.
func ParseReceiptMode(s string) (ReceiptMode, error) {
	switch m := ReceiptMode(s); m {
	case "", ReceiptPerMessage:
		return ReceiptPerMessage, nil
	case ReceiptPerPart:
		return m, nil
	}
	return "", fmt.Errorf("receipts %q is neither message nor part", s)
}

// fromUpstream records a receipt deliver_sm of upstream and returns the status to answer it with.
func (r *receipts) fromUpstream(upstream string, d *pdu.DeliverSM) pdu.CommandStatus {
	info, err := dlr.FromDeliverSM(d)
	if err != nil {
		// Answered OK all the same: refusing a receipt we cannot read only makes the upstream send it
		// again, forever.
		r.log.Warn().Err(err).Str("upstream", upstream).Msg("unreadable receipt dropped")
		return pdu.ESME_ROK
	}
	rc := &store.Receipt{
		Upstream: upstream, UpstreamID: info.MessageID, State: info.State, Error: receiptError(info),
		Submitted: info.Receipt.SubmitDate, Done: info.Receipt.DoneDate, Text: d.ShortMessage,
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	m, parked, err := r.st.AddReceipt(ctx, rc)
	switch {
	case errors.Is(err, store.ErrInvalid):
		r.log.Warn().Err(err).Str("upstream", upstream).Str("upstream_id", info.MessageID).Msg("receipt with an unusable id dropped")
		return pdu.ESME_ROK
	case err != nil:
		r.log.Error().Err(err).Str("upstream", upstream).Str("upstream_id", info.MessageID).Msg("receipt not recorded; the upstream is asked to retry")
		return pdu.ESME_RX_T_APPN
	}
	r.stats.receipt()
	if parked {
		r.log.Debug().Str("upstream", upstream).Str("upstream_id", info.MessageID).Msg("receipt parked until its submit_sm_resp is recorded")
		return pdu.ESME_ROK
	}
	r.stats.transition(m)
	var parsed *dlr.Receipt
	if len(d.ShortMessage) > 0 && info.TextErr == nil {
		parsed = &info.Receipt // dlr.Parse of rc.Text, which receiptDeliver need not do again
	}
	if err := r.correlatedParsed(ctx, m, *rc, parsed); err != nil {
		r.log.Error().Err(err).Str("message_id", m.ID).Msg("receipt not queued for the account; the upstream is asked to retry")
		return pdu.ESME_RX_T_APPN
	}
	return pdu.ESME_ROK
}

// receiptError reads the err: field (decimal as Appendix B shows it, else hex), or the network error
// code TLV.
func receiptError(info dlr.Info) uint32 {
	if e := info.Receipt.Err; e != "" {
		if n, err := strconv.ParseUint(e, 10, 32); err == nil {
			return uint32(n)
		}
		if n, err := strconv.ParseUint(e, 16, 32); err == nil {
			return uint32(n)
		}
	}
	if info.HasNetworkError {
		return uint32(info.NetworkError.Code)
	}
	return 0
}

// wantsReceipt reports whether registered_delivery asks for a receipt in state st.
func wantsReceipt(rd uint8, st pdu.MessageState) bool {
	if !st.Final() {
		return rd&pdu.RegisteredDeliveryIntermediate != 0
	}
	switch rd & pdu.RegisteredDeliveryReceiptMask {
	case pdu.RegisteredDeliveryReceiptFinal:
		return true
	case pdu.RegisteredDeliveryReceiptFailure:
		return st != pdu.DELIVERED
	}
	return false
}

// correlated hands a receipt applied to m to the API subscribers and, when the message asked
// for one and came over SMPP (or its account opts in for API messages), queues a receipt
// deliver_sm for the account carrying our message id. A multi-part message
// gets one receipt, when its aggregate status becomes final, or one per part's receipt, by the
// account's ReceiptMode. A duplicate (see duplicate) goes nowhere.
func (r *receipts) correlated(ctx context.Context, m *store.Message, rc store.Receipt) error {
	return r.correlatedParsed(ctx, m, rc, nil)
}

// correlatedParsed is correlated with rc's text already parsed (nil: not parsed, or not a receipt
// text).
func (r *receipts) correlatedParsed(ctx context.Context, m *store.Message, rc store.Receipt, parsed *dlr.Receipt) error {
	k := keyOf(m, rc)
	r.mu.Lock()
	_, retry := r.unhanded[k]
	r.mu.Unlock()
	if !retry && r.duplicate(ctx, m, rc) {
		r.stats.receiptsDup.Add(1)
		r.log.Info().Str("message_id", m.ID).Int("part", rc.Part).Str("upstream", rc.Upstream).Str("upstream_id", rc.UpstreamID).
			Stringer("state", rc.State).Msg("duplicate receipt from the upstream not handed on")
		return nil
	}
	err := r.handOn(ctx, m, rc, parsed)
	r.mu.Lock()
	switch {
	case err == nil:
		delete(r.unhanded, k)
	case len(r.unhanded) < maxUnhanded:
		if r.unhanded == nil {
			r.unhanded = map[receiptKey]struct{}{}
		}
		r.unhanded[k] = struct{}{}
	}
	r.mu.Unlock()
	return err
}

// handOn is correlated's work for a receipt that is not a duplicate: the event (durable webhooks and
// callback first), then the account's receipt deliver_sm when one is due: for an SMPP message, or an
// API message of an account with APIReceiptsOverSMPP.
func (r *receipts) handOn(ctx context.Context, m *store.Message, rc store.Receipt, parsed *dlr.Receipt) error {
	rcCopy := rc
	ev := Event{Kind: EventReceipt, Account: m.Account, MessageID: m.ID, ClientRef: m.ClientRef, Receipt: &rcCopy, Status: m.Status, At: time.Now()}
	if err := r.events.record(ctx, ev, m); err != nil { // webhooks and callback URL, durable first
		return err
	}
	r.events.publish(ev)
	var opts accountOpts // the defaults without account options
	if r.accounts != nil {
		opts = r.accounts.get(ctx, m.Account)
	}
	if m.Origin == store.OriginAPI && !opts.APIReceiptsOverSMPP {
		return nil // the API's receipt, given to it above; see receipts
	}
	state := rc.State
	if len(m.Parts) > 1 && opts.Receipts != ReceiptPerPart {
		if !m.Status.Final() {
			return nil
		}
		state = m.Status
	}
	if !wantsReceipt(m.RegisteredDelivery, state) {
		return nil
	}
	d, err := receiptDeliver(m, rc, state, parsed)
	if err != nil {
		return err
	}
	if err := r.st.EnqueueDelivery(ctx, d); err != nil {
		return err
	}
	r.deliv.startIfBound(m.Account)
	return nil
}

// duplicate reports whether rc, recorded already, repeats a receipt recorded before it: the same
// part, upstream, upstream id, state and error code. Such a receipt says nothing the first did not,
// whatever its text (an upstream resending may stamp a new done date). The store's list of the
// message's receipts decides, so a duplicate is caught across restarts and across instances
// sharing a Redis, and whichever of two concurrent copies was recorded first is the one handed on.
// Receipts the gateway makes itself (a part refused for good) are not recorded, and are never
// duplicates. An unreadable list lets the receipt through: a receipt given twice is better than one
// lost.
//
// The list costs a read of the message's receipts, so it is read only when m's part state cannot
// answer: the common receipt, the first final one of its part, is known from m alone (madeFinal).
func (r *receipts) duplicate(ctx context.Context, m *store.Message, rc store.Receipt) bool {
	if rc.UpstreamID == "" || rc.Received.IsZero() || madeFinal(m, rc) {
		return false
	}
	all, err := r.st.ListReceipts(ctx, m.ID)
	if err != nil {
		r.log.Warn().Err(err).Str("message_id", m.ID).Msg("receipts unreadable; receipt handed on without a duplicate check")
		return false
	}
	for _, o := range all {
		if keyOf(m, o) == keyOf(m, rc) {
			return !o.Received.Equal(rc.Received) // the first of its kind is the one handed on
		}
	}
	return false
}

// madeFinal reports whether rc, applied to m, is the receipt that moved its part into the final
// state it reports: the part has rc's state, updated at rc's arrival. Then no receipt recorded
// before it can have had its state: the store applies each receipt as it records it (AddReceipt, or
// UpdatePart for a parked one, in one atomic step on both stores), a final part never changes state
// again (store.ApplyReceipt), so an earlier copy would have made the part final at its own arrival
// and rc would have left it as it was. A repeat, an intermediate state (it may come again and still
// move the part) or a final state after another one does not pass, and the list decides.
func madeFinal(m *store.Message, rc store.Receipt) bool {
	if !rc.State.Final() || rc.Part < 0 || rc.Part >= len(m.Parts) {
		return false
	}
	p := &m.Parts[rc.Part]
	return p.Status == rc.State && p.UpdatedAt.Equal(rc.Received)
}

// receiptDeliver builds the receipt deliver_sm for the account: from the original destination to the
// original source, our id in the text and in receipted_message_id. parsed is rc.Text parsed, when the
// caller has it (nil: parsed here).
func receiptDeliver(m *store.Message, rc store.Receipt, state pdu.MessageState, parsed *dlr.Receipt) (*store.Delivery, error) {
	if parsed == nil {
		if p, err := dlr.Parse(string(rc.Text)); err == nil {
			parsed = &p
		}
	}
	rec := dlr.Receipt{Sub: 1, Dlvrd: 0, SubmitDate: m.CreatedAt, DoneDate: rc.Done}
	if parsed != nil {
		rec = *parsed // the upstream's counts, dates and text, with our id and state below
		if rec.SubmitDate.IsZero() {
			rec.SubmitDate = m.CreatedAt
		}
	} else {
		rec.Err = fmt.Sprintf("%03d", min(rc.Error, 999))
	}
	if rec.DoneDate.IsZero() && state.Final() {
		rec.DoneDate = time.Now()
	}
	if state == pdu.DELIVERED && rec.Dlvrd <= 0 {
		rec.Dlvrd = 1
	}
	rec.ID = m.ID
	rec.Stat = dlr.StatFor(state)
	info := dlr.Info{MessageID: m.ID, State: state, Intermediate: !state.Final(), Receipt: rec}
	d := &pdu.DeliverSM{
		ServiceType:   m.ServiceType,
		SourceAddrTON: m.Destination.TON, SourceAddrNPI: m.Destination.NPI, SourceAddr: m.Destination.Addr,
		DestAddrTON: m.Source.TON, DestAddrNPI: m.Source.NPI, DestinationAddr: m.Source.Addr,
	}
	if err := info.ToDeliverSM(d); err != nil {
		return nil, fmt.Errorf("gateway: build receipt for %s: %w", m.ID, err)
	}
	return &store.Delivery{
		Account: m.Account, Kind: store.DeliveryReceipt, MessageID: m.ID,
		Source:      store.Address{TON: d.SourceAddrTON, NPI: d.SourceAddrNPI, Addr: d.SourceAddr},
		Destination: store.Address{TON: d.DestAddrTON, NPI: d.DestAddrNPI, Addr: d.DestinationAddr},
		ESMClass:    d.EsmClass, ProtocolID: d.ProtocolID, DataCoding: d.DataCoding,
		ShortMessage: d.ShortMessage, TLVs: d.Options, CreatedAt: time.Now(),
	}, nil
}
