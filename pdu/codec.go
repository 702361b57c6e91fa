package pdu

import (
	"bytes"
	"encoding/binary"
	"unsafe"
)

// encoder appends fields in order and keeps the first error; the generated AppendBody methods drive it.
// A dry encoder (the generated Check methods) checks every field the same way and appends nothing.
type encoder struct {
	b   []byte
	cmd CommandID
	err error
	dry bool
}

func (e *encoder) u8(v uint8) {
	if !e.dry {
		e.b = append(e.b, v)
	}
}

// cstring appends s and its NUL. max counts the NUL, as the specification's field sizes do.
func (e *encoder) cstring(s string, max int, field string, st CommandStatus) {
	if e.err != nil {
		return
	}
	if len(s) >= max {
		e.err = fieldErr(e.cmd, field, st, itoa(len(s))+" octets, at most "+itoa(max-1))
		return
	}
	if bytes.IndexByte(unsafe.Slice(unsafe.StringData(s), len(s)), 0) >= 0 {
		e.err = fieldErr(e.cmd, field, st, "contains a NUL octet")
		return
	}
	if !e.dry {
		e.b = append(e.b, s...)
		e.b = append(e.b, 0)
	}
}

// shortMessage appends sm_length and short_message, of at most max octets.
func (e *encoder) shortMessage(m []byte, max int) {
	if e.err != nil {
		return
	}
	if len(m) > max {
		// Longer texts travel in parts or in message_payload (see Split).
		e.err = fieldErr(e.cmd, "short_message", ESME_RINVMSGLEN, itoa(len(m))+" octets, at most "+itoa(max))
		return
	}
	if !e.dry {
		e.b = append(e.b, byte(len(m)))
		e.b = append(e.b, m...)
	}
}

func (e *encoder) destAddresses(ds []DestAddress) {
	if e.err != nil {
		return
	}
	if len(ds) == 0 || len(ds) > 254 {
		e.err = fieldErr(e.cmd, "number_of_dests", ESME_RINVNUMDESTS, "must be 1 to 254, is "+itoa(len(ds)))
		return
	}
	e.u8(byte(len(ds)))
	for _, d := range ds {
		switch d.Flag {
		case DestFlagSMEAddress:
			e.u8(d.Flag)
			e.u8(d.TON)
			e.u8(d.NPI)
			e.cstring(d.Addr, 21, "destination_addr", ESME_RINVDSTADR)
		case DestFlagDistList:
			e.u8(d.Flag)
			e.cstring(d.DLName, 21, "dl_name", ESME_RINVDLNAME)
		default:
			e.err = fieldErr(e.cmd, "dest_flag", ESME_RINVDESTFLAG, "must be 1 (SME address) or 2 (distribution list), is "+itoa(int(d.Flag)))
			return
		}
	}
}

func (e *encoder) unsuccessSMEs(us []UnsuccessSME) {
	if e.err != nil {
		return
	}
	if len(us) > 254 {
		e.err = fieldErr(e.cmd, "no_unsuccess", ESME_RINVNUMDESTS, "more than 254 entries")
		return
	}
	e.u8(byte(len(us)))
	for _, u := range us {
		e.u8(u.TON)
		e.u8(u.NPI)
		e.cstring(u.Addr, 21, "destination_addr", ESME_RINVDSTADR)
		if !e.dry {
			e.b = binary.BigEndian.AppendUint32(e.b, uint32(u.ErrorStatus))
		}
	}
}

func (e *encoder) options(o Options) {
	if e.err != nil || len(o) == 0 {
		return
	}
	if err := o.check(e.cmd); err != nil {
		e.err = err
		return
	}
	if !e.dry {
		e.b = append(e.b, o...)
	}
}

// decoder reads fields in order and keeps the first error; the generated DecodeBody methods drive it.
type decoder struct {
	b   []byte
	off int
	cmd CommandID
	err error
}

func (d *decoder) fail(field string, st CommandStatus, reason string) {
	if d.err == nil {
		d.err = fieldErr(d.cmd, field, st, reason)
	}
}

// A mandatory field cut off by the end of the body means command_length was wrong for the PDU.
func (d *decoder) truncated(field string) {
	d.fail(field, ESME_RINVCMDLEN, "body ends before this field")
}

func (d *decoder) u8(field string) uint8 {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.b) {
		d.truncated(field)
		return 0
	}
	v := d.b[d.off]
	d.off++
	return v
}

// cstring reads a C-Octet String of at most max octets with its NUL. The result aliases the body: the
// frame is read into memory owned by the decoded PDU, so no copy is needed (see Reader).
func (d *decoder) cstring(max int, field string, st CommandStatus) string {
	if d.err != nil {
		return ""
	}
	rest := d.b[d.off:]
	if len(rest) == 0 {
		d.truncated(field)
		return ""
	}
	n := min(max, len(rest))
	i := bytes.IndexByte(rest[:n], 0)
	if i < 0 {
		if n < max {
			d.fail(field, ESME_RINVCMDLEN, "no NUL terminator before the end of the body")
		} else {
			d.fail(field, st, "longer than "+itoa(max-1)+" octets")
		}
		return ""
	}
	d.off += i + 1
	if i == 0 {
		return ""
	}
	return unsafe.String(&rest[0], i)
}

// shortMessage reads sm_length and short_message. An sm_length above max (254: SMPP 3.4 section
// 4.4.1 bounds it, though its octet could say 255) is refused here, so that nothing the encoder would
// refuse to send on is ever read as valid.
func (d *decoder) shortMessage(max int) []byte {
	n := int(d.u8("sm_length"))
	if d.err != nil {
		return nil
	}
	if n > max {
		d.fail("short_message", ESME_RINVMSGLEN, itoa(n)+" octets, at most "+itoa(max))
		return nil
	}
	if n > len(d.b)-d.off {
		d.fail("short_message", ESME_RINVMSGLEN, "sm_length "+itoa(n)+" runs past the end of the body")
		return nil
	}
	if n == 0 {
		return nil
	}
	m := d.b[d.off : d.off+n : d.off+n]
	d.off += n
	return m
}

func (d *decoder) destAddresses() []DestAddress {
	n := int(d.u8("number_of_dests"))
	if d.err != nil {
		return nil
	}
	if n == 0 {
		d.fail("number_of_dests", ESME_RINVNUMDESTS, "no destinations")
		return nil
	}
	// Each entry takes at least 2 octets, so a count the body cannot hold is refused before allocating.
	if 2*n > len(d.b)-d.off {
		d.fail("number_of_dests", ESME_RINVNUMDESTS, itoa(n)+" destinations cannot fit in the body")
		return nil
	}
	ds := make([]DestAddress, n)
	for i := range ds {
		ds[i].Flag = d.u8("dest_flag")
		switch ds[i].Flag {
		case DestFlagSMEAddress:
			ds[i].TON = d.u8("dest_addr_ton")
			ds[i].NPI = d.u8("dest_addr_npi")
			ds[i].Addr = d.cstring(21, "destination_addr", ESME_RINVDSTADR)
		case DestFlagDistList:
			ds[i].DLName = d.cstring(21, "dl_name", ESME_RINVDLNAME)
		default:
			d.fail("dest_flag", ESME_RINVDESTFLAG, "must be 1 or 2, is "+itoa(int(ds[i].Flag)))
		}
		if d.err != nil {
			return nil
		}
	}
	return ds
}

func (d *decoder) unsuccessSMEs() []UnsuccessSME {
	n := int(d.u8("no_unsuccess"))
	if d.err != nil || n == 0 {
		return nil
	}
	// Each entry takes at least 7 octets (ton, npi, NUL, error_status_code).
	if 7*n > len(d.b)-d.off {
		d.fail("no_unsuccess", ESME_RINVCMDLEN, itoa(n)+" entries cannot fit in the body")
		return nil
	}
	us := make([]UnsuccessSME, n)
	for i := range us {
		us[i].TON = d.u8("dest_addr_ton")
		us[i].NPI = d.u8("dest_addr_npi")
		us[i].Addr = d.cstring(21, "destination_addr", ESME_RINVDSTADR)
		if d.err == nil && len(d.b)-d.off < 4 {
			d.truncated("error_status_code")
		}
		if d.err != nil {
			return nil
		}
		us[i].ErrorStatus = CommandStatus(binary.BigEndian.Uint32(d.b[d.off:]))
		d.off += 4
	}
	return us
}

// options takes the rest of the body as TLVs, after checking their framing and the lengths of known tags.
func (d *decoder) options() Options {
	if d.err != nil || d.off == len(d.b) {
		return nil
	}
	o := Options(d.b[d.off:len(d.b):len(d.b)])
	if err := o.check(d.cmd); err != nil {
		d.err = err
		return nil
	}
	d.off = len(d.b)
	return o
}

// finish refuses octets left over after the last field of a PDU that has no TLVs.
func (d *decoder) finish() error {
	if d.err == nil && d.off != len(d.b) {
		d.fail("command_length", ESME_RINVCMDLEN, itoa(len(d.b)-d.off)+" octets after the last field")
	}
	return d.err
}

func emptyBody(cmd CommandID, src []byte) error {
	if len(src) != 0 {
		return fieldErr(cmd, "command_length", ESME_RINVCMDLEN, "body must be empty, has "+itoa(len(src))+" octets")
	}
	return nil
}
