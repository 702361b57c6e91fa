package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Edits change parts of a message that are still queued here (cancel_sm and replace_sm from the
// ESME that submitted it). A part still queued is one no consumer holds: a claimed part is in
// flight, and a part with an upstream id was sent; both are left as they are, for the caller to
// forward the request to the upstream that holds them. Both operations are scoped to the account
// that submitted the message: another account's id is ErrNotFound, as an unknown one.
//
// Finding a message's queue entries walks its upstream's queue (entries are not indexed by
// message), so an edit costs a scan of that queue: cheap next to sending, and only paid by the
// rare cancel or replace, never by the message path.
type Edits interface {
	// CancelMessage removes the queued parts of message id from their queue, so no claim hands
	// them out again, and marks them DELETED. It returns the message as it is after the change
	// and the parts it cancelled (none when every part is final, sent or in flight).
	CancelMessage(ctx context.Context, id, account string) (*Message, []int, error)
	// ReplaceMessage applies r to message id when its part is still queued: the queued part
	// goes out with r's short message (and registered delivery, validity, schedule). Only
	// messages of one part can be replaced (ErrInvalid otherwise). It returns the message as
	// it is after the change and the parts it replaced (none when the part was not queued:
	// the message is then unchanged).
	ReplaceMessage(ctx context.Context, id, account string, r Replacement) (*Message, []int, error)
}

// Replacement is what replace_sm changes in a message still queued.
type Replacement struct {
	ShortMessage       []byte
	RegisteredDelivery uint8
	Validity           time.Time // zero: keep the message's
	Schedule           time.Time // zero: keep the message's
}

// CheckEdit checks what CancelMessage and ReplaceMessage need of the stored message m: that
// account owns it, and for a replacement (r non-nil) that it has one part.
func CheckEdit(m *Message, account string, r *Replacement) error {
	if m.Account != account {
		return fmt.Errorf("%w: message %s", ErrNotFound, m.ID)
	}
	if r != nil && len(m.Parts) != 1 {
		return fmt.Errorf("%w: message %s has %d parts; only a message of one part can be replaced", ErrInvalid, m.ID, len(m.Parts))
	}
	return nil
}

// EditableParts returns the parts of m that may still be queued: not final and never answered
// with an upstream id.
func EditableParts(m *Message) []int {
	var out []int
	for i := range m.Parts {
		if p := &m.Parts[i]; !p.Status.Final() && p.UpstreamID == "" {
			out = append(out, i)
		}
	}
	return out
}

// PartTaskTag is the first byte of every queued part's payload (AppendPartTask).
const PartTaskTag = tagPartTask

// PartTaskKey is what follows the two header bytes of the payload of part i of message id, in
// every version of the encoding: an entry's payload p is that part's when p[0] is PartTaskTag
// and p[2:] starts with the key.
func PartTaskKey(id string, i int) []byte {
	return binary.AppendUvarint(appendStr(nil, id), uint64(i))
}

// IsPartTask reports whether payload is a queued part whose key (PartTaskKey) is key.
func IsPartTask(payload, key []byte) bool {
	return len(payload) > 2 && payload[0] == tagPartTask && bytes.HasPrefix(payload[2:], key)
}

// ApplyCancel marks parts of m DELETED at at, as CancelMessage does.
func ApplyCancel(m *Message, parts []int, at time.Time) {
	for _, i := range parts {
		setPartState(&m.Parts[i], pdu.DELETED, 0, at)
	}
	refresh(m, at)
}

// ApplyReplace applies r to m (of one part) at at, as ReplaceMessage does.
func ApplyReplace(m *Message, r *Replacement, at time.Time) {
	m.Parts[0].ShortMessage = bytes.Clone(r.ShortMessage)
	m.Parts[0].UpdatedAt = at
	m.RegisteredDelivery = r.RegisteredDelivery
	if !r.Validity.IsZero() {
		m.Validity = r.Validity
	}
	if !r.Schedule.IsZero() {
		m.Schedule = r.Schedule
	}
	m.UpdatedAt = at
}
