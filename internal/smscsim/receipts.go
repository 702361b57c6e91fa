package smscsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// ErrUnknownMessage is returned by SendReceipt for a message id the simulator did not hand out, or
// has forgotten (see Options.Remember).
var ErrUnknownMessage = errors.New("smscsim: unknown message id")

// Weight is one final state of a receipt Mix and its share.
type Weight struct {
	State  pdu.MessageState
	Weight int
}

// Mix is the final states receipts report, drawn at random in proportion to their weights. A nil Mix
// is Options.ReceiptState every time.
type Mix []Weight

// ParseMix reads "DELIVRD:90,UNDELIV:5,EXPIRED:5" (also "=" for ":"): Appendix B stat words, or the
// specification's names (DELIVERED, UNDELIVERABLE), any case, with positive integer weights.
func ParseMix(s string) (Mix, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var m Mix
	for item := range strings.SplitSeq(s, ",") {
		word, w, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok {
			word, w, ok = strings.Cut(strings.TrimSpace(item), "=")
		}
		if !ok {
			return nil, fmt.Errorf("receipt mix %q: want STATE:WEIGHT", item)
		}
		state, err := ParseState(word)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("receipt mix %q: weight must be a positive integer", item)
		}
		m = append(m, Weight{state, n})
	}
	return m, nil
}

// ParseState reads a receipt state: an Appendix B stat word (DELIVRD, UNDELIV, ...) or the
// specification's name (DELIVERED, UNDELIVERABLE, ...), any case.
func ParseState(word string) (pdu.MessageState, error) {
	word = strings.TrimSpace(word)
	state := dlr.Receipt{Stat: word}.State()
	if state == pdu.UNKNOWN && !strings.EqualFold(word, "UNKNOWN") {
		return 0, fmt.Errorf("unknown receipt state %q (want DELIVRD, UNDELIV, EXPIRED, DELETED, REJECTD, ACCEPTD, UNKNOWN or ENROUTE)", word)
	}
	return state, nil
}

// String writes m as ParseMix reads it.
func (m Mix) String() string {
	var b strings.Builder
	for i, w := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s:%d", dlr.StatFor(w.State), w.Weight)
	}
	return b.String()
}

// Pick draws one state from r: state i with probability Weight[i] over the sum of the weights,
// using one r.IntN of that sum. A Sim draws from rand.New(rand.NewPCG(Seed, Seed)) once for each
// submission it accepts that asks for a receipt (final or failure-only), in the order they arrive,
// and once for each SendReceipt without a state; a test can replay that.
func (m Mix) Pick(r *rand.Rand) pdu.MessageState {
	total := 0
	for _, w := range m {
		total += w.Weight
	}
	if total <= 0 {
		return pdu.DELIVERED
	}
	n := r.IntN(total)
	for _, w := range m {
		if n < w.Weight {
			return w.State
		}
		n -= w.Weight
	}
	return m[len(m)-1].State
}

// pickState is the state of the next receipt: a draw from the mix, or the fixed state. Under s.mu.
func (s *Sim) pickState() pdu.MessageState {
	if len(s.opts.ReceiptMix) > 0 {
		return s.opts.ReceiptMix.Pick(s.rng)
	}
	return s.opts.ReceiptState
}

// sent is what the simulator remembers of a message id it handed out, to send a receipt on demand.
type sent struct {
	sub  submission
	bind uint64
	sys  string
}

// remember keeps id's submission, forgetting the oldest beyond Options.Remember. Under s.mu.
func (s *Sim) remember(id string, m sent) {
	if s.opts.Remember < 0 {
		return
	}
	if len(s.order) == s.opts.Remember {
		delete(s.msgs, s.order[s.orderAt])
		s.order[s.orderAt] = id
		s.orderAt = (s.orderAt + 1) % len(s.order)
	} else {
		s.order = append(s.order, id)
	}
	s.msgs[id] = m
}

// SendReceipt sends a receipt in state now for a message id the simulator handed out (state 0: drawn
// as for the automatic ones), and returns the peer's answer. It goes on the link the message came
// from when that can receive, else on another receiving link of the same system_id. It fails with
// ErrUnknownMessage for an id it does not know, and ErrNoBind when no link can take it.
func (s *Sim) SendReceipt(ctx context.Context, messageID string, state pdu.MessageState) (pdu.CommandStatus, error) {
	s.mu.Lock()
	m, ok := s.msgs[messageID]
	if !ok {
		s.mu.Unlock()
		return 0, ErrUnknownMessage
	}
	if state == 0 {
		state = s.pickState()
	}
	var to *session.Session
	if l := s.links[m.bind]; l != nil && l.ss.BindType().CanReceive() {
		to = l.ss
	} else {
		for _, ss := range s.bound {
			if ss.BindType().CanReceive() && ss.SystemID() == m.sys {
				to = ss
				break
			}
		}
	}
	s.mu.Unlock()
	if to == nil {
		return 0, ErrNoBind
	}
	d := s.buildReceipt(messageID, m.sub, state)
	if d == nil {
		return 0, fmt.Errorf("smscsim: receipt for %s not built", messageID)
	}
	return s.deliver(ctx, to, d, kindReceipt, state)
}

// receipt returns the receipt for the submission given id, or nil when none is to be sent. Under s.mu.
func (s *Sim) receipt(id string, sub submission) *pdu.DeliverSM {
	if s.opts.ReceiptDelay < 0 {
		return nil
	}
	switch sub.registered & pdu.RegisteredDeliveryReceiptMask {
	case pdu.RegisteredDeliveryReceiptFinal, pdu.RegisteredDeliveryReceiptFailure:
	default:
		return nil
	}
	state := s.pickState()
	if state == pdu.DELIVERED && sub.registered&pdu.RegisteredDeliveryReceiptMask == pdu.RegisteredDeliveryReceiptFailure {
		return nil
	}
	return s.buildReceipt(id, sub, state)
}

// buildReceipt builds the receipt deliver_sm for a submission, or nil (logged) when it cannot.
func (s *Sim) buildReceipt(id string, sub submission, state pdu.MessageState) *pdu.DeliverSM {
	dlvrd := 0
	if state == pdu.DELIVERED {
		dlvrd = 1
	}
	text := sub.text[:min(len(sub.text), 20)] // as SMSCs do: the first 20 characters, if plain ASCII
	for _, c := range text {
		if c < ' ' || c > '~' {
			text = nil
			break
		}
	}
	now := time.Now()
	info := dlr.Info{MessageID: id, State: state, Receipt: dlr.Receipt{
		ID: id, Sub: 1, Dlvrd: dlvrd, SubmitDate: now, DoneDate: now, Stat: dlr.StatFor(state), Err: "000", Text: string(text),
	}}
	d := &pdu.DeliverSM{SourceAddrTON: sub.dstTON, SourceAddrNPI: sub.dstNPI, SourceAddr: sub.dst,
		DestAddrTON: sub.srcTON, DestAddrNPI: sub.srcNPI, DestinationAddr: sub.src}
	if err := info.ToDeliverSM(d); err != nil {
		s.opts.Logger.Error().Err(err).Str("id", id).Msg("receipt not built")
		return nil
	}
	return d
}
