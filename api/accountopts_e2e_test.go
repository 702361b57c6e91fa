package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
)

// TestAccountOptionsEndToEnd: accounts created over the admin API with each message id form, the
// real gateway, an SMPP ESME and the simulated upstream over loopback.
//   - Each account's submit_sm_resp id has its form, and GetMessage (REST) finds the message by it.
//   - A receipt the upstream sends twice reaches the ESME once, the gRPC receipt stream once and the
//     receipt webhook once.
//   - A long MO (8-bit UDH, one part sent twice) to the account set to long_mo payload reaches its ESME
//     as one deliver_sm with the whole text in message_payload, and the MO webhook as one MoMessage
//     naming the upstream it came from.
//
// Before the account options and the duplicate check, the hex and uuid ids, the single copies and the
// MoMessage's upstream all failed.
func TestAccountOptionsEndToEnd(t *testing.T) {
	sim, err := smscsim.Start("127.0.0.1:0", smscsim.Options{Accounts: map[string]string{"gwup": "uppw"}, ReceiptDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	st := openEmbedded(t)
	g := startGateway(t, st, sim.Addr())
	e := startEnv(t, g, st, nil)
	op := basicAuth()
	ctx := t.Context() // each request is bounded by its session's response time-out

	// The options round-trip through the admin API.
	e.mustREST(200, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "acme", "password": "pw1",
		"messageIdFormat": "MESSAGE_ID_FORMAT_UUID", "longMoDelivery": "LONG_MO_DELIVERY_PAYLOAD"}, nil)
	e.mustREST(200, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "hexy", "password": "pw1",
		"messageIdFormat": "MESSAGE_ID_FORMAT_HEX", "receiptMode": "RECEIPT_MODE_PART"}, nil)
	e.createAccount("deci", "pw1")
	var got struct {
		Account struct {
			MessageIDFormat string `json:"messageIdFormat"`
			ReceiptMode     string `json:"receiptMode"`
			LongMoDelivery  string `json:"longMoDelivery"`
		} `json:"account"`
	}
	e.mustREST(200, "GET", "/v1/admin/accounts/hexy", op, nil, &got)
	if got.Account.MessageIDFormat != "MESSAGE_ID_FORMAT_HEX" || got.Account.ReceiptMode != "RECEIPT_MODE_PART" || got.Account.LongMoDelivery != "LONG_MO_DELIVERY_PARTS" {
		t.Fatalf("hexy read back as %+v", got.Account)
	}
	e.mustREST(400, "POST", "/v1/admin/accounts", op, map[string]any{"systemId": "bad", "password": "pw1", "messageIdFormat": 9}, nil)

	eventually(t, "up1 bound", func() bool { return g.Upstreams()[0].Status.State == gateway.ClientBound })

	forms := map[string]func(string) bool{
		"deci": func(id string) bool { return len(id) == 16 && strings.Trim(id, "0123456789") == "" },
		"hexy": func(id string) bool {
			return len(id) >= 13 && len(id) <= 14 && strings.Trim(id, "0123456789abcdef") == ""
		},
		"acme": func(id string) bool { return len(id) == 36 && strings.Count(id, "-") == 4 && id[14] == '4' },
	}
	esmes := map[string]*sessiontest.Recorder{}
	ids := map[string]string{}
	for _, account := range []string{"deci", "hexy", "acme"} {
		rx := sessiontest.NewRecorder()
		s := sessiontest.BindESME(t, g.Server().Addrs()[0].String(), rx, session.Config{}, session.BindTransceiver, account, "pw1")
		esmes[account] = rx
		resp, err := s.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "4915112345678",
			RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("hi " + account)})
		if err != nil || resp.Status != pdu.ESME_ROK {
			t.Fatalf("%s submit_sm: %v %v", account, resp.Status, err)
		}
		id := resp.Body.(*pdu.SubmitSMResp).MessageID
		if !forms[account](id) {
			t.Fatalf("%s got id %q", account, id)
		}
		ids[account] = id
		key := e.createKey(account, "SCOPE_READ")
		var msg struct {
			Message struct {
				MessageID string `json:"messageId"`
				Account   string `json:"account"`
			} `json:"message"`
		}
		e.mustREST(200, "GET", "/v1/messages/"+id, key, nil, &msg)
		if msg.Message.MessageID != id || msg.Message.Account != account {
			t.Fatalf("GetMessage %s = %+v", id, msg.Message)
		}
	}

	// acme's receipt, sent twice by the upstream.
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	var sub submitAnswer // the API's Submit gives the account's form too
	e.mustREST(200, "POST", "/v1/messages", key, map[string]any{"source": "ACME", "destination": "4915112345678", "text": "via REST"}, &sub)
	if !forms["acme"](sub.MessageID) {
		t.Errorf("REST Submit for acme gave id %q, want a UUID", sub.MessageID)
	}
	// The id in upper case names the same message (before: 404).
	var byUpper struct {
		Message struct {
			MessageID string `json:"messageId"`
		} `json:"message"`
	}
	e.mustREST(200, "GET", "/v1/messages/"+strings.ToUpper(sub.MessageID), key, nil, &byUpper)
	if byUpper.Message.MessageID != sub.MessageID {
		t.Errorf("GET /v1/messages/%s gave message %q, want %q", strings.ToUpper(sub.MessageID), byUpper.Message.MessageID, sub.MessageID)
	}
	rHook, moHook := newHookServer(t, 0), newHookServer(t, 0)
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": rHook.URL, "events": []string{"WEBHOOK_EVENT_RECEIPT"}}, nil)
	e.mustREST(200, "POST", "/v1/webhooks", key, map[string]any{"url": moHook.URL, "events": []string{"WEBHOOK_EVENT_MO"}}, nil)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gs, err := e.msg.StreamReceipts(withAuth(sctx, key), &smppgwv1.StreamReceiptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Header(); err != nil {
		t.Fatal(err)
	}
	streamed := make(chan *smppgwv1.Receipt, 10)
	go func() {
		for {
			r, err := gs.Recv()
			if err != nil {
				return
			}
			streamed <- r.Receipt
		}
	}()
	var upID string
	eventually(t, "acme's upstream id", func() bool {
		m, err := st.GetMessage(ctx, ids["acme"])
		if err == nil && m.Parts[0].UpstreamID != "" {
			upID = m.Parts[0].UpstreamID
		}
		return upID != ""
	})
	for i := 0; i < 2; i++ {
		if s, err := sim.SendReceipt(ctx, upID, pdu.DELIVERED); err != nil || s != pdu.ESME_ROK {
			t.Fatalf("receipt copy %d: %v %v", i+1, s, err)
		}
	}
	eventually(t, "the receipt at the ESME, the stream and the webhook", func() bool {
		return len(esmes["acme"].Requests()) >= 1 && len(rHook.got()) >= 1 && len(streamed) >= 1
	})
	time.Sleep(500 * time.Millisecond) // room for a copy
	if n, h, s := len(esmes["acme"].Requests()), len(rHook.got()), len(streamed); n != 1 || h != 1 || s != 1 {
		t.Errorf("receipt reached the ESME %d times, the webhook %d, the stream %d; want once each", n, h, s)
	}
	if r := <-streamed; r.MessageId != ids["acme"] {
		t.Errorf("streamed receipt for %s, want %s", r.MessageId, ids["acme"])
	}
	d := esmes["acme"].Requests()[0].Body.(*pdu.DeliverSM)
	if rid, _ := d.Options.ReceiptedMessageID(); rid != ids["acme"] || !strings.HasPrefix(string(d.ShortMessage), "id:"+ids["acme"]+" ") {
		t.Errorf("receipt deliver_sm %q / %q, want id %s", rid, d.ShortMessage, ids["acme"])
	}
	var stats struct {
		ReceiptsDuplicate string `json:"receiptsDuplicate"` // uint64 is a JSON string
	}
	e.mustREST(200, "GET", "/v1/admin/stats", op, nil, &stats)
	if stats.ReceiptsDuplicate != "1" {
		t.Errorf("admin stats receiptsDuplicate %q, want 1", stats.ReceiptsDuplicate)
	}

	// A long MO to acme (long_mo payload), one part sent twice.
	long := strings.Repeat("A long MO in three parts. ", 16)
	parts, err := pdu.SplitText(&pdu.DeliverSM{SourceAddr: "4917000000", DestinationAddr: "12345"}, pdu.SplitUDH8, long, 77)
	if err != nil || len(parts) != 3 {
		t.Fatalf("split: %d parts, %v", len(parts), err)
	}
	for i, p := range []*pdu.DeliverSM{parts[1], parts[0], parts[1], parts[2]} {
		if s, err := sim.SendMO(ctx, p); err != nil || s != pdu.ESME_ROK {
			t.Fatalf("MO part %d: %v %v", i+1, s, err)
		}
	}
	eventually(t, "the MO at the ESME and the webhook", func() bool {
		return len(esmes["acme"].Requests()) >= 2 && len(moHook.got()) >= 1
	})
	time.Sleep(300 * time.Millisecond)
	if n, h := len(esmes["acme"].Requests()), len(moHook.got()); n != 2 || h != 1 {
		t.Fatalf("%d deliver_sm at the ESME (want the receipt and one MO), %d MO webhook POSTs (want 1)", n, h)
	}
	mo := esmes["acme"].Requests()[1].Body.(*pdu.DeliverSM)
	payload, _ := mo.Options.MessagePayload()
	if s, err := text.Decode(text.Coding(mo.DataCoding), payload); err != nil || s != long || len(mo.ShortMessage) != 0 {
		t.Errorf("MO deliver_sm payload %q (%v), short_message %q; want the whole text in message_payload", s, err, mo.ShortMessage)
	}
	var hooked struct {
		Mo struct {
			Text     string `json:"text"`
			Upstream string `json:"upstream"`
			Source   string `json:"source"`
		} `json:"mo"`
	}
	if err := json.Unmarshal(moHook.got()[0].body, &hooked); err != nil {
		t.Fatal(err)
	}
	if hooked.Mo.Text != long || hooked.Mo.Upstream != "up1" || hooked.Mo.Source != "4917000000" {
		t.Errorf("MO webhook %s", moHook.got()[0].body)
	}
}
