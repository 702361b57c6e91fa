package pdu

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func encode(t testing.TB, seq uint32, status CommandStatus, b Body) []byte {
	t.Helper()
	out, err := Append(nil, seq, status, b)
	if err != nil {
		t.Fatalf("Append(%s): %v", b.CommandID(), err)
	}
	return out
}

func TestRoundTripEveryPDU(t *testing.T) {
	seen := map[CommandID]bool{}
	for i, want := range samples() {
		id := want.CommandID()
		seen[id] = true
		t.Run(id.String(), func(t *testing.T) {
			seq := uint32(i + 1)
			wire := encode(t, seq, ESME_ROK, want)
			r := NewReader(bytes.NewReader(wire), 0)
			h, got, err := r.Read()
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if h.Length != uint32(len(wire)) || h.ID != id || h.Sequence != seq || h.Status != ESME_ROK {
				t.Fatalf("header = %+v, want length %d id %s seq %d", h, len(wire), id, seq)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded %#v\nwant    %#v", got, want)
			}
			again := encode(t, seq, ESME_ROK, got)
			if !bytes.Equal(again, wire) {
				t.Fatalf("re-encoded differs:\n% x\n% x", again, wire)
			}
			if _, _, err := r.Read(); err != io.EOF {
				t.Fatalf("after the only frame: %v, want io.EOF", err)
			}
		})
	}
	// Every command id New knows has a sample, so no PDU goes untested.
	for id := CommandID(0); id < 0x200; id++ {
		for _, c := range []CommandID{id, id.Response()} {
			if New(c) != nil && !seen[c] {
				t.Errorf("no round-trip sample for %s", c)
			}
		}
	}
}

func TestEncodeZeroAllocs(t *testing.T) {
	buf := make([]byte, 0, 4096)
	for _, b := range samples() {
		if n := testing.AllocsPerRun(100, func() { _, _ = Append(buf[:0], 1, ESME_ROK, b) }); n != 0 {
			t.Errorf("Append(%s) allocates %.0f times, want 0", b.CommandID(), n)
		}
	}
}

func TestDecodeSubmitSMZeroAllocs(t *testing.T) {
	var sm *SubmitSM
	for _, b := range samples() {
		if s, ok := b.(*SubmitSM); ok {
			sm = s
		}
	}
	body := encode(t, 1, 0, sm)[HeaderLen:]
	var got SubmitSM
	if n := testing.AllocsPerRun(100, func() { _ = got.DecodeBody(body) }); n != 0 {
		t.Errorf("SubmitSM.DecodeBody allocates %.0f times, want 0", n)
	}
}

func TestErrorResponseWithoutBody(t *testing.T) {
	for _, id := range []CommandID{SubmitSMRespID, BindTransceiverRespID, DataSMRespID, QuerySMRespID, SubmitMultiRespID} {
		b, err := Decode(Header{ID: id, Status: ESME_RTHROTTLED}, nil)
		if err != nil || b.CommandID() != id {
			t.Errorf("Decode(%s, ESME_RTHROTTLED, empty) = %v, %v; want an empty body", id, b, err)
		}
	}
	// With ESME_ROK the body is mandatory.
	if _, err := Decode(Header{ID: SubmitSMRespID}, nil); !errors.Is(err, ESME_RINVCMDLEN) {
		t.Errorf("empty submit_sm_resp with ESME_ROK: %v, want ESME_RINVCMDLEN", err)
	}
}

func h2b(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for _, f := range strings.Fields(s) {
		var v byte
		for _, c := range []byte(f) {
			switch {
			case c >= '0' && c <= '9':
				v = v<<4 | (c - '0')
			case c >= 'a' && c <= 'f':
				v = v<<4 | (c - 'a' + 10)
			default:
				t.Fatalf("bad hex %q", f)
			}
		}
		out = append(out, v)
	}
	return out
}

func TestDecodeErrors(t *testing.T) {
	// A valid submit_sm body to cut and bend.
	sm := encode(t, 1, 0, &SubmitSM{SourceAddr: "1234", DestinationAddr: "5678", ShortMessage: []byte("hi")})[HeaderLen:]
	tests := []struct {
		name   string
		id     CommandID
		body   []byte
		field  string
		status CommandStatus
	}{
		{"unknown command", 0x00000099, nil, "command_id", ESME_RINVCMDID},
		{"truncated before a field", SubmitSMID, sm[:8], "dest_addr_ton", ESME_RINVCMDLEN},
		{"string without NUL at end of body", SubmitSMID, sm[:4], "source_addr", ESME_RINVCMDLEN},
		{"sm_length past the end", SubmitSMID, append(append([]byte{}, sm[:len(sm)-3]...), 200, 'h', 'i'), "short_message", ESME_RINVMSGLEN},
		{"trailing octets in an empty body", EnquireLinkID, []byte{0}, "command_length", ESME_RINVCMDLEN},
		{"trailing octets after the last field", QuerySMRespID, h2b(t, "00 00 02 00 ff"), "command_length", ESME_RINVCMDLEN},
		{"system_id too long", BindTransmitterID, append([]byte("abcdefghijklmnopq"), 0), "system_id", ESME_RINVSYSID},
		{"password too long", BindTransmitterID, append([]byte("sys\x00abcdefghij"), 0), "password", ESME_RINVPASWD},
		{"destination_addr too long", SubmitSMID, append(h2b(t, "00 01 01 31 00 01 01"), []byte("1234567890123456789012\x00")...), "destination_addr", ESME_RINVDSTADR},
		{"TLV header cut", SubmitSMID, append(append([]byte{}, sm...), 0x02, 0x04, 0x00), "optional parameters", ESME_RINVOPTPARSTREAM},
		{"TLV value past the end", SubmitSMID, append(append([]byte{}, sm...), 0x02, 0x04, 0x00, 0x05, 0x00), "user_message_reference", ESME_RINVOPTPARSTREAM},
		{"TLV with the wrong length", SubmitSMID, append(append([]byte{}, sm...), 0x02, 0x0c, 0x00, 0x01, 0x00), "sar_msg_ref_num", ESME_RINVPARLEN},
		{"no destinations", SubmitMultiID, h2b(t, "00 01 01 31 00 00"), "number_of_dests", ESME_RINVNUMDESTS},
		{"more destinations than octets", SubmitMultiID, h2b(t, "00 01 01 31 00 fe 01"), "number_of_dests", ESME_RINVNUMDESTS},
		{"bad dest_flag", SubmitMultiID, h2b(t, "00 01 01 31 00 01 03 00 00"), "dest_flag", ESME_RINVDESTFLAG},
		{"unsuccess entries cut", SubmitMultiRespID, h2b(t, "31 00 02 01 01 31 00 00 00 00 0b"), "no_unsuccess", ESME_RINVCMDLEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(Header{ID: tt.id}, tt.body)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
			if fe.Field != tt.field || fe.Status != tt.status {
				t.Fatalf("err = %v; want field %q status %s", err, tt.field, tt.status)
			}
			if !errors.Is(err, tt.status) || StatusOf(err) != tt.status {
				t.Fatalf("errors.Is(err, %s) false or StatusOf = %s", tt.status, StatusOf(err))
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("message %q does not name the field", err)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  Body
		field string
	}{
		{"short_message over 254", &SubmitSM{ShortMessage: make([]byte, 255)}, "short_message"},
		{"source_addr over 20", &SubmitSM{SourceAddr: strings.Repeat("1", 21)}, "source_addr"},
		{"NUL inside a string", &BindTransmitter{SystemID: "a\x00b"}, "system_id"},
		{"no destinations", &SubmitMulti{}, "number_of_dests"},
		{"bad dest_flag", &SubmitMulti{DestAddresses: []DestAddress{{Flag: 9}}}, "dest_flag"},
		{"oversized TLV", func() Body { var o Options; o.SetMessagePayload(make([]byte, 70000)); return &DataSM{Options: o} }(), "message_payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := Append(dst, 1, 0, tt.body)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field {
				t.Fatalf("err = %v, want a FieldError on %q", err, tt.field)
			}
			if string(out) != "keep" {
				t.Fatalf("dst changed on error: %q", out)
			}
		})
	}
}

func TestReaderLengths(t *testing.T) {
	hdr := func(length uint32) []byte {
		return AppendHeader(nil, Header{Length: length, ID: EnquireLinkID, Sequence: 9})
	}
	t.Run("undersized", func(t *testing.T) {
		_, _, err := NewReader(bytes.NewReader(hdr(15)), 0).ReadFrame()
		if !errors.Is(err, ErrLength) || StatusOf(err) != ESME_RINVCMDLEN {
			t.Fatalf("err = %v, want ErrLength with ESME_RINVCMDLEN", err)
		}
	})
	t.Run("oversized is refused before reading the body", func(t *testing.T) {
		// The body is not there at all: a reader that tried to read it would see EOF instead.
		h, _, err := NewReader(bytes.NewReader(hdr(1<<30)), 1024).ReadFrame()
		if !errors.Is(err, ErrLength) || h.Sequence != 9 {
			t.Fatalf("err = %v, header %+v; want ErrLength with the header", err, h)
		}
	})
	t.Run("truncated body", func(t *testing.T) {
		wire := append(hdr(20), 1, 2)
		if _, _, err := NewReader(bytes.NewReader(wire), 0).ReadFrame(); err != io.ErrUnexpectedEOF {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("truncated header", func(t *testing.T) {
		if _, _, err := NewReader(bytes.NewReader(hdr(16)[:10]), 0).ReadFrame(); err != io.ErrUnexpectedEOF {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("bodies are not overwritten by later reads", func(t *testing.T) {
		var wire []byte
		for i := range 50 {
			wire = encode(t, uint32(i+1), 0, &SubmitSM{SourceAddr: "src", DestinationAddr: itoa(i), ShortMessage: []byte(itoa(i))})
		}
		wire = nil
		var bodies []*SubmitSM
		for i := range 2000 {
			wire = append(wire, encode(t, uint32(i+1), 0, &SubmitSM{DestinationAddr: itoa(i), ShortMessage: []byte(itoa(i))})...)
		}
		r := NewReader(bytes.NewReader(wire), 0)
		for range 2000 {
			_, b, err := r.Read()
			if err != nil {
				t.Fatal(err)
			}
			bodies = append(bodies, b.(*SubmitSM))
		}
		for i, b := range bodies {
			if b.DestinationAddr != itoa(i) || string(b.ShortMessage) != itoa(i) {
				t.Fatalf("body %d changed: %q %q", i, b.DestinationAddr, b.ShortMessage)
			}
		}
	})
}

func TestOptions(t *testing.T) {
	var o Options
	o.Set(0x1400, []byte{1, 2, 3}) // vendor TLV first
	o.SetSARMsgRefNum(0xBEEF)
	o.SetSARTotalSegments(3)
	o.SetSARSegmentSeqnum(2)
	o.SetReceiptedMessageID("abc")
	o.SetAlertOnMessageDelivery()
	o.SetNetworkErrorCode(NetworkErrorCode{Type: 3, Code: 0x1234})
	o.SetQosTimeToLive(86400)

	if v, ok := o.SARMsgRefNum(); !ok || v != 0xBEEF {
		t.Errorf("SARMsgRefNum = %v %v", v, ok)
	}
	if v, ok := o.QosTimeToLive(); !ok || v != 86400 {
		t.Errorf("QosTimeToLive = %v %v", v, ok)
	}
	if v, ok := o.ReceiptedMessageID(); !ok || v != "abc" {
		t.Errorf("ReceiptedMessageID = %q %v", v, ok)
	}
	if !o.AlertOnMessageDelivery() {
		t.Error("AlertOnMessageDelivery not set")
	}
	if v, ok := o.NetworkErrorCode(); !ok || v != (NetworkErrorCode{3, 0x1234}) {
		t.Errorf("NetworkErrorCode = %v %v", v, ok)
	}
	if _, ok := o.MessageState(); ok {
		t.Error("MessageState present but never set")
	}
	// Replacing keeps one copy; the vendor TLV keeps its octets and its place.
	o.SetSARSegmentSeqnum(3)
	if v, _ := o.SARSegmentSeqnum(); v != 3 || o.Len() != 8 {
		t.Errorf("after replace: seqnum %d, %d TLVs; want 3, 8", v, o.Len())
	}
	if !bytes.HasPrefix(o, []byte{0x14, 0x00, 0x00, 0x03, 1, 2, 3}) {
		t.Errorf("vendor TLV moved or changed: % x", o[:7])
	}
	o.Delete(TagSARTotalSegments)
	if o.Has(TagSARTotalSegments) || o.Len() != 7 {
		t.Errorf("Delete left %d TLVs", o.Len())
	}
	// A receipted_message_id sent without its NUL (seen from some SMSCs) still reads.
	var loose Options
	loose.Set(TagReceiptedMessageID, []byte("xyz"))
	if v, ok := loose.ReceiptedMessageID(); !ok || v != "xyz" {
		t.Errorf("unterminated receipted_message_id = %q %v", v, ok)
	}
	var order []Tag
	for tag := range o.All() {
		order = append(order, tag)
	}
	want := []Tag{0x1400, TagSARMsgRefNum, TagReceiptedMessageID, TagAlertOnMessageDelivery, TagNetworkErrorCode, TagQosTimeToLive, TagSARSegmentSeqnum}
	if !reflect.DeepEqual(order, want) {
		t.Errorf("order = %v, want %v", order, want)
	}
}

func TestUnknownTLVsSurviveReencode(t *testing.T) {
	body := encode(t, 1, 0, &SubmitSM{DestinationAddr: "1"})[HeaderLen:]
	vendor := []byte{0x14, 0x01, 0x00, 0x04, 'a', 'b', 'c', 'd', 0x30, 0x00, 0x00, 0x00, 0x02, 0x04, 0x00, 0x02, 0xff, 0xfe}
	body = append(body, vendor...)
	b, err := Decode(Header{ID: SubmitSMID}, body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.AppendBody(nil)
	if err != nil || !bytes.Equal(out, body) {
		t.Fatalf("re-encode: %v\n% x\n% x", err, out, body)
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{SubmitSMID.String(), "submit_sm"},
		{GenericNackID.String(), "generic_nack"},
		{CommandID(0x1234).String(), "command_id(0x1234)"},
		{ESME_RTHROTTLED.String(), "ESME_RTHROTTLED"},
		{ESME_RTHROTTLED.Error(), "ESME_RTHROTTLED (0x58)"},
		{CommandStatus(0x401).String(), "0x401"},
		{TagMessagePayload.String(), "message_payload"},
		{Tag(0x1401).String(), "tag(0x1401)"},
		{DELIVERED.String(), "DELIVERED"},
		{MessageState(42).String(), "MessageState(42)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if !ESME_RTHROTTLED.Temporary() || ESME_RINVDSTADR.Temporary() {
		t.Error("Temporary misclassifies")
	}
	if !DELIVERED.Final() || ENROUTE.Final() {
		t.Error("Final misclassifies")
	}
	if SubmitSMID.Response() != SubmitSMRespID || !SubmitSMRespID.IsResponse() || SubmitSMID.IsResponse() {
		t.Error("Response/IsResponse wrong")
	}
}

// A value that lives in the spare capacity of the options it is set into (found by FuzzOptions).
func TestOptionsSetAliasedValue(t *testing.T) {
	buf := make([]byte, 6, 64)
	copy(buf, []byte{0x02, 0x0c, 0x00, 0x02, 0xbe, 0xef})
	v := buf[6:12]
	copy(v, "abcdef")
	o := Options(buf[:6])
	o.Set(0x1400, v)
	if got, _ := o.Get(0x1400); string(got) != "abcdef" {
		t.Fatalf("Get = %q, want abcdef", got)
	}
}

// The registered_delivery masks split the octet into SMPP 3.4 section 5.2.17's fields, no bit twice.
func TestRegisteredDeliveryMasks(t *testing.T) {
	masks := []int{RegisteredDeliveryReceiptMask, RegisteredDeliverySMEAckMask, RegisteredDeliveryIntermediate, RegisteredDeliveryReservedMask}
	all := 0
	for _, m := range masks {
		if all&m != 0 {
			t.Fatalf("mask 0x%02X overlaps 0x%02X", m, all)
		}
		all |= m
	}
	if all != 0xFF {
		t.Fatalf("masks cover 0x%02X, want 0xFF", all)
	}
	for _, v := range []int{RegisteredDeliveryReceiptNone, RegisteredDeliveryReceiptFinal, RegisteredDeliveryReceiptFailure} {
		if v&^RegisteredDeliveryReceiptMask != 0 {
			t.Errorf("receipt value 0x%02X outside its mask", v)
		}
	}
	if RegisteredDeliverySMEAck|RegisteredDeliveryUserAck != RegisteredDeliverySMEAckMask {
		t.Errorf("SME ack bits do not fill their mask")
	}
}
