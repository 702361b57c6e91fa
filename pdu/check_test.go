package pdu

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestShortMessageBound: sm_length is one octet but SMPP 3.4 bounds it at 254; 255 is refused when
// read (it used to be accepted, and the message then failed for good when sent on), 254 passes.
func TestShortMessageBound(t *testing.T) {
	ok := &SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: bytes.Repeat([]byte("x"), 254)}
	b, err := ok.AppendBody(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := new(SubmitSM).DecodeBody(b); err != nil {
		t.Fatalf("254 octets: %v", err)
	}
	i := len(b) - 255 // the sm_length octet
	if b[i] != 254 {
		t.Fatalf("sm_length at %d is %d", i, b[i])
	}
	for _, body := range []Body{new(SubmitSM), new(DeliverSM)} {
		bad := append(append([]byte(nil), b...), 'x')
		bad[i] = 255
		err := body.DecodeBody(bad)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Status != ESME_RINVMSGLEN || fe.Field != "short_message" || fe.Reason != "255 octets, at most 254" {
			t.Fatalf("%v with sm_length 255: %v", body.CommandID(), err)
		}
	}
}

// TestCheckAgreesWithAppendBody: Check refuses exactly what AppendBody refuses, with the same error.
func TestCheckAgreesWithAppendBody(t *testing.T) {
	var opts Options
	opts.SetMessagePayload(bytes.Repeat([]byte("p"), 300))
	cases := []*SubmitSM{
		{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("hi")},
		{SourceAddr: "1", DestinationAddr: "2", Options: opts},
		{ServiceType: "toolong", DestinationAddr: "2"},
		{SourceAddr: strings.Repeat("1", 21), DestinationAddr: "2"},
		{SourceAddr: "1", DestinationAddr: "2\x003"},
		{SourceAddr: "1", DestinationAddr: "2", ShortMessage: bytes.Repeat([]byte("x"), 255)},
		{SourceAddr: "1", DestinationAddr: "2", Options: Options{0x02, 0x0C, 0x00, 0x01, 0x07}}, // sar_msg_ref_num of 1 octet
		{SourceAddr: "1", DestinationAddr: "2", ValidityPeriod: strings.Repeat("0", 17)},
	}
	for i, p := range cases {
		_, aerr := p.AppendBody(nil)
		cerr := p.Check()
		if (aerr == nil) != (cerr == nil) || (aerr != nil && aerr.Error() != cerr.Error()) {
			t.Errorf("case %d: AppendBody %v, Check %v", i, aerr, cerr)
		}
		if i > 1 && cerr == nil {
			t.Errorf("case %d: Check accepts what SMPP refuses", i)
		}
	}
}
