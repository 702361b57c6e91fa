package smscsim

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
)

// counters are the simulator's running counts, under Sim.mu.
type counters struct {
	answered                                       map[pdu.CommandStatus]int
	held, dropped                                  int
	receiptsSent, receiptsAnswered, receiptsFailed int
	receiptStates                                  map[string]int
	moSent, moAnswered, moFailed                   int
}

func newCounters() counters {
	return counters{answered: map[pdu.CommandStatus]int{}, receiptStates: map[string]int{}}
}

// Stats is a snapshot of what the simulator received and sent.
type Stats struct {
	BindsAccepted int `json:"binds_accepted"`
	BindsRefused  int `json:"binds_refused"`
	Bound         int `json:"bound"` // links bound now
	// Submits is how many submissions (submit_sm and data_sm) were received, whatever became of them.
	Submits int `json:"submits"`
	// Answered counts the answers written to submissions, by command status name ("ESME_ROK",
	// "ESME_RTHROTTLED", ...); a submission held, or still held back by LinkFaults.Delay, is in none.
	Answered map[string]int `json:"answered"`
	// Held is how many submissions a Hold fault left unanswered.
	Held int `json:"held"`
	// LinksDropped is how many links the simulator dropped (DropEvery, Close faults).
	LinksDropped int `json:"links_dropped"`
	// ReceiptsSent is how many receipts went out; ReceiptsAnswered of them were answered ESME_ROK,
	// ReceiptsFailed with an error status, no answer in time or a link gone (the rest are in flight).
	ReceiptsSent     int `json:"receipts_sent"`
	ReceiptsAnswered int `json:"receipts_answered"`
	ReceiptsFailed   int `json:"receipts_failed"`
	// ReceiptStates counts the receipts sent by their stat word (DELIVRD, UNDELIV, ...).
	ReceiptStates map[string]int `json:"receipt_states"`
	// MOSent counts MO deliver_sm sent (each part of a long MO is one), answered and failed as receipts.
	MOSent     int `json:"mo_sent"`
	MOAnswered int `json:"mo_answered"`
	MOFailed   int `json:"mo_failed"`
	// Last is the latest submissions, oldest first (at most the number asked for and Options.KeepLast).
	Last []Received `json:"last"`
}

// Received is one submission as the simulator recorded it.
type Received struct {
	At          time.Time `json:"at"`
	Bind        uint64    `json:"bind"`
	SystemID    string    `json:"system_id"`
	Command     string    `json:"command"` // submit_sm or data_sm
	Source      string    `json:"source"`
	Destination string    `json:"destination"`
	Text        string    `json:"text,omitempty"` // short_message decoded, after any UDH
	MessageID   string    `json:"message_id,omitempty"`
	// Status is the answer decided: a command status name, or "held" for a submission left unanswered.
	Status string `json:"status"`
}

// record adds a submission to the latest ones and counts a held one. Under s.mu.
func (s *Sim) record(now time.Time, ss *session.Session, body pdu.Body, sub submission, id string, status pdu.CommandStatus, held bool) {
	r := Received{At: now, Bind: ss.ID(), SystemID: ss.SystemID(), Command: body.CommandID().String(),
		Source: sub.src, Destination: sub.dst, MessageID: id, Status: status.String()}
	if sm, ok := body.(*pdu.SubmitSM); ok {
		ud := sm.ShortMessage
		if sm.EsmClass&pdu.EsmClassUDHI != 0 {
			if _, rest, err := pdu.ParseUDH(ud); err == nil {
				ud = rest
			}
		}
		r.Text = text.DecodeLossy(text.Coding(sm.DataCoding), ud)
	}
	if held {
		s.stats.held++
		r.Status = "held"
	}
	if len(s.last) < s.opts.KeepLast {
		s.last = append(s.last, r)
		return
	}
	s.last[s.lastNext] = r
	s.lastNext = (s.lastNext + 1) % len(s.last)
}

// Stats returns the counts and the latest submissions, at most last of them (0: none).
func (s *Sim) Stats(last int) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{BindsAccepted: s.binds, BindsRefused: s.refused, Bound: len(s.bound), Submits: s.count,
		Answered: map[string]int{}, Held: s.stats.held, LinksDropped: s.stats.dropped,
		ReceiptsSent: s.stats.receiptsSent, ReceiptsAnswered: s.stats.receiptsAnswered,
		ReceiptsFailed: s.stats.receiptsFailed, ReceiptStates: map[string]int{},
		MOSent: s.stats.moSent, MOAnswered: s.stats.moAnswered, MOFailed: s.stats.moFailed,
		Last: []Received{}}
	for k, v := range s.stats.answered {
		st.Answered[k.String()] = v
	}
	for k, v := range s.stats.receiptStates {
		st.ReceiptStates[k] = v
	}
	n := min(last, len(s.last))
	for i := len(s.last) - n; i < len(s.last); i++ {
		st.Last = append(st.Last, s.last[(s.lastNext+i)%len(s.last)])
	}
	return st
}

// Bind is a bound link.
type Bind struct {
	ID       uint64    `json:"id"` // the session's id, unique in the process
	SystemID string    `json:"system_id"`
	BindType string    `json:"bind_type"` // transmitter, receiver or transceiver
	Remote   string    `json:"remote"`
	BoundAt  time.Time `json:"bound_at"`
	Submits  int       `json:"submits"` // submissions received on it
}

// BindList returns the links bound now, in bind order.
func (s *Sim) BindList() []Bind {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Bind, 0, len(s.bound))
	for _, ss := range s.bound {
		l := s.links[ss.ID()]
		if l == nil || closing(ss) {
			continue
		}
		bt, _ := ss.BindType().MarshalText()
		out = append(out, Bind{ID: ss.ID(), SystemID: ss.SystemID(), BindType: string(bt),
			Remote: ss.RemoteAddr().String(), BoundAt: l.boundAt, Submits: l.submits})
	}
	return out
}

// CloseBind drops the bound link with this id (what is queued is written first, no unbind), or fails
// with ErrUnknownBind.
func (s *Sim) CloseBind(id uint64) error {
	s.mu.Lock()
	l := s.links[id]
	s.mu.Unlock()
	if l == nil || closing(l.ss) {
		return ErrUnknownBind
	}
	l.ss.Close()
	return nil
}

// closing reports whether ss has begun to end: it is no longer a bind to list or send on.
func closing(ss *session.Session) bool {
	select {
	case <-ss.Closing():
		return true
	default:
		return false
	}
}

// WriteTable writes st as the closing table of a run: one count a line, statuses and states sorted
// by name.
func (st Stats) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, n int) { fmt.Fprintf(tw, "%s\t%d\t\n", name, n) }
	row("binds accepted", st.BindsAccepted)
	row("binds refused", st.BindsRefused)
	row("submissions received", st.Submits)
	for _, k := range slices.Sorted(maps.Keys(st.Answered)) {
		row("  answered "+k, st.Answered[k])
	}
	row("  held", st.Held)
	row("links dropped", st.LinksDropped)
	row("receipts sent", st.ReceiptsSent)
	for _, k := range slices.Sorted(maps.Keys(st.ReceiptStates)) {
		row("  stat "+k, st.ReceiptStates[k])
	}
	row("  answered ESME_ROK", st.ReceiptsAnswered)
	row("  failed", st.ReceiptsFailed)
	row("MO sent", st.MOSent)
	row("  answered ESME_ROK", st.MOAnswered)
	row("  failed", st.MOFailed)
	return tw.Flush()
}
