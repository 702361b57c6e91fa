package pdu

import (
	"encoding/binary"
	"iter"
	"strconv"
)

// Information element identifiers of a user data header (3GPP TS 23.040 section 9.2.3.24) that the
// long-message code names. Every other IE is carried through untouched.
const (
	IEIConcat8  = 0x00 // concatenated short messages, 8-bit reference number
	IEIPort8    = 0x04 // application port addressing, 8-bit ports
	IEIPort16   = 0x05 // application port addressing, 16-bit ports
	IEIConcat16 = 0x08 // concatenated short messages, 16-bit reference number
)

// Concatenation UDH sizes, the UDHL octet included: the udhLen text.Split and text.Capacity take.
const (
	ConcatUDH8Len  = 6 // 05 00 03 ref total seq
	ConcatUDH16Len = 7 // 06 08 04 ref ref total seq
)

// UDH is a user data header as it starts a short_message (or message_payload) whose esm_class has
// EsmClassUDHI: the UDHL octet, then the information elements it counts. ParseUDH returns one that
// is known to be well formed; methods on any other value skip what does not parse rather than panic.
type UDH []byte

// Concat is the content of a concatenation IE: which message a part belongs to and where it goes.
type Concat struct {
	Ref        uint16 // reference number, the same in every part of one message
	Total      uint8  // number of parts, 1 to 255
	Seq        uint8  // this part, 1 to Total
	SixteenBit bool   // IEI 0x08 (16-bit reference) rather than 0x00
}

// ParseUDH splits user data whose esm_class has UDHI into its header and the octets after it. Both
// alias ud. It checks that the UDHL and every IE length stay inside ud, and that a concatenation IE
// has its spec length, a non-zero total and a sequence number in 1..total. Errors are *FieldError on
// short_message: ESME_RINVESMCLASS when UDHI is set on empty user data, ESME_RINVMSGLEN otherwise.
// Their Command is zero; ReadPart fills it in.
func ParseUDH(ud []byte) (UDH, []byte, error) {
	if len(ud) == 0 {
		return nil, nil, fieldErr(0, "short_message", ESME_RINVESMCLASS, "esm_class has UDHI but the user data is empty")
	}
	n := 1 + int(ud[0])
	if n > len(ud) {
		return nil, nil, fieldErr(0, "short_message", ESME_RINVMSGLEN,
			"UDH length "+itoa(n-1)+" runs past the end of "+itoa(len(ud))+" octets")
	}
	h := UDH(ud[:n:n])
	for i := 1; i < n; {
		if i+2 > n {
			return nil, nil, fieldErr(0, "short_message", ESME_RINVMSGLEN, "UDH IE at offset "+itoa(i)+" is truncated")
		}
		iei, l := h[i], int(h[i+1])
		if i+2+l > n {
			return nil, nil, fieldErr(0, "short_message", ESME_RINVMSGLEN,
				"UDH IE "+hex8(iei)+" length "+itoa(l)+" runs past the UDH")
		}
		if iei == IEIConcat8 || iei == IEIConcat16 {
			if _, reason := concatOf(iei, h[i+2:i+2+l]); reason != "" {
				return nil, nil, fieldErr(0, "short_message", ESME_RINVMSGLEN, reason)
			}
		}
		i += 2 + l
	}
	return h, ud[n:], nil
}

// IEs yields each information element's identifier and data in header order. Data alias h.
func (h UDH) IEs() iter.Seq2[uint8, []byte] {
	return func(yield func(uint8, []byte) bool) {
		if len(h) == 0 {
			return
		}
		n := min(1+int(h[0]), len(h))
		for i := 1; i+2 <= n; {
			l := int(h[i+1])
			if i+2+l > n {
				return
			}
			if !yield(h[i], h[i+2:i+2+l:i+2+l]) {
				return
			}
			i += 2 + l
		}
	}
}

// Concat returns the concatenation IE of h and whether it has a valid one. When a header repeats it,
// the last occurrence counts, as TS 23.040 section 9.2.3.24 directs for repeated IEs.
func (h UDH) Concat() (Concat, bool) {
	var c Concat
	found := false
	for iei, data := range h.IEs() {
		if iei != IEIConcat8 && iei != IEIConcat16 {
			continue
		}
		if v, reason := concatOf(iei, data); reason == "" {
			c, found = v, true
		}
	}
	return c, found
}

// AppendOther appends the IEs of h other than concatenation, each with its IEI and length octets but
// without a UDHL: what a reassembled message keeps of its parts' headers (port addressing, say).
func (h UDH) AppendOther(dst []byte) []byte {
	for iei, data := range h.IEs() {
		if iei != IEIConcat8 && iei != IEIConcat16 {
			dst = append(append(dst, iei, byte(len(data))), data...)
		}
	}
	return dst
}

// AppendConcatUDH appends a whole UDH, UDHL included, holding only a concatenation IE: 8-bit reference
// (IEI 0x00, the low octet of ref) or 16-bit (IEI 0x08).
func AppendConcatUDH(dst []byte, ref uint16, total, seq uint8, sixteenBit bool) []byte {
	if sixteenBit {
		return append(dst, ConcatUDH16Len-1, IEIConcat16, 4, byte(ref>>8), byte(ref), total, seq)
	}
	return append(dst, ConcatUDH8Len-1, IEIConcat8, 3, byte(ref), total, seq)
}

// concatOf reads a concatenation IE's data, or says what is wrong with it.
func concatOf(iei uint8, data []byte) (Concat, string) {
	var c Concat
	switch {
	case iei == IEIConcat8 && len(data) == 3:
		c = Concat{Ref: uint16(data[0]), Total: data[1], Seq: data[2]}
	case iei == IEIConcat16 && len(data) == 4:
		c = Concat{Ref: binary.BigEndian.Uint16(data), Total: data[2], Seq: data[3], SixteenBit: true}
	default:
		want := 3
		if iei == IEIConcat16 {
			want = 4
		}
		return c, "concatenation IE " + hex8(iei) + " has length " + itoa(len(data)) + ", want " + itoa(want)
	}
	if c.Total == 0 {
		return c, "concatenation IE total is 0"
	}
	if c.Seq == 0 || c.Seq > c.Total {
		return c, "concatenation IE sequence " + itoa(int(c.Seq)) + " is outside 1.." + itoa(int(c.Total))
	}
	return c, ""
}

func hex8(b uint8) string {
	if b < 0x10 {
		return "0x0" + strconv.FormatUint(uint64(b), 16)
	}
	return "0x" + strconv.FormatUint(uint64(b), 16)
}
