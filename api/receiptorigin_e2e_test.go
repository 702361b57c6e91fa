package api_test

import (
	"context"
	"testing"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// A receipt goes back by the channel its message came in by: the real gateway, the simulated
// upstream (which sends a receipt for every submission asking for one), the API and SMPP ESMEs over
// loopback, on both stores.
//   - acme submits two messages through the API (REST and gRPC) asking for receipts, with no bind:
//     both receipts reach its gRPC receipt stream, and its SMPP delivery queue stays empty (store
//     and admin stats). Before origins were kept, the queue held 2 receipt deliver_sm, and nothing
//     ever took them.
//   - acme then binds and submits over SMPP: that message's receipt reaches the bind, and nothing
//     else does (before: the 2 API receipts too). An MO routed to acme still reaches the bind.
//   - A message as recorded before origins (no origin in its record) gets its receipt on the bind,
//     as an SMPP one.
//   - "both" opts in (api_receipts_over_smpp, set and read back through the admin API): its API
//     message's receipt reaches its receiver bind as a deliver_sm, and its receipt stream too.
func TestReceiptOriginEmbedded(t *testing.T) {
	runReceiptOrigin(t, openEmbedded(t))
}

func TestReceiptOriginRedis(t *testing.T) {
	st, _ := openRedis(t)
	runReceiptOrigin(t, st)
}

func runReceiptOrigin(t *testing.T, st store.Store) {
	sim := startSim(t)
	g := startGateway(t, st, sim.Addr())
	e := startEnv(t, g, st, nil)
	op := basicAuth()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	e.createAccount("acme", "pw1")
	e.mustREST(200, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "both", "password": "pw1", "apiReceiptsOverSmpp": true}, nil)
	type account struct {
		Account struct {
			APIReceiptsOverSMPP bool `json:"apiReceiptsOverSmpp"`
		} `json:"account"`
	}
	var a account
	e.mustREST(200, "GET", "/v1/admin/accounts/both", op, nil, &a)
	if !a.Account.APIReceiptsOverSMPP {
		t.Fatal("both read back without apiReceiptsOverSmpp")
	}
	e.mustREST(200, "GET", "/v1/admin/accounts/acme", op, nil, &a)
	if a.Account.APIReceiptsOverSMPP {
		t.Fatal("acme read back with apiReceiptsOverSmpp")
	}
	keys := map[string]string{"acme": e.createKey("acme", "SCOPE_SEND", "SCOPE_READ"), "both": e.createKey("both", "SCOPE_SEND", "SCOPE_READ")}
	eventually(t, "up1 bound", func() bool { return g.Upstreams()[0].Status.State == gateway.ClientBound })

	streamed := map[string]chan *smppgwv1.Receipt{}
	for _, acc := range []string{"acme", "both"} {
		gs, err := e.msg.StreamReceipts(withAuth(ctx, keys[acc]), &smppgwv1.StreamReceiptsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := gs.Header(); err != nil {
			t.Fatal(err)
		}
		ch := make(chan *smppgwv1.Receipt, 10)
		streamed[acc] = ch
		go func() {
			for {
				r, err := gs.Recv()
				if err != nil {
					return
				}
				ch <- r.Receipt
			}
		}()
	}
	next := func(acc string) *smppgwv1.Receipt {
		t.Helper()
		select {
		case r := <-streamed[acc]:
			return r
		case <-time.After(10 * time.Second):
			t.Fatalf("no receipt on %s's stream", acc)
			return nil
		}
	}
	depth := func(acc string) (inStore int, inStats string) {
		t.Helper()
		qs, err := st.QueueStats(ctx, store.Queue{Kind: store.DeliverQueue, Name: acc})
		if err != nil {
			t.Fatal(err)
		}
		var stats struct {
			DeliveryQueues []struct {
				Name  string `json:"name"`
				Depth string `json:"depth"`
			} `json:"deliveryQueues"`
		}
		e.mustREST(200, "GET", "/v1/admin/stats", op, nil, &stats)
		for _, q := range stats.DeliveryQueues {
			if q.Name == acc {
				return qs.Len, q.Depth
			}
		}
		t.Fatalf("admin stats list no delivery queue for %s: %+v", acc, stats.DeliveryQueues)
		return 0, ""
	}

	// acme, API only: two messages with receipts, no bind.
	var sub submitAnswer
	e.mustREST(200, "POST", "/v1/messages", keys["acme"], map[string]any{"source": "ACME", "destination": "4915112345678",
		"text": "over REST", "registeredDelivery": "REGISTERED_DELIVERY_FINAL"}, &sub)
	gsub, err := e.msg.Submit(withAuth(ctx, keys["acme"]), &smppgwv1.SubmitRequest{Source: "ACME", Destination: "4915187654321",
		Payload: &smppgwv1.SubmitRequest_Text{Text: "over gRPC"}, RegisteredDelivery: smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FINAL})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{sub.MessageID: true, gsub.MessageId: true}
	for range 2 {
		if r := next("acme"); !want[r.MessageId] || r.Status != smppgwv1.MessageStatus_MESSAGE_STATUS_DELIVERED {
			t.Fatalf("acme streamed %v, want a DELIVERED receipt of %v", r, want)
		} else {
			delete(want, r.MessageId)
		}
	}
	time.Sleep(300 * time.Millisecond) // room for a receipt deliver_sm to be queued after the stream got it
	if n, s := depth("acme"); n != 0 || s != "0" {
		t.Fatalf("acme's delivery queue holds %d (admin stats: %s) after 2 API receipts, want 0", n, s)
	}
	for _, id := range []string{sub.MessageID, gsub.MessageId} {
		m, err := st.GetMessage(ctx, id)
		if err != nil || m.Origin != store.OriginAPI {
			t.Fatalf("message %s: origin %q (%v), want api", id, m.Origin, err)
		}
	}

	// acme binds and submits over SMPP: its receipt, and only it, reaches the bind.
	rx := sessiontest.NewRecorder()
	s := sessiontest.BindESME(t, g.Server().Addrs()[0].String(), rx, session.Config{}, session.BindTransceiver, "acme", "pw1")
	resp, err := s.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "4915112345678",
		RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("over SMPP")})
	if err != nil || resp.Status != pdu.ESME_ROK {
		t.Fatalf("submit_sm: %v %v", resp.Status, err)
	}
	smppID := resp.Body.(*pdu.SubmitSMResp).MessageID
	if r := next("acme"); r.MessageId != smppID {
		t.Fatalf("acme streamed %s, want the SMPP message's %s", r.MessageId, smppID)
	}
	if m, err := st.GetMessage(ctx, smppID); err != nil || m.Origin != store.OriginSMPP {
		t.Fatalf("SMPP message: origin %q (%v), want \"\"", m.Origin, err)
	}
	eventually(t, "the SMPP receipt at acme's bind", func() bool { return len(rx.Requests()) >= 1 })
	checkReceipt := func(rx *sessiontest.Recorder, i int, id string) {
		t.Helper()
		d, ok := rx.Requests()[i].Body.(*pdu.DeliverSM)
		if !ok {
			t.Fatalf("request %d at the bind is %T, want a deliver_sm", i, rx.Requests()[i].Body)
		}
		if rid, _ := d.Options.ReceiptedMessageID(); rid != id || d.EsmClass&pdu.EsmClassTypeMask != pdu.EsmClassReceipt {
			t.Fatalf("deliver_sm %d: receipted_message_id %q, esm_class %#x; want the receipt of %s", i, rid, d.EsmClass, id)
		}
	}
	checkReceipt(rx, 0, smppID)

	// A message recorded as before origins were kept: its receipt goes to the bind.
	old := &store.Message{ID: "7000000000000001", Account: "acme", Source: store.Address{Addr: "1"},
		Destination: store.Address{TON: 1, NPI: 1, Addr: "4915112345678"}, RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal,
		Upstream: "up1", Parts: []store.Part{{ShortMessage: []byte("recorded before origins")}}}
	if b := store.AppendMessage(nil, old); b[1] != 2 {
		t.Fatalf("a message with no origin is written as version %d, want 2 (as before origins)", b[1])
	}
	if err := st.AcceptMessage(ctx, old); err != nil {
		t.Fatal(err)
	}
	if r := next("acme"); r.MessageId != old.ID {
		t.Fatalf("acme streamed %s, want the old message's %s", r.MessageId, old.ID)
	}
	eventually(t, "the old message's receipt at acme's bind", func() bool { return len(rx.Requests()) >= 2 })
	checkReceipt(rx, 1, old.ID)

	// MO routing is unchanged: an MO to 12345 goes to acme's bind.
	if status, err := sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "4917000000", DestinationAddr: "12345", ShortMessage: []byte("MO hello")}); err != nil || status != pdu.ESME_ROK {
		t.Fatalf("MO: %v %v", status, err)
	}
	eventually(t, "the MO at acme's bind", func() bool { return len(rx.Requests()) >= 3 })
	if d, ok := rx.Requests()[2].Body.(*pdu.DeliverSM); !ok || string(d.ShortMessage) != "MO hello" {
		t.Fatalf("third request at acme's bind: %+v, want the MO", rx.Requests()[2].Body)
	}
	time.Sleep(300 * time.Millisecond) // room for anything else queued for acme
	if n := len(rx.Requests()); n != 3 {
		t.Fatalf("%d requests at acme's bind, want 3 (the SMPP and the old message's receipts, the MO)", n)
	}
	if n, s := depth("acme"); n != 0 || s != "0" {
		t.Fatalf("acme's delivery queue holds %d (admin stats: %s), want 0", n, s)
	}

	// both opts in: its API message's receipt reaches its receiver bind.
	brx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, g.Server().Addrs()[0].String(), brx, session.Config{}, session.BindReceiver, "both", "pw1")
	e.mustREST(200, "POST", "/v1/messages", keys["both"], map[string]any{"source": "BOTH", "destination": "4915112345678",
		"text": "over REST, receipt over SMPP", "registeredDelivery": "REGISTERED_DELIVERY_FINAL"}, &sub)
	if r := next("both"); r.MessageId != sub.MessageID {
		t.Fatalf("both streamed %s, want %s", r.MessageId, sub.MessageID)
	}
	eventually(t, "the API receipt at both's receiver bind", func() bool { return len(brx.Requests()) >= 1 })
	checkReceipt(brx, 0, sub.MessageID)
	time.Sleep(300 * time.Millisecond)
	if n := len(brx.Requests()); n != 1 {
		t.Fatalf("%d requests at both's bind, want the one receipt", n)
	}
	if n, s := depth("both"); n != 0 || s != "0" {
		t.Fatalf("both's delivery queue holds %d (admin stats: %s) after its receipt was delivered, want 0", n, s)
	}
}
