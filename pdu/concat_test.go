package pdu

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/pdu/text"
)

func TestParseUDH(t *testing.T) {
	tests := []struct {
		name   string
		ud     []byte
		udh    []byte // want header, UDHL included
		rest   []byte
		concat Concat
		has    bool
		other  []byte // AppendOther
		status CommandStatus
	}{
		{name: "8-bit ref", ud: []byte{5, 0, 3, 0xAB, 3, 2, 'h', 'i'}, udh: []byte{5, 0, 3, 0xAB, 3, 2},
			rest: []byte("hi"), concat: Concat{Ref: 0xAB, Total: 3, Seq: 2}, has: true},
		{name: "16-bit ref", ud: []byte{6, 8, 4, 0x12, 0x34, 2, 2, 'x'}, udh: []byte{6, 8, 4, 0x12, 0x34, 2, 2},
			rest: []byte("x"), concat: Concat{Ref: 0x1234, Total: 2, Seq: 2, SixteenBit: true}, has: true},
		{name: "port addressing kept", ud: []byte{11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 7, 2, 1, 0xFF},
			udh: []byte{11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 7, 2, 1}, rest: []byte{0xFF},
			concat: Concat{Ref: 7, Total: 2, Seq: 1}, has: true, other: []byte{5, 4, 0x0B, 0x84, 0x23, 0xF0}},
		{name: "no concatenation IE", ud: []byte{4, 4, 2, 0x10, 0x20, 'z'}, udh: []byte{4, 4, 2, 0x10, 0x20},
			rest: []byte("z"), other: []byte{4, 2, 0x10, 0x20}},
		{name: "empty header", ud: []byte{0, 'a'}, udh: []byte{0}, rest: []byte("a")},
		{name: "header is everything", ud: []byte{5, 0, 3, 1, 1, 1}, udh: []byte{5, 0, 3, 1, 1, 1}, rest: []byte{},
			concat: Concat{Ref: 1, Total: 1, Seq: 1}, has: true},
		{name: "last concatenation IE counts", ud: []byte{10, 0, 3, 1, 2, 1, 0, 3, 9, 4, 3},
			udh: []byte{10, 0, 3, 1, 2, 1, 0, 3, 9, 4, 3}, rest: []byte{}, concat: Concat{Ref: 9, Total: 4, Seq: 3}, has: true},

		{name: "empty user data", ud: nil, status: ESME_RINVESMCLASS},
		{name: "UDHL past the end", ud: []byte{5, 0, 3, 1}, status: ESME_RINVMSGLEN},
		{name: "UDHL 255 on short data", ud: []byte{255, 0}, status: ESME_RINVMSGLEN},
		{name: "IE header truncated", ud: []byte{1, 0, 'a'}, status: ESME_RINVMSGLEN},
		{name: "IE length past the UDH", ud: []byte{3, 0, 3, 1, 1, 1}, status: ESME_RINVMSGLEN},
		{name: "8-bit concat of length 4", ud: []byte{6, 0, 4, 1, 2, 1, 0}, status: ESME_RINVMSGLEN},
		{name: "16-bit concat of length 3", ud: []byte{5, 8, 3, 1, 2, 1}, status: ESME_RINVMSGLEN},
		{name: "total 0", ud: []byte{5, 0, 3, 1, 0, 0, 'a'}, status: ESME_RINVMSGLEN},
		{name: "seq 0", ud: []byte{5, 0, 3, 1, 2, 0, 'a'}, status: ESME_RINVMSGLEN},
		{name: "seq past total", ud: []byte{6, 8, 4, 0, 1, 2, 3, 'a'}, status: ESME_RINVMSGLEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, rest, err := ParseUDH(tt.ud)
			if tt.status != ESME_ROK {
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Fatalf("err = %v, want a *FieldError", err)
				}
				if fe.Field != "short_message" || fe.Status != tt.status {
					t.Fatalf("err = %v, want short_message with %s", err, tt.status)
				}
				if h != nil || rest != nil {
					t.Fatalf("got header % x and rest % x with an error", h, rest)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(h, tt.udh) || !bytes.Equal(rest, tt.rest) {
				t.Fatalf("ParseUDH = % x | % x, want % x | % x", []byte(h), rest, tt.udh, tt.rest)
			}
			c, ok := h.Concat()
			if ok != tt.has || c != tt.concat {
				t.Fatalf("Concat = %+v %v, want %+v %v", c, ok, tt.concat, tt.has)
			}
			if other := h.AppendOther(nil); !bytes.Equal(other, tt.other) {
				t.Fatalf("AppendOther = % x, want % x", other, tt.other)
			}
		})
	}
}

func TestUDHMethodsOnMalformedValues(t *testing.T) {
	// A UDH built by hand rather than by ParseUDH: the methods skip what does not parse.
	for _, h := range []UDH{nil, {}, {9}, {9, 0, 3}, {5, 0, 7, 1, 2, 3}, {5, 0, 3, 1, 0, 0}, {3, 8, 4, 1}} {
		if c, ok := h.Concat(); ok {
			t.Errorf("UDH % x: Concat = %+v, want none", []byte(h), c)
		}
		for iei, data := range h.IEs() {
			if len(data) > len(h) {
				t.Errorf("UDH % x: IE %#x has %d octets", []byte(h), iei, len(data))
			}
		}
	}
}

func TestAppendConcatUDH(t *testing.T) {
	got := AppendConcatUDH([]byte{0xEE}, 0x1234, 4, 3, false)
	if want := []byte{0xEE, 5, 0, 3, 0x34, 4, 3}; !bytes.Equal(got, want) {
		t.Fatalf("8-bit = % x, want % x", got, want)
	}
	got = AppendConcatUDH(nil, 0x1234, 4, 3, true)
	if want := []byte{6, 8, 4, 0x12, 0x34, 4, 3}; !bytes.Equal(got, want) {
		t.Fatalf("16-bit = % x, want % x", got, want)
	}
	for _, sixteen := range []bool{false, true} {
		b := AppendConcatUDH(nil, 200, 255, 255, sixteen)
		h, rest, err := ParseUDH(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("ParseUDH(% x) = %v, rest % x", b, err, rest)
		}
		if c, _ := h.Concat(); c != (Concat{Ref: 200, Total: 255, Seq: 255, SixteenBit: sixteen}) {
			t.Fatalf("round trip = %+v", c)
		}
	}
}

func gsm(t testing.TB, s string) []byte {
	t.Helper()
	b, err := text.Encode(text.Default, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ucs2(t testing.TB, s string) []byte {
	t.Helper()
	b, err := text.Encode(text.UCS2, s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSplitBoundaries(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		mode  SplitMode
		c     text.Coding
		s     string
		sizes []int // octets of user data after the UDH, per part
	}{
		{"GSM 160 fits", SplitUDH8, text.Default, a(160), []int{160}},
		{"GSM 161 two parts", SplitUDH8, text.Default, a(161), []int{153, 8}},
		{"GSM 306 two full parts", SplitUDH8, text.Default, a(306), []int{153, 153}},
		{"GSM 307 three parts", SplitUDH8, text.Default, a(307), []int{153, 153, 1}},
		{"GSM 16-bit ref 152 per part", SplitUDH16, text.Default, a(305), []int{152, 152, 1}},
		{"GSM 16-bit ref 304", SplitUDH16, text.Default, a(304), []int{152, 152}},
		{"GSM SAR 160 per part", SplitSAR, text.Default, a(321), []int{160, 160, 1}},
		{"escape pair not cut", SplitUDH8, text.Default, a(152) + "€" + a(10), []int{152, 12}},
		{"escape pair just fits", SplitUDH8, text.Default, a(151) + "€" + a(10), []int{153, 10}},
		{"GSM 160 septets with escapes fit", SplitUDH8, text.Default, a(158) + "{", []int{160}},
		{"UCS-2 70 fits", SplitUDH8, text.UCS2, strings.Repeat("ж", 70), []int{140}},
		{"UCS-2 71 two parts", SplitUDH8, text.UCS2, strings.Repeat("ж", 71), []int{134, 8}},
		{"UCS-2 134 two full parts", SplitUDH8, text.UCS2, strings.Repeat("ж", 134), []int{134, 134}},
		{"UCS-2 135 three parts", SplitUDH8, text.UCS2, strings.Repeat("ж", 135), []int{134, 134, 2}},
		{"UCS-2 16-bit ref 66 per part", SplitUDH16, text.UCS2, strings.Repeat("ж", 133), []int{132, 132, 2}},
		{"surrogate pair not cut", SplitUDH8, text.UCS2, strings.Repeat("ж", 66) + "😀" + "жжж", []int{132, 10}},
		{"8-bit 140 fits", SplitUDH8, text.Binary, a(140), []int{140}},
		{"8-bit 141 two parts", SplitUDH8, text.Binary, a(141), []int{134, 7}},
		{"empty message", SplitUDH8, text.Default, "", []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded, err := text.Encode(tt.c, tt.s)
			if err != nil {
				t.Fatal(err)
			}
			tmpl := &SubmitSM{SourceAddr: "src", DestinationAddr: "dst", DataCoding: uint8(tt.c)}
			parts, err := Split(tmpl, tt.mode, encoded, 0x1A2B)
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != len(tt.sizes) {
				t.Fatalf("%d parts, want %d", len(parts), len(tt.sizes))
			}
			udhLen := map[SplitMode]int{SplitUDH8: 6, SplitUDH16: 7}[tt.mode]
			if n, err := text.Parts(tt.c, tt.s, udhLen); err != nil || n != len(parts) {
				t.Fatalf("text.Parts = %d %v, Split made %d", n, err, len(parts))
			}
			var joined []byte
			for i, p := range parts {
				ud := p.ShortMessage
				if len(parts) > 1 && tt.mode != SplitSAR {
					if p.EsmClass&EsmClassUDHI == 0 {
						t.Fatalf("part %d: no UDHI", i+1)
					}
					h, rest, err := ParseUDH(ud)
					if err != nil {
						t.Fatalf("part %d: %v", i+1, err)
					}
					c, ok := h.Concat()
					wantRef := uint16(0x2B)
					if tt.mode == SplitUDH16 {
						wantRef = 0x1A2B
					}
					want := Concat{Ref: wantRef, Total: uint8(len(parts)), Seq: uint8(i + 1), SixteenBit: tt.mode == SplitUDH16}
					if !ok || c != want || len(h) != udhLen {
						t.Fatalf("part %d: UDH % x = %+v, want %+v", i+1, []byte(h), c, want)
					}
					ud = rest
				} else if p.EsmClass&EsmClassUDHI != 0 {
					t.Fatalf("part %d: UDHI set without a UDH", i+1)
				}
				if len(ud) != tt.sizes[i] {
					t.Fatalf("part %d: %d octets of text, want %d", i+1, len(ud), tt.sizes[i])
				}
				if n := len(ud) + udhLen; len(parts) > 1 && n > 140 && tt.c != text.Default {
					t.Fatalf("part %d: %d octets of user data do not fit an SMS", i+1, n)
				}
				joined = append(joined, ud...)
				if p.DataCoding != uint8(tt.c) {
					t.Fatalf("part %d: data_coding %#x", i+1, p.DataCoding)
				}
			}
			if !bytes.Equal(joined, encoded) {
				t.Fatalf("parts join to % x, want % x", joined, encoded)
			}
		})
	}
}

func TestSplitModes(t *testing.T) {
	long := strings.Repeat("0123456789", 20) // 200 septets: two parts
	tmpl := &SubmitSM{SourceAddr: "447700900123", DestinationAddr: "447700900456", EsmClass: EsmClassUDHI | 0x03,
		RegisteredDelivery: RegisteredDeliveryReceiptFinal, ShortMessage: []byte("ignored")}
	tmpl.Options.SetUserMessageReference(77)
	tmpl.Options.SetSARMsgRefNum(9)                 // stale: dropped from every part
	tmpl.Options.SetMessagePayload([]byte("stale")) // likewise
	before := bytes.Clone(tmpl.Options)
	encoded := gsm(t, long)

	t.Run("SAR", func(t *testing.T) {
		parts, err := Split(tmpl, SplitSAR, encoded, 0xBEEF)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 2 {
			t.Fatalf("%d parts", len(parts))
		}
		for i, p := range parts {
			if p.EsmClass != 0x03 {
				t.Errorf("part %d: esm_class %#x, want UDHI cleared and mode kept", i+1, p.EsmClass)
			}
			ref, _ := p.Options.SARMsgRefNum()
			total, _ := p.Options.SARTotalSegments()
			seq, _ := p.Options.SARSegmentSeqnum()
			umr, _ := p.Options.UserMessageReference()
			if ref != 0xBEEF || total != 2 || seq != uint8(i+1) || umr != 77 {
				t.Errorf("part %d: sar %#x %d %d, user_message_reference %d", i+1, ref, total, seq, umr)
			}
			if p.Options.Has(TagMessagePayload) || p.Options.Len() != 4 {
				t.Errorf("part %d: options % x", i+1, []byte(p.Options))
			}
			if p.SourceAddr != tmpl.SourceAddr || p.RegisteredDelivery != RegisteredDeliveryReceiptFinal {
				t.Errorf("part %d: template fields not copied: %+v", i+1, p)
			}
		}
		if string(parts[0].ShortMessage)+string(parts[1].ShortMessage) != long {
			t.Errorf("parts carry %q + %q", parts[0].ShortMessage, parts[1].ShortMessage)
		}
		// Each part owns its options: setting one does not reach the other.
		parts[0].Options.SetSARSegmentSeqnum(9)
		parts[0].Options.SetDestinationPort(1)
		if seq, _ := parts[1].Options.SARSegmentSeqnum(); seq != 2 || parts[1].Options.Has(TagDestinationPort) {
			t.Errorf("part 2 changed with part 1: % x", []byte(parts[1].Options))
		}
	})
	t.Run("payload", func(t *testing.T) {
		parts, err := Split(tmpl, SplitPayload, encoded, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 1 || len(parts[0].ShortMessage) != 0 || parts[0].EsmClass&EsmClassUDHI != 0 {
			t.Fatalf("parts %+v", parts)
		}
		mp, ok := parts[0].Options.MessagePayload()
		if !ok || !bytes.Equal(mp, encoded) || parts[0].Options.Has(TagSARMsgRefNum) {
			t.Fatalf("options % x", []byte(parts[0].Options))
		}
		// Forced even for a message that fits one SMS.
		parts, err = Split(tmpl, SplitPayload, []byte("hi"), 1)
		if mp, _ := parts[0].Options.MessagePayload(); err != nil || string(mp) != "hi" || parts[0].ShortMessage != nil {
			t.Fatalf("short payload: %v % x", err, []byte(parts[0].Options))
		}
	})
	t.Run("UDH parts share the template's other TLVs safely", func(t *testing.T) {
		parts, err := Split(tmpl, SplitUDH8, encoded, 1)
		if err != nil || len(parts) != 2 {
			t.Fatal(len(parts), err)
		}
		parts[0].Options.SetDestinationPort(5)
		if parts[1].Options.Has(TagDestinationPort) || parts[1].Options.Len() != 1 {
			t.Fatalf("part 2 options % x", []byte(parts[1].Options))
		}
	})
	t.Run("single part has no UDH or TLVs", func(t *testing.T) {
		for _, mode := range []SplitMode{SplitUDH8, SplitUDH16, SplitSAR} {
			parts, err := Split(tmpl, mode, gsm(t, "short"), 1)
			if err != nil || len(parts) != 1 {
				t.Fatal(mode, len(parts), err)
			}
			p := parts[0]
			if string(p.ShortMessage) != "short" || p.EsmClass&EsmClassUDHI != 0 || p.Options.Len() != 1 {
				t.Fatalf("%s: %+v", mode, p)
			}
		}
	})
	if !bytes.Equal(tmpl.Options, before) || string(tmpl.ShortMessage) != "ignored" || tmpl.EsmClass != EsmClassUDHI|0x03 {
		t.Fatalf("template modified: %+v", tmpl)
	}
}

func TestSplitErrors(t *testing.T) {
	tmpl := &SubmitSM{}
	check := func(err error, field string, st CommandStatus) {
		t.Helper()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field || fe.Status != st || fe.Command != SubmitSMID {
			t.Fatalf("err = %v, want %s with %s", err, field, st)
		}
	}
	_, err := Split(tmpl, SplitUDH8, bytes.Repeat([]byte{'a'}, 255*153+1), 1)
	check(err, "short_message", ESME_RINVMSGLEN)
	if parts, err := Split(tmpl, SplitUDH8, bytes.Repeat([]byte{'a'}, 255*153), 1); err != nil || len(parts) != 255 {
		t.Fatalf("255 full parts: %d %v", len(parts), err)
	}
	_, err = Split(tmpl, SplitPayload, make([]byte, 0x10000), 1)
	check(err, "message_payload", ESME_RINVPARLEN)
	if _, err := Split(tmpl, SplitMode(0), []byte("a"), 1); !errors.Is(err, ErrSplitMode) {
		t.Fatalf("mode 0: %v", err)
	}
	if _, err := Split(tmpl, SplitMode(9), []byte("a"), 1); !errors.Is(err, ErrSplitMode) {
		t.Fatalf("mode 9: %v", err)
	}
	if _, err := Split((*SubmitSM)(nil), SplitUDH8, []byte("a"), 1); err == nil {
		t.Fatal("nil template accepted")
	}
	if _, err := SplitText(&SubmitSM{DataCoding: uint8(text.IA5)}, SplitUDH8, "Привет", 1); !errors.Is(err, text.ErrUnencodable) {
		t.Fatalf("IA5 Cyrillic: %v", err)
	}
}

func TestSplitText(t *testing.T) {
	t.Run("picks GSM", func(t *testing.T) {
		parts, err := SplitText(&SubmitSM{}, SplitUDH8, strings.Repeat("€", 81), 3) // 162 septets
		if err != nil || len(parts) != 2 || parts[0].DataCoding != uint8(text.Default) {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
	})
	t.Run("picks UCS-2", func(t *testing.T) {
		parts, err := SplitText(&SubmitSM{}, SplitUDH8, strings.Repeat("Привет ", 11), 3) // 77 units
		if err != nil || len(parts) != 2 || parts[0].DataCoding != uint8(text.UCS2) || parts[1].DataCoding != uint8(text.UCS2) {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
	})
	t.Run("keeps a given coding", func(t *testing.T) {
		parts, err := SplitText(&SubmitSM{DataCoding: uint8(text.Latin1)}, SplitUDH8, strings.Repeat("é", 140), 3)
		if err != nil || len(parts) != 1 || parts[0].DataCoding != uint8(text.Latin1) || len(parts[0].ShortMessage) != 140 {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
	})
	t.Run("deliver_sm", func(t *testing.T) {
		tmpl := &DeliverSM{SourceAddr: "a", DestinationAddr: "b"}
		parts, err := SplitText(tmpl, SplitUDH16, strings.Repeat("x", 400), 0x0102)
		if err != nil || len(parts) != 3 {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
		if !bytes.HasPrefix(parts[2].ShortMessage, []byte{6, 8, 4, 1, 2, 3, 3}) || parts[2].SourceAddr != "a" {
			t.Fatalf("part 3: %+v", parts[2])
		}
	})
	t.Run("submit_multi", func(t *testing.T) {
		tmpl := &SubmitMulti{SourceAddr: "a", DestAddresses: []DestAddress{{Flag: DestFlagSMEAddress, Addr: "b"}}}
		parts, err := SplitText(tmpl, SplitSAR, strings.Repeat("x", 400), 5)
		if err != nil || len(parts) != 3 || len(parts[0].DestAddresses) != 1 {
			t.Fatalf("%d parts, %v", len(parts), err)
		}
	})
}

// FuzzParseUDH feeds arbitrary user data to ParseUDH: an error or a header that stays inside the
// input, whose concatenation IE is valid and survives AppendConcatUDH.
func FuzzParseUDH(f *testing.F) {
	f.Add([]byte{5, 0, 3, 0xAB, 3, 2, 'h', 'i'})
	f.Add([]byte{6, 8, 4, 0x12, 0x34, 2, 2, 'x'})
	f.Add([]byte{11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 7, 2, 1, 0xFF})
	f.Add([]byte{10, 0, 3, 1, 2, 1, 0, 3, 9, 4, 3})
	f.Add([]byte{0})
	f.Add([]byte{5, 0, 3, 1, 0, 0})
	f.Add([]byte{3, 0, 3, 1, 1, 1})
	f.Add([]byte{255})
	f.Fuzz(func(t *testing.T, ud []byte) {
		h, rest, err := ParseUDH(ud)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != "short_message" {
				t.Fatalf("error %v is not a short_message FieldError", err)
			}
			if fe.Status != ESME_RINVMSGLEN && fe.Status != ESME_RINVESMCLASS {
				t.Fatalf("status %s", fe.Status)
			}
			return
		}
		if len(h) != 1+int(ud[0]) || len(h)+len(rest) != len(ud) || !bytes.Equal(append(bytes.Clone([]byte(h)), rest...), ud) {
			t.Fatalf("header % x and rest % x do not make up % x", []byte(h), rest, ud)
		}
		n := 1
		for _, data := range h.IEs() {
			n += 2 + len(data)
		}
		if n != len(h) {
			t.Fatalf("IEs cover %d of %d octets", n, len(h))
		}
		if c, ok := h.Concat(); ok {
			if c.Total == 0 || c.Seq == 0 || c.Seq > c.Total {
				t.Fatalf("invalid concatenation accepted: %+v", c)
			}
			h2, _, err := ParseUDH(AppendConcatUDH(nil, c.Ref, c.Total, c.Seq, c.SixteenBit))
			if c2, _ := h2.Concat(); err != nil || c2 != c {
				t.Fatalf("concatenation %+v round trips to %+v, %v", c, c2, err)
			}
		}
		other := h.AppendOther(nil)
		if len(other) >= len(h) && len(other) > 0 {
			t.Fatalf("other IEs % x longer than the header % x", other, []byte(h))
		}
	})
}

func BenchmarkSplitText500(b *testing.B) {
	s := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 12)[:500]
	tmpl := &SubmitSM{SourceAddr: "447700900123", DestinationAddr: "447700900456", RegisteredDelivery: RegisteredDeliveryReceiptFinal}
	b.ReportAllocs()
	for b.Loop() {
		parts, err := SplitText(tmpl, SplitUDH8, s, 42)
		if err != nil || len(parts) != 4 {
			b.Fatal(len(parts), err)
		}
	}
}
