package pdu

import (
	"encoding/binary"
	"iter"
	"strconv"
	"unsafe"
)

// Tag is an optional parameter tag (SMPP 3.4 section 5.3.2).
type Tag uint16

func unknownTagName(t Tag) string { return "tag(0x" + strconv.FormatUint(uint64(t), 16) + ")" }

// Options holds a PDU's optional parameters in their wire form: a run of tag, length, value triples.
// Keeping the octets rather than a parsed list means decoding costs nothing, unknown and vendor TLVs
// re-encode byte for byte, and the order a peer chose is kept. Accessors scan; PDUs carry a handful of
// TLVs at most. The zero value is empty and ready to use.
type Options []byte

// All yields each TLV's tag and value in wire order. Values alias o.
func (o Options) All() iter.Seq2[Tag, []byte] {
	return func(yield func(Tag, []byte) bool) {
		for i := 0; i+4 <= len(o); {
			n := int(binary.BigEndian.Uint16(o[i+2:]))
			if i+4+n > len(o) {
				return
			}
			if !yield(Tag(binary.BigEndian.Uint16(o[i:])), o[i+4:i+4+n:i+4+n]) {
				return
			}
			i += 4 + n
		}
	}
}

// Get returns the value of the first TLV with tag t.
func (o Options) Get(t Tag) ([]byte, bool) {
	for tag, v := range o.All() {
		if tag == t {
			return v, true
		}
	}
	return nil, false
}

// Has reports whether a TLV with tag t is present.
func (o Options) Has(t Tag) bool {
	_, ok := o.Get(t)
	return ok
}

// Uint returns an integer TLV of 1, 2 or 4 octets (big-endian).
func (o Options) Uint(t Tag) (uint32, bool) {
	v, ok := o.Get(t)
	if !ok || len(v) == 0 || len(v) > 4 {
		return 0, false
	}
	var n uint32
	for _, c := range v {
		n = n<<8 | uint32(c)
	}
	return n, true
}

// CString returns a C-Octet String TLV without its NUL. A value sent without the terminator (some
// SMSCs do so for receipted_message_id) is returned whole rather than refused.
func (o Options) CString(t Tag) (string, bool) {
	v, ok := o.Get(t)
	if !ok {
		return "", false
	}
	for i, c := range v {
		if c == 0 {
			v = v[:i]
			break
		}
	}
	if len(v) == 0 {
		return "", true
	}
	return unsafe.String(&v[0], len(v)), true
}

// Set replaces the value of the TLV with tag t, or appends the TLV when absent. Other TLVs keep their
// octets and order. A value longer than 65535 octets cannot be carried by a TLV: Set records a TLV
// header whose length runs past the end, so encoding the PDU fails naming the tag instead of sending
// a truncated value.
func (o *Options) Set(t Tag, v []byte) {
	o.Delete(t)
	if overlaps(*o, v) {
		// Appending in place would overwrite v before it is copied.
		v = append([]byte(nil), v...)
	}
	b := binary.BigEndian.AppendUint16(*o, uint16(t))
	if len(v) > 0xFFFF {
		*o = binary.BigEndian.AppendUint16(b, 0xFFFF)
		return
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
	*o = append(b, v...)
}

// SetUint sets an integer TLV of size 1, 2 or 4 octets.
func (o *Options) SetUint(t Tag, size int, v uint32) {
	var buf [4]byte
	binary.BigEndian.PutUint32(buf[:], v)
	o.Set(t, buf[4-size:])
}

// SetCString sets a C-Octet String TLV, adding the NUL terminator.
func (o *Options) SetCString(t Tag, s string) {
	var buf [72]byte
	v := append(buf[:0], s...)
	o.Set(t, append(v, 0))
}

// Delete removes every TLV with tag t; o is left as it is when t is absent. It never writes into
// the octets o had, which may alias a decoded frame.
func (o *Options) Delete(t Tag) {
	if !o.Has(t) {
		return
	}
	var kept Options
	for tag, v := range o.All() {
		if tag != t {
			kept = binary.BigEndian.AppendUint16(kept, uint16(tag))
			kept = binary.BigEndian.AppendUint16(kept, uint16(len(v)))
			kept = append(kept, v...)
		}
	}
	*o = kept
}

// Len returns the number of TLVs.
func (o Options) Len() int {
	n := 0
	for range o.All() {
		n++
	}
	return n
}

// check verifies the framing of every TLV and the value length of every tag SMPP 3.4 defines.
func (o Options) check(cmd CommandID) error {
	for i := 0; i < len(o); {
		if len(o)-i < 4 {
			return fieldErr(cmd, "optional parameters", ESME_RINVOPTPARSTREAM, strconv.Itoa(len(o)-i)+" stray octets after the last TLV")
		}
		t := Tag(binary.BigEndian.Uint16(o[i:]))
		n := int(binary.BigEndian.Uint16(o[i+2:]))
		if i+4+n > len(o) {
			return fieldErr(cmd, t.String(), ESME_RINVOPTPARSTREAM, "length "+strconv.Itoa(n)+" runs past the end of the body")
		}
		if lo, hi, known := tagLengths(t); known && (n < lo || n > hi) {
			return fieldErr(cmd, t.String(), ESME_RINVPARLEN, "length "+strconv.Itoa(n)+" outside "+strconv.Itoa(lo)+".."+strconv.Itoa(hi))
		}
		i += 4 + n
	}
	return nil
}

// overlaps reports whether v lies anywhere in the backing array of o, spare capacity included.
func overlaps(o Options, v []byte) bool {
	if cap(o) == 0 || len(v) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(o)))
	hi := lo + uintptr(cap(o))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
	return p < hi && p+uintptr(len(v)) > lo
}
