package gateway

import (
	"fmt"
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewayHoldsUntilReceiverBinds: a receipt for an account bound as transmitter only waits in the
// store, and is delivered once the account binds as receiver.
func TestGatewayHoldsUntilReceiverBinds(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	_, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
	tx := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	resp, err := tx.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("m")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	q := store.Queue{Kind: store.DeliverQueue, Name: "acme"}
	sessiontest.Eventually(t, "the receipt to wait for the account", func() bool {
		n, err := st.QueueLen(sessiontest.Ctx(t), q)
		return err == nil && n == 1
	})
	rx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindReceiver, "acme", "secret")
	if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != ourID || info.State != pdu.DELIVERED {
		t.Errorf("receipt %+v, want %s DELIVERED", info, ourID)
	}
	sessiontest.Eventually(t, "the delivery queue to empty", func() bool {
		n, err := st.QueueLen(sessiontest.Ctx(t), q)
		return err == nil && n == 0
	})
}

// TestGatewayDeliversBurst: more MO than the session window, queued while the account is away, all
// reach its bind once it binds (bounded: 300 messages, sessiontest.Wait).
func TestGatewayDeliversBurst(t *testing.T) {
	const n = 300
	st := newEmbedded(t)
	g, addr, _ := startGateway(t, Config{
		Accounts: []Account{testAccount(t, "acme", "secret")},
		Routing:  RouterConfig{MORoutes: []MORoute{{Account: "acme"}}},
	}, st)
	for i := range n {
		if st := deliverNow(g.inbound, "up", session.Request{Body: &pdu.DeliverSM{DestinationAddr: "1", ShortMessage: []byte(fmt.Sprint(i))}}); st != pdu.ESME_ROK {
			t.Fatalf("MO %d: %v", i, st)
		}
	}
	if st := deliverNow(g.inbound, "up", session.Request{Body: &pdu.SubmitSM{}}); st != pdu.ESME_RINVCMDID {
		t.Errorf("submit_sm from upstream: %v", st)
	}
	rx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	sessiontest.Eventually(t, "every queued MO to be delivered", func() bool {
		return len(rx.Requests()) == n
	})
	got := map[string]bool{}
	for _, req := range rx.Requests() {
		got[string(req.Body.(*pdu.DeliverSM).ShortMessage)] = true
	}
	if len(got) != n {
		t.Errorf("%d distinct MO delivered, want %d", len(got), n)
	}
	sessiontest.Eventually(t, "the delivery queue to empty", func() bool {
		n, err := st.QueueLen(sessiontest.Ctx(t), store.Queue{Kind: store.DeliverQueue, Name: "acme"})
		return err == nil && n == 0
	})
}
