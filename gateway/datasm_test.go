package gateway

import (
	"errors"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewayDataSM: a data_sm from an ESME takes the submit_sm path: answered with a gateway id, its
// message_payload reaches the upstream intact (in a submit_sm). From an upstream that speaks data_sm
// (the simulator's AsDataSM), the receipt of that message is correlated and reaches the ESME with our
// id, and an MO reaches the account with its payload. A data_sm with no message is refused.
func TestGatewayDataSM(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := open()
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{AsDataSM: true})
		cfg := acmeVia(t, simUpstream("sim", sim.Addr()))
		cfg.Routing.MORoutes = []MORoute{{Prefix: "12345", Account: "acme"}}
		g, addr, _ := startGateway(t, cfg, st)
		sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
		rx := sessiontest.NewRecorder()
		esme := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
		ctx := sessiontest.Ctx(t)

		payload := strings.Repeat("data_sm payload ", 20) // 320 octets: more than short_message holds
		ds := &pdu.DataSM{SourceAddr: "12345", DestinationAddr: "447700900123", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal}
		ds.Options.Set(pdu.TagMessagePayload, []byte(payload))
		resp, err := esme.Send(ctx, ds)
		if err != nil {
			t.Fatal(err)
		}
		ourID := resp.Body.(*pdu.DataSMResp).MessageID
		if len(ourID) != 16 {
			t.Fatalf("data_sm_resp message id %q, want the gateway's", ourID)
		}
		sessiontest.Eventually(t, "the submit_sm at the upstream", func() bool { return sim.Count() == 1 })
		sm := sim.Submits()[0]
		if got, ok := sm.Options.Get(pdu.TagMessagePayload); !ok || string(got) != payload || len(sm.ShortMessage) != 0 || sm.DestinationAddr != "447700900123" {
			t.Errorf("upstream submit_sm %+v: payload %q", sm, got)
		}

		// The simulator's receipt comes as a data_sm.
		if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != ourID || info.State != pdu.DELIVERED {
			t.Errorf("receipt %+v, want %s DELIVERED", info, ourID)
		}
		m, err := st.GetMessage(ctx, ourID)
		if err != nil || m.Status != pdu.DELIVERED || m.Parts[0].UpstreamID != "SIM0001" {
			t.Errorf("stored message %+v, %v", m, err)
		}

		// An MO as a data_sm.
		status, err := sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345", ShortMessage: []byte("STOP")})
		if err != nil || status != pdu.ESME_ROK {
			t.Fatalf("data_sm MO answered %v %v", status, err)
		}
		sessiontest.Eventually(t, "the MO at the ESME", func() bool { return len(rx.Requests()) == 2 })
		mo := rx.Requests()[1].Body.(*pdu.DeliverSM)
		if got, _ := mo.Options.Get(pdu.TagMessagePayload); string(got) != "STOP" || mo.SourceAddr != "447700900555" || mo.DestinationAddr != "12345" {
			t.Errorf("MO at the ESME %+v, payload %q", mo, got)
		}
		if a := sim.DeliverAnswers(); len(a) != 2 || a[0] != pdu.ESME_ROK || a[1] != pdu.ESME_ROK {
			t.Errorf("the upstream's data_sm were answered %v", a)
		}

		_, err = esme.Send(ctx, &pdu.DataSM{SourceAddr: "12345", DestinationAddr: "447700900123"})
		if !errors.Is(err, pdu.ESME_RINVMSGLEN) {
			t.Errorf("data_sm without a message: %v, want ESME_RINVMSGLEN", err)
		}
	})
}
