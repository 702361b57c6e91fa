package gateway

import (
	"bytes"
	"encoding/binary"
	"testing"

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
	sim := &simSMSC{}
	simAddr := startSim(t, sim, "127.0.0.1:0")
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	p := dialRaw(t, addr)
	p.request(&pdu.BindTransmitter{SystemID: "acme", Password: "secret", InterfaceVersion: 0x34})
	p.expect(pdu.BindTransmitterRespID, pdu.ESME_ROK)

	p.write(rawSubmitSM(10, "12345", "447700900123", bytes.Repeat([]byte("x"), 255), 255))
	h, _ := p.read()
	if h.ID != pdu.SubmitSMRespID || h.Sequence != 10 || h.Status != pdu.ESME_RINVMSGLEN {
		t.Fatalf("sm_length 255: got %v %v seq %d, want submit_sm_resp ESME_RINVMSGLEN seq 10", h.ID, h.Status, h.Sequence)
	}
	// 254 octets are the most a short_message holds, and go through.
	p.write(rawSubmitSM(11, "12345", "447700900123", bytes.Repeat([]byte("y"), 254), 254))
	p.expect(pdu.SubmitSMRespID, pdu.ESME_ROK)
	eventually(t, "the 254-octet message forwarded", func() bool { return len(sim.submitted()) == 1 })
	if got := sim.submitted()[0].ShortMessage; len(got) != 254 || got[0] != 'y' {
		t.Fatalf("forwarded %d octets %q..., want the 254 y", len(got), got[:1])
	}
	msgs, _, err := st.ListMessages(testCtx(t), store.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 || len(msgs[0].Parts[0].ShortMessage) != 254 {
		t.Fatalf("stored %d messages, want only the 254-octet one", len(msgs))
	}
}
