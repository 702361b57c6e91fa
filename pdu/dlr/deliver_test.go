package dlr

import (
	"errors"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
)

// receiptPDU builds a deliver_sm as an upstream SMSC might send it.
func receiptPDU(esm, coding uint8, text []byte, set func(o *pdu.Options)) *pdu.DeliverSM {
	d := &pdu.DeliverSM{EsmClass: esm, DataCoding: coding, ShortMessage: text}
	if set != nil {
		set(&d.Options)
	}
	return d
}

func ucs2(s string) []byte {
	b, err := text.Encode(text.UCS2, s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestFromDeliverSM(t *testing.T) {
	const rtext = "id:1234567890 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:Hello"
	parsed, err := Parse(rtext)
	if err != nil {
		t.Fatal(err)
	}
	gsmErr := pdu.NetworkErrorCode{Type: 3, Code: 0x0001}
	tests := []struct {
		name string
		d    *pdu.DeliverSM
		want Info
		text error // the sentinel Info.TextErr wraps, nil for none
	}{
		{
			name: "text only",
			d:    receiptPDU(pdu.EsmClassReceipt, 0, []byte(rtext), nil),
			want: Info{MessageID: "1234567890", State: pdu.DELIVERED, Receipt: parsed},
		},
		{
			name: "TLVs win over the text",
			d: receiptPDU(pdu.EsmClassReceipt, 0, []byte(rtext), func(o *pdu.Options) {
				o.SetReceiptedMessageID("499602D2") // the same id in hex, as many SMSCs do
				o.SetMessageState(pdu.UNDELIVERABLE)
				o.SetNetworkErrorCode(gsmErr)
			}),
			want: Info{MessageID: "499602D2", State: pdu.UNDELIVERABLE, NetworkError: gsmErr, HasNetworkError: true, Receipt: parsed},
		},
		{
			name: "TLVs only, empty short_message",
			d: receiptPDU(pdu.EsmClassReceipt, 0, nil, func(o *pdu.Options) {
				o.SetReceiptedMessageID("abc")
				o.SetMessageState(pdu.EXPIRED)
			}),
			want: Info{MessageID: "abc", State: pdu.EXPIRED, Receipt: Receipt{Sub: NoCount, Dlvrd: NoCount}},
			text: ErrNotReceipt,
		},
		{
			name: "TLVs complete a text with a bad date and no stat",
			d: receiptPDU(pdu.EsmClassReceipt, 0, []byte("id:77 submit date:99999 err:000 text:x"), func(o *pdu.Options) {
				o.SetMessageState(pdu.DELIVERED)
			}),
			want: Info{MessageID: "77", State: pdu.DELIVERED, Receipt: Receipt{ID: "77", Sub: NoCount, Dlvrd: NoCount, Err: "000", Text: "x"}},
			text: ErrMalformed,
		},
		{
			name: "message_state 0 is no state: the text's stat counts",
			d: receiptPDU(pdu.EsmClassReceipt, 0, []byte(rtext), func(o *pdu.Options) {
				o.SetMessageState(0)
			}),
			want: Info{MessageID: "1234567890", State: pdu.DELIVERED, Receipt: parsed},
		},
		{
			name: "intermediate notification",
			d:    receiptPDU(pdu.EsmClassIntermediate, 0, []byte("id:5 stat:ENROUTE err:000 text:"), nil),
			want: Info{MessageID: "5", State: pdu.ENROUTE, Intermediate: true, Receipt: Receipt{ID: "5", Sub: NoCount, Dlvrd: NoCount, Stat: "ENROUTE", Err: "000"}},
		},
		{
			name: "UCS-2 text",
			d:    receiptPDU(pdu.EsmClassReceipt, uint8(text.UCS2), ucs2(rtext), nil),
			want: Info{MessageID: "1234567890", State: pdu.DELIVERED, Receipt: parsed},
		},
		{
			name: "Latin-1 text",
			d:    receiptPDU(pdu.EsmClassReceipt, uint8(text.Latin1), []byte("id:9 stat:DELIVRD err:000 text:caf\xe9"), nil),
			want: Info{MessageID: "9", State: pdu.DELIVERED, Receipt: Receipt{ID: "9", Sub: NoCount, Dlvrd: NoCount, Stat: "DELIVRD", Err: "000", Text: "café"}},
		},
		{
			name: "text in message_payload",
			d: receiptPDU(pdu.EsmClassReceipt, 0, nil, func(o *pdu.Options) {
				o.SetMessagePayload([]byte(rtext))
			}),
			want: Info{MessageID: "1234567890", State: pdu.DELIVERED, Receipt: parsed},
		},
		{
			name: "user data header skipped",
			d:    receiptPDU(pdu.EsmClassReceipt|pdu.EsmClassUDHI, 0, append([]byte{5, 0, 3, 1, 1, 1}, rtext...), nil),
			want: Info{MessageID: "1234567890", State: pdu.DELIVERED, Receipt: parsed},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromDeliverSM(tc.d)
			if err != nil {
				t.Fatalf("FromDeliverSM: %v", err)
			}
			if !errors.Is(got.TextErr, tc.text) || (tc.text == nil) != (got.TextErr == nil) {
				t.Fatalf("TextErr = %v, want %v", got.TextErr, tc.text)
			}
			got.TextErr = nil
			if got != tc.want {
				t.Fatalf("FromDeliverSM:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestFromDeliverSMErrors(t *testing.T) {
	tests := []struct {
		name  string
		d     *pdu.DeliverSM
		is    error
		field string
	}{
		{"nil", nil, ErrNotReceipt, ""},
		{"MO", receiptPDU(0, 0, []byte("id:1 stat:DELIVRD"), nil), ErrNotReceipt, ""},
		{"SME acknowledgement", receiptPDU(pdu.EsmClassSMEAck, 0, []byte("id:1 stat:DELIVRD"), nil), ErrNotReceipt, ""},
		{"empty receipt", receiptPDU(pdu.EsmClassReceipt, 0, nil, nil), ErrMalformed, "receipted_message_id"},
		{"no id anywhere", receiptPDU(pdu.EsmClassReceipt, 0, []byte("stat:DELIVRD err:000"), nil), ErrMalformed, "receipted_message_id"},
		{"empty receipted_message_id", receiptPDU(pdu.EsmClassReceipt, 0, nil, func(o *pdu.Options) {
			o.SetReceiptedMessageID("")
			o.SetMessageState(pdu.DELIVERED)
		}), ErrMalformed, "receipted_message_id"},
		{"no state anywhere", receiptPDU(pdu.EsmClassReceipt, 0, []byte("id:1 err:000"), nil), ErrMalformed, "message_state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromDeliverSM(tc.d)
			if !errors.Is(err, tc.is) {
				t.Fatalf("error = %v, want %v", err, tc.is)
			}
			var fe *FieldError
			if tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field) {
				t.Fatalf("error = %v, want a FieldError for %s", err, tc.field)
			}
		})
	}
}

func TestFromDeliverSMDoesNotAlias(t *testing.T) {
	sm := []byte("id:1234 stat:DELIVRD err:000 text:x")
	d := receiptPDU(pdu.EsmClassReceipt, 0, sm, func(o *pdu.Options) { o.SetReceiptedMessageID("ABCD") })
	info, err := FromDeliverSM(d)
	if err != nil {
		t.Fatal(err)
	}
	// The frame buffer is reused for the next PDU read.
	for i := range sm {
		sm[i] = 'z'
	}
	for i := range d.Options {
		d.Options[i] = 'z'
	}
	if info.MessageID != "ABCD" || info.Receipt.ID != "1234" || info.Receipt.Text != "x" {
		t.Fatalf("Info changed with the buffers it was read from: %#v", info)
	}
}

func TestToDeliverSM(t *testing.T) {
	r := Receipt{ID: "1234567890", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "UNDELIV", Err: "001", Text: "Your code is 1234"}
	info := Info{MessageID: "499602D2", State: pdu.UNDELIVERABLE, NetworkError: pdu.NetworkErrorCode{Type: 3, Code: 27}, HasNetworkError: true, Receipt: r}
	d := pdu.DeliverSM{SourceAddr: "4915112345678", DestinationAddr: "SHOP", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, EsmClass: 0x43}
	d.Options.SetCString(pdu.Tag(0x1400), "vendor") // kept
	d.Options.SetMessagePayload([]byte("stale"))    // dropped: the text fits short_message
	if err := info.ToDeliverSM(&d); err != nil {
		t.Fatal(err)
	}
	if d.EsmClass != pdu.EsmClassReceipt || d.RegisteredDelivery != 0 || d.DataCoding != 0 {
		t.Fatalf("esm_class 0x%02X registered_delivery %d data_coding %d, want 0x04 0 0", d.EsmClass, d.RegisteredDelivery, d.DataCoding)
	}
	if d.SourceAddr != "4915112345678" || d.DestinationAddr != "SHOP" {
		t.Fatalf("addresses changed: %q %q", d.SourceAddr, d.DestinationAddr)
	}
	if got, want := string(d.ShortMessage), r.String(); got != want {
		t.Fatalf("short_message %q, want %q", got, want)
	}
	if id, _ := d.Options.ReceiptedMessageID(); id != "499602D2" {
		t.Fatalf("receipted_message_id %q", id)
	}
	if st, _ := d.Options.MessageState(); st != pdu.UNDELIVERABLE {
		t.Fatalf("message_state %v", st)
	}
	if ne, ok := d.Options.NetworkErrorCode(); !ok || ne != info.NetworkError {
		t.Fatalf("network_error_code %v %v", ne, ok)
	}
	if v, ok := d.Options.CString(0x1400); !ok || v != "vendor" {
		t.Fatalf("vendor TLV lost: %q %v", v, ok)
	}
	if d.Options.Has(pdu.TagMessagePayload) {
		t.Fatal("stale message_payload kept")
	}

	// Reusing d for a receipt without a network error must not leave the old one behind.
	if err := (Info{MessageID: "x", State: pdu.DELIVERED}).ToDeliverSM(&d); err != nil {
		t.Fatal(err)
	}
	if d.Options.Has(pdu.TagNetworkErrorCode) {
		t.Fatal("stale network_error_code kept")
	}
	if got := string(d.ShortMessage); got != "id:x sub:000 dlvrd:000 stat:DELIVRD err: text:" {
		t.Fatalf("filled text %q", got)
	}
}

func TestToDeliverSMFills(t *testing.T) {
	tests := []struct {
		name      string
		info      Info
		wantID    string
		wantState pdu.MessageState
		wantText  string
	}{
		{"id and stat from the receipt", Info{Receipt: Receipt{ID: "r1", Sub: NoCount, Dlvrd: NoCount, Stat: "REJECTD"}}, "r1", pdu.REJECTED, "id:r1 stat:REJECTD err: text:"},
		{"stat from the state", Info{MessageID: "m1", State: pdu.EXPIRED, Receipt: Receipt{Sub: NoCount, Dlvrd: NoCount}}, "m1", pdu.EXPIRED, "id:m1 stat:EXPIRED err: text:"},
		{"no state at all is UNKNOWN", Info{MessageID: "m2", Receipt: Receipt{Sub: NoCount, Dlvrd: NoCount}}, "m2", pdu.UNKNOWN, "id:m2 stat:UNKNOWN err: text:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d pdu.DeliverSM
			if err := tc.info.ToDeliverSM(&d); err != nil {
				t.Fatal(err)
			}
			id, _ := d.Options.ReceiptedMessageID()
			st, _ := d.Options.MessageState()
			if id != tc.wantID || st != tc.wantState || string(d.ShortMessage) != tc.wantText {
				t.Fatalf("got id %q state %v text %q, want %q %v %q", id, st, d.ShortMessage, tc.wantID, tc.wantState, tc.wantText)
			}
		})
	}
}

func TestToDeliverSMErrors(t *testing.T) {
	for _, info := range []Info{
		{State: pdu.DELIVERED},
		{MessageID: strings.Repeat("9", 65), State: pdu.DELIVERED},
		{MessageID: "a\x00b", State: pdu.DELIVERED},
	} {
		var d pdu.DeliverSM
		err := info.ToDeliverSM(&d)
		var fe *FieldError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) || fe.Field != "receipted_message_id" {
			t.Errorf("ToDeliverSM(%q) error = %v, want a receipted_message_id FieldError", info.MessageID, err)
		}
	}
}

// TestWireRoundTrip sends receipts as smppgw's SMSC role would, through the pdu codec, and reads them
// back as its ESME role would.
func TestWireRoundTrip(t *testing.T) {
	base := Receipt{ID: "0123456789", Sub: 1, Dlvrd: 1, SubmitDate: utc(2026, 11, 21, 22, 38, 0), DoneDate: utc(2026, 11, 21, 22, 40, 0), Stat: "DELIVRD", Err: "000"}
	withText := func(text string) Receipt { r := base; r.Text = text; return r }
	tests := []struct {
		name   string
		info   Info
		coding uint8
	}{
		{"ASCII", Info{MessageID: "0123456789", State: pdu.DELIVERED, Receipt: withText("Hello World")}, 0},
		{"network error", Info{MessageID: "ABC", State: pdu.UNDELIVERABLE, NetworkError: pdu.NetworkErrorCode{Type: 3, Code: 0xFFFF}, HasNetworkError: true, Receipt: withText("x")}, 0},
		{"intermediate", Info{MessageID: "0123456789", State: pdu.ENROUTE, Intermediate: true, Receipt: Receipt{ID: "0123456789", Sub: 1, Dlvrd: 0, Stat: "ENROUTE", Err: "000"}}, 0},
		{"ASCII that GSM reads otherwise, in IA5", Info{MessageID: "0123456789", State: pdu.DELIVERED, Receipt: withText("mail@x_y {1}")}, uint8(text.IA5)},
		{"non-ASCII text in UCS-2", Info{MessageID: "0123456789", State: pdu.DELIVERED, Receipt: withText("Привет 😀 ü")}, uint8(text.UCS2)},
		{"long text in message_payload", Info{MessageID: "0123456789", State: pdu.DELIVERED, Receipt: withText(strings.Repeat("long ", 60))}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d pdu.DeliverSM
			d.SourceAddr, d.DestinationAddr = "4915112345678", "SHOP"
			if err := tc.info.ToDeliverSM(&d); err != nil {
				t.Fatal(err)
			}
			if d.DataCoding != tc.coding {
				t.Fatalf("data_coding %d, want %d", d.DataCoding, tc.coding)
			}
			frame, err := pdu.Append(nil, 7, pdu.ESME_ROK, &d)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			body, err := pdu.Decode(pdu.ParseHeader(frame), frame[pdu.HeaderLen:])
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			got, err := FromDeliverSM(body.(*pdu.DeliverSM))
			if err != nil {
				t.Fatalf("FromDeliverSM: %v", err)
			}
			if got != tc.info {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, tc.info)
			}
		})
	}
}

func TestSameInGSM(t *testing.T) {
	same := "AZaz09 !\"#%&'()*+,-./:;<=>?\r\n"
	if !sameInGSM([]byte(same)) {
		t.Errorf("sameInGSM(%q) = false", same)
	}
	for _, c := range []byte("@$_`[\\]^{|}~\x00\x1b\x7f\x80\xff") {
		if sameInGSM([]byte{c}) {
			t.Errorf("sameInGSM(%q) = true: GSM 03.38 has another character there", c)
		}
	}
}

func BenchmarkFromDeliverSM(b *testing.B) {
	d := receiptPDU(pdu.EsmClassReceipt, 0, []byte(samples[0].in), func(o *pdu.Options) {
		o.SetReceiptedMessageID("0123456789")
		o.SetMessageState(pdu.DELIVERED)
	})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromDeliverSM(d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToDeliverSM(b *testing.B) {
	info := Info{MessageID: "0123456789", State: pdu.DELIVERED, Receipt: samples[0].want}
	var d pdu.DeliverSM
	b.ReportAllocs()
	for b.Loop() {
		d.Options = d.Options[:0]
		if err := info.ToDeliverSM(&d); err != nil {
			b.Fatal(err)
		}
	}
}
