package dlr

import (
	"errors"
	"testing"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
)

// FuzzParse feeds Parse arbitrary text: it must never panic, must fail only with its sentinels, and a
// receipt it accepts must be a fixed point of String and Parse (dates to the minute, which is all
// Append writes).
func FuzzParse(f *testing.F) {
	for _, s := range samples {
		f.Add(s.in)
	}
	for _, s := range []string{
		"", "id:", "id:1 stat:", "text:", "id:1 stat:X text:", "stat:X id:1 err:", "id:sub:1 stat:X",
		"id:1 submit date:0000000000 stat:X", "id:1 done_date:20991231235959 stat:X",
		"id:1 stat:X sub:999999999 dlvrd:000000000", "ID:\xff\xfe STAT:\x00 TEXT:\xff",
		"id:1\x00 stat:X\x00", "id:1\vsubmit\t_date:2402291200\fstat:X\rerr:\ntext:\t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		_ = r.String() // partial receipts, returned with errors, must format too
		if err != nil {
			if !errors.Is(err, ErrNotReceipt) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error %v wraps no sentinel", s, err)
			}
			return
		}
		if r.ID == "" || r.Stat == "" {
			t.Fatalf("Parse(%q) accepted a receipt without id or stat: %#v", s, r)
		}
		out := r.String()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %#v, but its String %q does not parse: %v", s, r, out, err)
		}
		if want := toMinutes(r); again != want {
			t.Fatalf("Parse(%q).String() = %q reads back as\n%#v\nwant\n%#v", s, out, again, want)
		}
		if out2 := again.String(); out2 != out {
			t.Fatalf("String not stable: %q then %q", out, out2)
		}
		_ = r.State()
	})
}

// FuzzFromDeliverSM feeds FromDeliverSM arbitrary receipt PDUs: it must never panic, must fail only
// with its sentinels, and what it accepts must survive ToDeliverSM and FromDeliverSM again.
func FuzzFromDeliverSM(f *testing.F) {
	for _, s := range samples {
		f.Add(uint8(pdu.EsmClassReceipt), uint8(0), []byte(s.in), []byte(nil))
	}
	tlvs := func(i Info) []byte {
		var d pdu.DeliverSM
		if err := i.ToDeliverSM(&d); err != nil {
			f.Fatal(err)
		}
		return d.Options
	}
	f.Add(uint8(pdu.EsmClassReceipt), uint8(0), []byte(nil), tlvs(Info{MessageID: "abc", State: pdu.DELIVERED, HasNetworkError: true, NetworkError: pdu.NetworkErrorCode{Type: 3, Code: 1}}))
	f.Add(uint8(pdu.EsmClassIntermediate|pdu.EsmClassUDHI), uint8(text.UCS2), []byte{0, 0, 'i', 0, 'd', 0, ':', 0, '1', 0, ' ', 0, 's', 0, 't', 0, 'a', 0, 't', 0, ':', 0, 'X'}, []byte(nil))
	f.Add(uint8(pdu.EsmClassReceipt), uint8(text.Latin1), []byte("id:1 stat:DELIVRD text:\xe9t\xe9"), []byte{0x00, 0x1E, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, esm, coding uint8, sm, opts []byte) {
		d := pdu.DeliverSM{EsmClass: esm, DataCoding: coding, ShortMessage: sm, Options: pdu.Options(opts)}
		info, err := FromDeliverSM(&d)
		if err != nil {
			if !errors.Is(err, ErrNotReceipt) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		var out pdu.DeliverSM
		if err := info.ToDeliverSM(&out); err != nil {
			// Only an id a peer may send but receipted_message_id cannot carry is refused.
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ToDeliverSM: %v", err)
			}
			return
		}
		back, err := FromDeliverSM(&out)
		if err != nil {
			t.Fatalf("FromDeliverSM(ToDeliverSM(%#v)): %v", info, err)
		}
		if back.MessageID != info.MessageID || back.State != info.State || back.HasNetworkError != info.HasNetworkError ||
			back.NetworkError != info.NetworkError || back.Intermediate != info.Intermediate {
			t.Fatalf("round trip:\n got %#v\nwant %#v", back, info)
		}
	})
}
