package store

import (
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// The status rules live here so that every implementation applies the same ones; the Redis
// store mirrors them in Lua and the conformance suite checks both.

// finalOrder ranks final part states: when parts end differently, the message takes the
// first of these any part has, so one failed part is never hidden by delivered siblings.
var finalOrder = [...]pdu.MessageState{pdu.REJECTED, pdu.UNDELIVERABLE, pdu.EXPIRED, pdu.DELETED, pdu.DELIVERED}

// Aggregate derives a message's status from its parts' statuses:
//   - every part final: DELIVERED if all were delivered, else the worst final state by
//     REJECTED > UNDELIVERABLE > EXPIRED > DELETED;
//   - every part still ACCEPTED: ACCEPTED;
//   - every part that is not final is UNKNOWN: UNKNOWN;
//   - otherwise ENROUTE.
func Aggregate(parts []pdu.MessageState) pdu.MessageState {
	if len(parts) == 0 {
		return pdu.UNKNOWN
	}
	allFinal, allAccepted, allUnknown := true, true, true
	for _, s := range parts {
		if s != pdu.ACCEPTED {
			allAccepted = false
		}
		if !s.Final() {
			allFinal = false
			if s != pdu.UNKNOWN {
				allUnknown = false
			}
		}
	}
	switch {
	case allAccepted:
		return pdu.ACCEPTED
	case allFinal:
		for _, f := range finalOrder {
			for _, s := range parts {
				if s == f {
					return f
				}
			}
		}
		return pdu.DELIVERED
	case allUnknown:
		return pdu.UNKNOWN
	}
	return pdu.ENROUTE
}

// setPartState moves part p to st unless p already reached a final state: receipts may arrive
// out of order, and a late ENROUTE must not undo a DELIVERED.
func setPartState(p *Part, st pdu.MessageState, code uint32, at time.Time) {
	if p.Status.Final() || st == 0 {
		return
	}
	p.Status = st
	if code != 0 {
		p.Error = code
	}
	p.UpdatedAt = at
}

// refresh recomputes m.Status from its parts and appends to the history when it changed.
func refresh(m *Message, at time.Time) {
	states := make([]pdu.MessageState, len(m.Parts))
	for i := range m.Parts {
		states[i] = m.Parts[i].Status
	}
	if s := Aggregate(states); s != m.Status {
		m.Status = s
		m.History = append(m.History, StatusChange{State: s, At: at})
	}
	m.UpdatedAt = at
}

// ApplyPartUpdate applies u to m (u.Part must be in range), as UpdatePart does.
func ApplyPartUpdate(m *Message, u *PartUpdate) {
	p := &m.Parts[u.Part]
	if u.Upstream != "" {
		p.Upstream = u.Upstream
	}
	if u.UpstreamID != "" {
		p.UpstreamID = u.UpstreamID
		p.SubmittedAt = u.At
	}
	setPartState(p, u.Status, u.Error, u.At)
	refresh(m, u.At)
}

// ApplyReceipt applies a correlated receipt (r.Part in range) to m, as AddReceipt does.
func ApplyReceipt(m *Message, r *Receipt) {
	setPartState(&m.Parts[r.Part], r.State, r.Error, r.Received)
	refresh(m, r.Received)
}
