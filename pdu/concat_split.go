package pdu

import (
	"errors"
	"fmt"

	"github.com/smppgw/smppgw/pdu/text"
)

// SplitMode says how the parts of a long message are linked.
type SplitMode uint8

// The ways to carry a long message. The zero SplitMode is no mode: in a Part it means a message that
// is not part of a long one.
const (
	SplitUDH8    SplitMode = iota + 1 // concatenation UDH with an 8-bit reference (IEI 0x00): the most widely supported
	SplitUDH16                        // concatenation UDH with a 16-bit reference (IEI 0x08)
	SplitSAR                          // sar_msg_ref_num, sar_total_segments and sar_segment_seqnum TLVs; no UDH
	SplitPayload                      // one PDU, the whole message in the message_payload TLV
)

func (m SplitMode) String() string {
	switch m {
	case SplitUDH8:
		return "udh8"
	case SplitUDH16:
		return "udh16"
	case SplitSAR:
		return "sar"
	case SplitPayload:
		return "payload"
	}
	return "SplitMode(" + itoa(int(m)) + ")"
}

// MaxParts is the most parts a long message can have: the total is one octet in both the
// concatenation IE and sar_total_segments.
const MaxParts = 255

// ErrSplitMode is returned by Split for a SplitMode it does not know.
var ErrSplitMode = errors.New("pdu: unknown split mode")

// Splittable are the PDUs that carry a short_message and so can be cut into the parts of a long
// message.
type Splittable interface {
	*SubmitSM | *DeliverSM | *SubmitMulti
}

// Split cuts encoded, the message octets in tmpl's data_coding (as text.Encode returns them), into
// the PDUs that carry it. Every part is a copy of tmpl (addresses, flags, data_coding, TLVs) with its
// own esm_class, short_message and options; tmpl's own short_message is ignored and tmpl is not
// modified.
//
//   - A message that fits one SMS (text.Split returns one segment) is one part carrying it in
//     short_message, with no UDH and no SAR TLVs, whatever the mode but SplitPayload.
//   - SplitUDH8, SplitUDH16: each part's short_message is the concatenation UDH then its segment, and
//     esm_class has UDHI. An 8-bit reference is the low octet of ref.
//   - SplitSAR: each part carries the three sar_* TLVs and its plain segment.
//   - SplitPayload: always one part, with an empty short_message and encoded in message_payload.
//
// Segments never split a GSM escape pair or a UTF-16 surrogate pair (text.Split cuts them). The
// esm_class UDHI bit is cleared in parts without a UDH, and any sar_* or message_payload TLV of tmpl
// is dropped so that a part carries its text once. Parts share tmpl's strings and alias encoded.
//
// It fails with a *FieldError when the message needs more than MaxParts parts (short_message,
// ESME_RINVMSGLEN) or more than a TLV holds (message_payload, ESME_RINVPARLEN).
func Split[P Splittable](tmpl P, mode SplitMode, encoded []byte, ref uint16) ([]P, error) {
	f, ok := fieldsOf(any(tmpl))
	if !ok {
		return nil, errors.New("pdu: Split: nil template")
	}
	return split(tmpl, f, mode, text.Coding(*f.dc), encoded, ref)
}

// SplitText is Split for a Go string: it encodes s in tmpl's data_coding and sets that coding in
// every part. data_coding 0 (the SMSC default alphabet) lets the text choose: GSM 03.38 when every
// character has a GSM code, else UCS-2, as text.Pick decides. Text the coding cannot carry is an
// error wrapping the text package's (text.ErrUnencodable, text.ErrNoCodec, ...).
func SplitText[P Splittable](tmpl P, mode SplitMode, s string, ref uint16) ([]P, error) {
	f, ok := fieldsOf(any(tmpl))
	if !ok {
		return nil, errors.New("pdu: SplitText: nil template")
	}
	c := text.Coding(*f.dc)
	if c == text.Default {
		c = text.Pick(s)
	}
	encoded, err := text.Encode(c, s)
	if err != nil {
		return nil, fmt.Errorf("pdu: %s: short_message: %w", f.cmd, err)
	}
	return split(tmpl, f, mode, c, encoded, ref)
}

// longFields points at the fields of a short_message-carrying PDU the long-message code reads and
// writes, so that one implementation serves submit_sm, deliver_sm and submit_multi.
type longFields struct {
	cmd  CommandID
	esm  *uint8
	dc   *uint8
	sm   *[]byte
	opts *Options
}

func fieldsOf(p any) (longFields, bool) {
	switch t := p.(type) {
	case *SubmitSM:
		if t != nil {
			return longFields{SubmitSMID, &t.EsmClass, &t.DataCoding, &t.ShortMessage, &t.Options}, true
		}
	case *DeliverSM:
		if t != nil {
			return longFields{DeliverSMID, &t.EsmClass, &t.DataCoding, &t.ShortMessage, &t.Options}, true
		}
	case *SubmitMulti:
		if t != nil {
			return longFields{SubmitMultiID, &t.EsmClass, &t.DataCoding, &t.ShortMessage, &t.Options}, true
		}
	}
	return longFields{}, false
}

// clones returns n copies of *tmpl, allocated together.
func clones[P Splittable](tmpl P, n int) []P {
	out := make([]P, n)
	switch t := any(tmpl).(type) {
	case *SubmitSM:
		parts := make([]SubmitSM, n)
		for i := range parts {
			parts[i] = *t
			out[i] = any(&parts[i]).(P)
		}
	case *DeliverSM:
		parts := make([]DeliverSM, n)
		for i := range parts {
			parts[i] = *t
			out[i] = any(&parts[i]).(P)
		}
	case *SubmitMulti:
		parts := make([]SubmitMulti, n)
		for i := range parts {
			parts[i] = *t
			out[i] = any(&parts[i]).(P)
		}
	}
	return out
}

// sarTLVsLen is the size of the three SAR TLVs: 2 octets of ref, 1 of total, 1 of seq, 4 of header each.
const sarTLVsLen = 3*4 + 2 + 1 + 1

func split[P Splittable](tmpl P, f longFields, mode SplitMode, c text.Coding, encoded []byte, ref uint16) ([]P, error) {
	udhLen := 0
	switch mode {
	case SplitUDH8:
		udhLen = ConcatUDH8Len
	case SplitUDH16:
		udhLen = ConcatUDH16Len
	case SplitSAR:
	case SplitPayload:
		if len(encoded) > 0xFFFF {
			return nil, fieldErr(f.cmd, "message_payload", ESME_RINVPARLEN,
				itoa(len(encoded))+" octets do not fit a TLV (at most 65535)")
		}
		parts := clones(tmpl, 1)
		p, _ := fieldsOf(any(parts[0]))
		*p.esm &^= EsmClassUDHI
		*p.dc = uint8(c)
		*p.sm = nil
		o := withoutLongTLVs(*f.opts, 4+len(encoded))
		o.Set(TagMessagePayload, encoded)
		*p.opts = o[:len(o):len(o)]
		return parts, nil
	default:
		return nil, fmt.Errorf("%w %d", ErrSplitMode, mode)
	}
	segs := text.Split(c, encoded, udhLen)
	if segs == nil {
		// Not reachable with the UDH sizes above; text.Capacity says why if it ever is.
		_, err := text.Capacity(c, udhLen)
		return nil, fmt.Errorf("pdu: %s: short_message: %w", f.cmd, err)
	}
	if len(segs) > MaxParts {
		return nil, fieldErr(f.cmd, "short_message", ESME_RINVMSGLEN,
			"message needs "+itoa(len(segs))+" parts, at most "+itoa(MaxParts))
	}
	parts := clones(tmpl, len(segs))
	if len(segs) == 1 {
		p, _ := fieldsOf(any(parts[0]))
		*p.esm &^= EsmClassUDHI
		*p.dc = uint8(c)
		*p.sm = segs[0]
		o := withoutLongTLVs(*f.opts, 0)
		*p.opts = o[:len(o):len(o)]
		return parts, nil
	}
	total := uint8(len(segs))
	base := withoutLongTLVs(*f.opts, 0)
	var buf []byte // every part's short_message (UDH modes) or options (SAR), in one allocation
	if mode == SplitSAR {
		buf = make([]byte, 0, len(segs)*(len(base)+sarTLVsLen))
	} else {
		buf = make([]byte, 0, len(segs)*udhLen+len(encoded))
		base = base[:len(base):len(base)] // shared by the parts: an append must not write into it
	}
	for i, seg := range segs {
		p, _ := fieldsOf(any(parts[i]))
		*p.dc = uint8(c)
		seq := uint8(i + 1)
		start := len(buf)
		if mode == SplitSAR {
			*p.esm &^= EsmClassUDHI
			*p.sm = seg
			buf = append(buf, base...)
			buf = appendTLVUint(buf, TagSARMsgRefNum, 2, uint32(ref))
			buf = appendTLVUint(buf, TagSARTotalSegments, 1, uint32(total))
			buf = appendTLVUint(buf, TagSARSegmentSeqnum, 1, uint32(seq))
			*p.opts = Options(buf[start:len(buf):len(buf)])
			continue
		}
		*p.esm |= EsmClassUDHI
		buf = AppendConcatUDH(buf, ref, total, seq, mode == SplitUDH16)
		buf = append(buf, seg...)
		*p.sm = buf[start:len(buf):len(buf)]
		*p.opts = base
	}
	return parts, nil
}

// withoutLongTLVs copies o without the TLVs that link or carry a long message (sar_*,
// message_payload), leaving room for extra more octets. It returns nil for empty options and no room.
func withoutLongTLVs(o Options, extra int) Options {
	if len(o) == 0 && extra == 0 {
		return nil
	}
	out := make(Options, 0, len(o)+extra)
	for t, v := range o.All() {
		switch t {
		case TagSARMsgRefNum, TagSARTotalSegments, TagSARSegmentSeqnum, TagMessagePayload:
			continue
		}
		out = append(out, byte(t>>8), byte(t), byte(len(v)>>8), byte(len(v)))
		out = append(out, v...)
	}
	return out
}

func appendTLVUint(dst []byte, t Tag, size int, v uint32) []byte {
	dst = append(dst, byte(t>>8), byte(t), 0, byte(size))
	for i := size - 1; i >= 0; i-- {
		dst = append(dst, byte(v>>(8*i)))
	}
	return dst
}
