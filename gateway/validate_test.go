package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// rawSubmitSM is a submit_sm written octet by octet, so that it can say what our encoder refuses to.
func rawSubmitSM(seq uint32, src, dst string, sm []byte, smLength int) []byte {
	body := []byte{0, 0, 0} // service_type "", source_addr_ton, source_addr_npi
	body = append(append(body, src...), 0)
	body = append(body, 0, 0)
	body = append(append(body, dst...), 0)
	body = append(body, 0, 0, 0, 0, 0, 0, 0, 0, 0) // esm_class .. schedule "" validity "" .. sm_default_msg_id
	body = append(body, byte(smLength))
	body = append(body, sm...)
	b := binary.BigEndian.AppendUint32(nil, uint32(16+len(body)))
	b = binary.BigEndian.AppendUint32(b, uint32(pdu.SubmitSMID))
	b = binary.BigEndian.AppendUint32(b, 0)
	b = binary.BigEndian.AppendUint32(b, seq)
	return append(b, body...)
}

// TestSubmitSMLength255Refused: sm_length 255 (the spec's maximum is 254) is refused with
// ESME_RINVMSGLEN before any acknowledgement, and nothing is stored or forwarded; it used to get
// ESME_ROK and an id, and then fail for good at the upstream encoder.
func TestSubmitSMLength255Refused(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	_, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	p := smpptest.Dial(t, addr)
	p.Request(&pdu.BindTransmitter{SystemID: "acme", Password: "secret", InterfaceVersion: 0x34})
	p.Expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)

	p.Write(rawSubmitSM(10, "12345", "447700900123", bytes.Repeat([]byte("x"), 255), 255))
	h, _ := p.Read()
	if h.ID != pdu.SubmitSMRespID || h.Sequence != 10 || h.Status != pdu.ESME_RINVMSGLEN {
		t.Fatalf("sm_length 255: got %v %v seq %d, want submit_sm_resp ESME_RINVMSGLEN seq 10", h.ID, h.Status, h.Sequence)
	}
	// 254 octets are the most a short_message holds, and go through.
	p.Write(rawSubmitSM(11, "12345", "447700900123", bytes.Repeat([]byte("y"), 254), 254))
	p.Expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
	sessiontest.Eventually(t, "the 254-octet message forwarded", func() bool { return len(sim.Submits()) == 1 })
	if got := sim.Submits()[0].ShortMessage; len(got) != 254 || got[0] != 'y' {
		t.Fatalf("forwarded %d octets %q..., want the 254 y", len(got), got[:1])
	}
	msgs, _, err := st.ListMessages(sessiontest.Ctx(t), store.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || len(msgs[0].Parts[0].ShortMessage) != 254 {
		t.Fatalf("stored %d messages, want only the 254-octet one", len(msgs))
	}
}

// sameRules are inputs both paths must judge alike: a submit_sm from an ESME and a Submission from
// the API (addresses as the API takes them: a bare string, TON/NPI from its form).
var sameRules = []struct {
	name     string
	src, dst string
	msg      string
	field    string            // the field named, on both paths; "" when accepted
	smppMsg  string            // the field the SMPP path names for the content, when not field
	status   pdu.CommandStatus // what the submit_sm is refused with
}{
	{"ok", "12345", "447700900123", "hi", "", "", pdu.ESME_ROK},
	{"alphanumeric sender", "ACME", "447700900123", "hi", "", "", pdu.ESME_ROK},
	{"destination not a number", "12345", "not-a-number", "hi", "destination", "", pdu.ESME_RINVDSTADR},
	{"destination with a letter", "12345", "4477009001x3", "hi", "destination", "", pdu.ESME_RINVDSTADR},
	{"destination missing", "12345", "", "hi", "destination", "", pdu.ESME_RINVDSTADR},
	{"destination too long", "12345", "123456789012345678901", "hi", "destination", "", pdu.ESME_RINVDSTADR},
	{"empty message, empty source", "", "447700900123", "", "source", "", pdu.ESME_RINVSRCADR},
	{"empty source", "", "447700900123", "hi", "source", "", pdu.ESME_RINVSRCADR},
	{"alphanumeric sender too long", "ACMESHOPPING", "447700900123", "hi", "source", "", pdu.ESME_RINVSRCADR},
	{"sender not printable", "AC\tME", "447700900123", "hi", "source", "", pdu.ESME_RINVSRCADR},
	{"empty message", "12345", "447700900123", "", "text", "short_message", pdu.ESME_RINVMSGLEN},
}

// TestSMPPAndAPIValidateAlike: one validation for both paths; SMPP used to take a destination
// "not-a-number" and an empty message from an empty source, which the API refused.
func TestSMPPAndAPIValidateAlike(t *testing.T) {
	r := newStoreRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}}, newEmbedded(t), knownUpstreams{"up": true})
	for _, c := range sameRules {
		t.Run(c.name, func(t *testing.T) {
			sub := Submission{Account: "acme", Source: store.Address{Addr: c.src}, Destination: store.Address{Addr: c.dst}, Text: c.msg}
			// As an ESME sends it: TON/NPI as the API would pick them for the same strings.
			src, dst := defaultAddr(sub.Source), defaultAddr(sub.Destination)
			sm := &pdu.SubmitSM{SourceAddrTON: src.TON, SourceAddrNPI: src.NPI, SourceAddr: src.Addr,
				DestAddrTON: dst.TON, DestAddrNPI: dst.NPI, DestinationAddr: dst.Addr, ShortMessage: []byte(c.msg)}
			apiField, apiReason := apiRefusal(t, r, sub)
			smppField, st := smppRefusal(t, r, sm)
			wantSMPP := c.field
			if c.smppMsg != "" {
				wantSMPP = c.smppMsg
			}
			if apiField != c.field || smppField != wantSMPP || st != c.status {
				t.Fatalf("API refused %q (%s), SMPP %q with %v; want %q / %q with %v", apiField, apiReason, smppField, st, c.field, wantSMPP, c.status)
			}
		})
	}
}

func apiRefusal(t *testing.T, r *storePath, s Submission) (field, reason string) {
	t.Helper()
	_, err := r.fromSubmission(s, time.Now())
	if err == nil {
		return "", ""
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("API refusal %v is not a ValidationError", err)
	}
	return ve.Field, ve.Reason
}

func smppRefusal(t *testing.T, r *storePath, sm *pdu.SubmitSM) (field string, st pdu.CommandStatus) {
	t.Helper()
	_, err := r.fromSubmitSM("acme", sm, time.Now())
	if err == nil {
		return "", pdu.ESME_ROK
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("SMPP refusal %v is not a ValidationError", err)
	}
	return ve.Field, statusForAcceptError(err)
}

// BenchmarkFromSubmitSM is the validation of one submit_sm, checkUpstream included.
func BenchmarkFromSubmitSM(b *testing.B) {
	r := newStorePath(RouterConfig{}, nil, knownUpstreams{"up": true})
	r.routeTable.routes.Store(&[]store.Route{{Name: "all", Upstreams: []string{"up"}}})
	sm := submit("447700900123")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.fromSubmitSM("acme", sm, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckUpstream is what checking the upstream submit_sm adds to it.
func BenchmarkCheckUpstream(b *testing.B) {
	m := &store.Message{Source: store.Address{Addr: "12345"}, Destination: store.Address{Addr: "447700900123"},
		Parts: []store.Part{{ShortMessage: []byte("hello")}}}
	b.ReportAllocs()
	for b.Loop() {
		if ve := checkUpstream(m); ve != nil {
			b.Fatal(ve)
		}
	}
}

// TestErrorsSayItInUserTerms: errors users read (API validation, configuration printed by smppgw
// serve) name the field and the limit, with no Go package prefix.
func TestErrorsSayItInUserTerms(t *testing.T) {
	r := newStoreRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}}, newEmbedded(t), knownUpstreams{"up": true})
	now := time.Now()
	smpp := func(sm *pdu.SubmitSM) error {
		_, err := r.fromSubmitSM("acme", sm, now)
		return err
	}
	api := func(s Submission) error {
		s.Account = "acme"
		_, err := r.fromSubmission(s, now)
		return err
	}
	ia5 := uint8(1)
	for _, c := range []struct {
		err  error
		want string
	}{
		{smpp(&pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: bytes.Repeat([]byte("x"), 255)}), "short_message: 255 octets, at most 254"},
		{smpp(&pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "not-a-number", ShortMessage: []byte("x")}), "destination: not a number: digits only, optionally after '+'"},
		{smpp(&pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ServiceType: "CMT", ShortMessage: []byte("x"), Options: pdu.Options{0x02, 0x0C, 0x00, 0x01, 0x07}}), "sar_msg_ref_num: length 1 outside 2..2"},
		{api(Submission{Source: store.Address{Addr: "ACMESHOPPING"}, Destination: store.Address{Addr: "2"}, Text: "x"}), "source: 12 characters, at most 11 in an alphanumeric sender"},
		{api(Submission{Source: store.Address{Addr: "ACME"}, Destination: store.Address{Addr: "+4477009001234567"}, Text: "x"}), "destination: 16 digits, at most 15 in an international number"},
		{api(Submission{Source: store.Address{Addr: "ACME"}, Destination: store.Address{Addr: "2"}, Text: strings.Repeat("x", 160*300)}), "text: message needs 314 parts, at most 255"},
		{api(Submission{Source: store.Address{Addr: "ACME"}, Destination: store.Address{Addr: "2"}, Text: "€", DataCoding: &ia5}), "text: character not encodable: '€' (U+20AC) at byte offset 0 in IA5"},
		{ClientConfig{Address: "x", SystemID: "gw", Password: "123456789"}.Validate(), "password: 9 octets, at most 8"},
		{ServerConfig{SystemID: strings.Repeat("s", 16)}.Validate(), `system_id: "ssssssssssssssss" is 16 octets, at most 15`},
		{session.Config{InboundLimit: -1}.Validate(), "session.inbound_limit: -1, must not be negative"},
		{RouterConfig{LongMessages: "smoke"}.Validate(nil), `long_messages "smoke": want udh8, udh16, sar or payload`},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("error %v, want %q", c.err, c.want)
		}
	}
}
