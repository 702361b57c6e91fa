package gateway

import (
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

// TestGatewayReceiptBeforeResp: an upstream that sends the receipt before its submit_sm_resp; the
// receipt is parked, picked up when the id map is written, and reaches the ESME.
func TestGatewayReceiptBeforeResp(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{ReceiptFirst: true})
	_, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("early")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != ourID || info.State != pdu.DELIVERED {
		t.Errorf("receipt %+v, want %s DELIVERED", info, ourID)
	}
	m, err := st.GetMessage(sessiontest.Ctx(t), ourID)
	if err != nil || m.Status != pdu.DELIVERED {
		t.Errorf("stored message %+v %v, want DELIVERED", m, err)
	}
}
