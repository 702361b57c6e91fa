package redis

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// A message is one string (key m:{shard tag}id): a header, the record as accepted
// (store.AppendMessage) and the events that changed it since, each appended with APPEND by
// the write that made it, without reading the message first:
//
//	value   'M', part count (1 byte), record length (uvarint), record, event...
//	event   kind (1 byte), body length (uvarint), body
//	'u'     a part update (UpdatePart, Settle): part (uvarint), upstream, upstream id (uvarint
//	        length and bytes each), state (1 byte), error (uvarint), time (varint, ns)
//	'r'     a part's state (a receipt, a cancel): part (uvarint), state (1 byte), error
//	        (uvarint), time (varint, ns)
//	'p'     a replacement (ReplaceMessage): short message (uvarint length and bytes),
//	        registered_delivery (1 byte), validity, schedule, time (varints, ns; 0 zero)
//
// Readers apply the events to the record in order with the store's rules (store.ApplyPartUpdate,
// store.ApplyReceipt, store.ApplyReplace), as the embedded store applies each write when it
// comes: a final state is never left, the status and its history follow from the parts. An
// event for a part the message does not have (an UpdatePart that got ErrInvalid) is skipped.
// The scripts read only the header: whether the message exists, and its part count.
//
// The release before kept a message as a hash (see decodeHash); Open converts those (see
// migrateMessages).

// valueTag starts every message value.
const valueTag = 'M'

// Event kinds.
const (
	eventUpdate  = 'u'
	eventState   = 'r'
	eventReplace = 'p'
)

// appendValue appends m as a message value with no events.
func appendValue(b []byte, m *store.Message) []byte {
	b = append(b, valueTag, byte(len(m.Parts)))
	at := len(b)
	b = append(b, make([]byte, binary.MaxVarintLen32)...) // room for the record's length
	b = store.AppendMessage(b, m)
	var n [binary.MaxVarintLen32]byte
	l := binary.PutUvarint(n[:], uint64(len(b)-at-binary.MaxVarintLen32))
	copy(b[at:], n[:l])
	return append(b[:at+l], b[at+binary.MaxVarintLen32:]...)
}

// appendEvent appends an event of kind with body, which body appends.
func appendEvent(b []byte, kind byte, body func([]byte) []byte) []byte {
	var buf [128]byte
	e := body(buf[:0])
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(len(e)))
	return append(b, e...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendNanos(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

// appendUpdate appends u as an event.
func appendUpdate(b []byte, u *store.PartUpdate) []byte {
	return appendEvent(b, eventUpdate, func(e []byte) []byte {
		e = binary.AppendUvarint(e, uint64(u.Part))
		e = appendString(e, u.Upstream)
		e = appendString(e, u.UpstreamID)
		e = append(e, byte(u.Status))
		e = binary.AppendUvarint(e, uint64(u.Error))
		return appendNanos(e, u.At)
	})
}

// appendStateTail appends a part state event's body after the part: state, error, time. The
// receipt script, which learns the part from the id map, puts the part in front.
func appendStateTail(b []byte, st pdu.MessageState, code uint32, at time.Time) []byte {
	b = append(b, byte(st))
	b = binary.AppendUvarint(b, uint64(code))
	return appendNanos(b, at)
}

// appendState appends a part state event.
func appendState(b []byte, part int, st pdu.MessageState, code uint32, at time.Time) []byte {
	return appendEvent(b, eventState, func(e []byte) []byte {
		return appendStateTail(binary.AppendUvarint(e, uint64(part)), st, code, at)
	})
}

// appendReplace appends a replacement event.
func appendReplace(b []byte, r *store.Replacement, at time.Time) []byte {
	body := binary.AppendUvarint(nil, uint64(len(r.ShortMessage)))
	body = append(body, r.ShortMessage...)
	body = append(body, r.RegisteredDelivery)
	body = appendNanos(body, r.Validity)
	body = appendNanos(body, r.Schedule)
	body = appendNanos(body, at)
	b = append(b, eventReplace)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// errNoMessage: the value is not a message (a write to a message that does not exist created
// it; see updateOp).
var errNoMessage = fmt.Errorf("%w: not a message", store.ErrNotFound)

// decodeValue rebuilds a message from its value: the record, with the events applied in order.
func decodeValue(id string, v string) (*store.Message, error) {
	if len(v) < 2 || v[0] != valueTag {
		return nil, fmt.Errorf("message %s: %w", id, errNoMessage)
	}
	bad := func(what string) error {
		return fmt.Errorf("%w: message %s: %s", store.ErrCorrupt, id, what)
	}
	r := valueReader{s: v[2:]}
	rec := r.bytes()
	if r.err {
		return nil, bad("record length")
	}
	m, err := store.DecodeMessage([]byte(rec))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	if len(m.Parts) != int(v[1]) {
		return nil, bad("part count")
	}
	for !r.done() {
		kind := r.byte()
		e := valueReader{s: r.bytes()}
		if r.err {
			return nil, bad("event")
		}
		switch kind {
		case eventUpdate:
			u := store.PartUpdate{Part: int(e.uvarint())}
			u.Upstream, u.UpstreamID = e.bytes(), e.bytes()
			u.Status, u.Error, u.At = pdu.MessageState(e.byte()), uint32(e.uvarint()), e.nanos()
			if e.err {
				return nil, bad("update")
			}
			if u.Part < len(m.Parts) {
				store.ApplyPartUpdate(m, &u)
			}
		case eventState:
			rc := store.Receipt{Part: int(e.uvarint())}
			rc.State, rc.Error, rc.Received = pdu.MessageState(e.byte()), uint32(e.uvarint()), e.nanos()
			if e.err {
				return nil, bad("state")
			}
			if rc.Part < len(m.Parts) {
				store.ApplyReceipt(m, &rc)
			}
		case eventReplace:
			rp := store.Replacement{ShortMessage: []byte(e.bytes()), RegisteredDelivery: e.byte()}
			rp.Validity, rp.Schedule = e.nanos(), e.nanos()
			at := e.nanos()
			if e.err {
				return nil, bad("replacement")
			}
			if len(m.Parts) > 0 {
				store.ApplyReplace(m, &rp, at)
			}
		default:
			return nil, bad(fmt.Sprintf("event kind %q", kind))
		}
	}
	return m, nil
}

// valueReader reads a message value; err sticks at the first short or bad read.
type valueReader struct {
	s   string
	err bool
}

func (r *valueReader) done() bool { return r.err || len(r.s) == 0 }

func (r *valueReader) byte() byte {
	if len(r.s) == 0 {
		r.err = true
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

func (r *valueReader) uvarint() uint64 {
	var x uint64
	for i, shift := 0, uint(0); i < binary.MaxVarintLen64; i, shift = i+1, shift+7 {
		if i >= len(r.s) {
			break
		}
		c := r.s[i]
		if c < 0x80 {
			r.s = r.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
	}
	r.err = true
	return 0
}

func (r *valueReader) bytes() string {
	n := r.uvarint()
	if r.err || n > uint64(len(r.s)) {
		r.err = true
		return ""
	}
	b := r.s[:n]
	r.s = r.s[n:]
	return b
}

func (r *valueReader) nanos() time.Time {
	u := r.uvarint()
	n := int64(u >> 1)
	if u&1 != 0 {
		n = ^n
	}
	if r.err || n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
