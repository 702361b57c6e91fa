package gateway

// Interop tests against the npm "smpp" package, with the harness of interop_node_test.go.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// TestInteropNodeClientToServer: an ESME made with the npm smpp package binds to our Server as
// transceiver, submits nodeMessages messages asking for receipts, and gets a submit_sm_resp with our
// message id for each and a receipt deliver_sm carrying that id, through the gateway, its embedded
// store and a simulated upstream that saw every message.
func TestInteropNodeClientToServer(t *testing.T) {
	node := needNode(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "nodeesme", "pw123")},
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
		Routing:   RouterConfig{Routes: []Route{{Prefix: "4477", Upstream: "sim"}}},
	}, newEmbedded(t))

	s := runNodeClient(t, node, addr, "--system-id", "nodeesme", "--password", "pw123",
		"--count", fmt.Sprint(nodeMessages), "--dest", "4477009000", "--receipts")
	if s.BindStatus == nil || *s.BindStatus != 0 {
		t.Fatalf("node bind status %v, want 0; errors %v", s.BindStatus, s.Errors)
	}
	if s.TimedOut || len(s.Responses) != nodeMessages {
		t.Fatalf("node got %d of %d submit_sm_resp (timed out %v)", len(s.Responses), nodeMessages, s.TimedOut)
	}
	ids := map[string]bool{}
	for _, resp := range s.Responses {
		if resp.Status != 0 || len(resp.MessageID) != 16 {
			t.Errorf("submit_sm_resp seq %d: status %#x id %q, want ESME_ROK and a 16-digit id", resp.Seq, resp.Status, resp.MessageID)
		}
		ids[resp.MessageID] = true
	}
	if len(ids) != nodeMessages {
		t.Errorf("%d distinct message ids for %d messages", len(ids), nodeMessages)
	}
	if len(s.Receipts) != nodeMessages {
		t.Fatalf("node got %d receipts, want %d", len(s.Receipts), nodeMessages)
	}
	for _, rc := range s.Receipts {
		if !ids[rc.ReceiptedMessageID] || rc.Stat != "DELIVRD" || rc.MessageState == nil || *rc.MessageState != int(pdu.DELIVERED) {
			t.Errorf("receipt %+v: want one of our ids, DELIVRD, message_state 2", rc)
		}
		if !strings.Contains(rc.Text, "id:"+rc.ReceiptedMessageID) || rc.DestinationAddr != "12345" {
			t.Errorf("receipt text %q to %q: want our id in the text, addressed to the source 12345", rc.Text, rc.DestinationAddr)
		}
	}
	if s.UnbindStatus == nil || *s.UnbindStatus != 0 {
		t.Errorf("unbind status %v, want 0", s.UnbindStatus)
	}
	seen := sim.Submits()
	if len(seen) != nodeMessages {
		t.Fatalf("upstream saw %d messages, want %d", len(seen), nodeMessages)
	}
	dests := map[string]bool{}
	for _, sm := range seen {
		dests[sm.DestinationAddr] = true
		if !strings.HasPrefix(string(sm.ShortMessage), "node interop message ") || sm.SourceAddr != "12345" || sm.RegisteredDelivery != pdu.RegisteredDeliveryReceiptFinal {
			t.Errorf("upstream got %q from %q registered_delivery %d", sm.ShortMessage, sm.SourceAddr, sm.RegisteredDelivery)
		}
	}
	for i := range nodeMessages {
		if d := fmt.Sprintf("4477009000%d", i); !dests[d] {
			t.Errorf("no message to %s reached the upstream", d)
		}
	}

	// A wrong password is refused with a bind error status, not accepted.
	bad := runNodeClientAllowFail(t, node, addr, "--system-id", "nodeesme", "--password", "wrong", "--count", "1")
	if bad.BindStatus == nil || *bad.BindStatus != uint32(pdu.ESME_RINVPASWD) {
		t.Errorf("bind with a wrong password: status %v, want ESME_RINVPASWD", bad.BindStatus)
	}
}

// TestInteropClientToNodeServer: our Client binds to an SMSC made with the npm smpp package, submits
// nodeMessages messages asking for receipts, gets the node server's message id for each, and receives
// its deliver_sm: one MO and a receipt per message, each answered ESME_ROK.
func TestInteropClientToNodeServer(t *testing.T) {
	node := needNode(t)
	ns := startNodeServer(t, node, "--system-id", "gwclient", "--password", "pw123",
		"--expect", fmt.Sprint(nodeMessages), "--mo-dest", "12345")
	rec := &deliverRecorder{}
	c := startNodeUpstreamClient(t, ns, rec, nil)

	type outcome struct {
		id  string
		err error
	}
	outcomes := make(chan outcome, nodeMessages)
	for i := range nodeMessages {
		sm := &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: fmt.Sprintf("4477009000%d", i),
			RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte(fmt.Sprintf("go client message %d", i))}
		done := func(resp session.Response, err error) {
			id := ""
			if r, ok := resp.Body.(*pdu.SubmitSMResp); ok {
				id = r.MessageID
			}
			outcomes <- outcome{id, err}
		}
		if err := c.Submit(sessiontest.Ctx(t), sm, done); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
	}
	upIDs := map[string]bool{}
	for range nodeMessages {
		select {
		case o := <-outcomes:
			if o.err != nil || !strings.HasPrefix(o.id, "node-") {
				t.Errorf("submission outcome %q, %v; want a node-N id", o.id, o.err)
			}
			upIDs[o.id] = true
		case <-time.After(nodeRunWait):
			t.Fatalf("only %d of %d submissions answered", len(upIDs), nodeMessages)
		}
	}

	s := ns.summary(t)
	if s.TimedOut || len(s.Binds) != 1 || s.Binds[0].Command != "bind_transceiver" || s.Binds[0].Status != 0 {
		t.Errorf("node server binds %+v (timed out %v), want one transceiver bind accepted", s.Binds, s.TimedOut)
	}
	if len(s.Submits) != nodeMessages {
		t.Fatalf("node server saw %d submit_sm, want %d", len(s.Submits), nodeMessages)
	}
	for i, sub := range s.Submits {
		if !upIDs[sub.MessageID] || sub.SourceAddr != "12345" || sub.RegisteredDelivery != pdu.RegisteredDeliveryReceiptFinal ||
			!strings.HasPrefix(sub.Text, "go client message ") || !strings.HasPrefix(sub.DestinationAddr, "4477009000") {
			t.Errorf("node submit %d = %+v", i, sub)
		}
	}
	if s.DeliverSent != nodeMessages+1 || len(s.DeliverResp) != nodeMessages+1 {
		t.Errorf("node sent %d deliver_sm and got %d answers, want %d", s.DeliverSent, len(s.DeliverResp), nodeMessages+1)
	}
	for _, r := range s.DeliverResp {
		if r.Status != 0 {
			t.Errorf("our Client answered a node %s deliver_sm with %#x", r.Kind, r.Status)
		}
	}

	receipts, mos := 0, 0
	for _, d := range rec.all() {
		if !dlr.IsReceipt(d.EsmClass) {
			mos++
			if d.DestinationAddr != "12345" || string(d.ShortMessage) != "mo from node" {
				t.Errorf("MO to %s: %q", d.DestinationAddr, d.ShortMessage)
			}
			continue
		}
		receipts++
		info, err := dlr.FromDeliverSM(d)
		if err != nil || !upIDs[info.MessageID] || info.State != pdu.DELIVERED || info.Receipt.Stat != "DELIVRD" {
			t.Errorf("receipt %+v, %v: want one of the node ids, DELIVERED", info, err)
		}
	}
	if receipts != nodeMessages || mos != 1 {
		t.Errorf("our Client received %d receipts and %d MO, want %d and 1", receipts, mos, nodeMessages)
	}
}

// TestInteropNodeThroughGateway: the whole path with third-party peers at both ends: a node ESME
// submits to our Server, the Router hands the messages to our Client bound to a node SMSC, and the
// node SMSC's receipts and MO come back to the node ESME as deliver_sm carrying smppgw's ids.
func TestInteropNodeThroughGateway(t *testing.T) {
	node := needNode(t)
	ns := startNodeServer(t, node, "--system-id", "gwclient", "--password", "pw123",
		"--expect", fmt.Sprint(nodeMessages), "--mo-dest", "12345")
	g, addr, _ := startGateway(t, Config{
		Accounts: []Account{testAccount(t, "nodeesme", "pw123")},
		Upstreams: []ClientConfig{{Name: "node", Address: ns.addr, SystemID: "gwclient", Password: "pw123",
			ReconnectMin: 50 * time.Millisecond, ReconnectMax: 500 * time.Millisecond}},
		Routing: RouterConfig{
			Routes:   []Route{{Prefix: "44", Upstream: "node"}},
			MORoutes: []MORoute{{Prefix: "12345", Account: "nodeesme"}},
		},
	}, newEmbedded(t))
	sessiontest.Eventually(t, "the bind to the node SMSC", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
	// The MO may reach the gateway before the node ESME binds: the store holds it for the account.

	s := runNodeClient(t, node, addr, "--system-id", "nodeesme", "--password", "pw123",
		"--count", fmt.Sprint(nodeMessages), "--dest", "4477009000", "--receipts", "--expect-mo", "1")
	if s.TimedOut || len(s.Responses) != nodeMessages {
		t.Fatalf("node ESME got %d of %d responses (timed out %v, errors %v)", len(s.Responses), nodeMessages, s.TimedOut, s.Errors)
	}
	ids := map[string]bool{}
	for _, resp := range s.Responses {
		if resp.Status != 0 || strings.HasPrefix(resp.MessageID, "node-") {
			t.Errorf("submit_sm_resp %+v: want ESME_ROK with smppgw's id, not the upstream's", resp)
		}
		ids[resp.MessageID] = true
	}
	if len(s.Receipts) != nodeMessages || len(s.MO) != 1 {
		t.Fatalf("node ESME got %d receipts and %d MO, want %d and 1", len(s.Receipts), len(s.MO), nodeMessages)
	}
	for _, rc := range s.Receipts {
		if !ids[rc.ReceiptedMessageID] || rc.Stat != "DELIVRD" || !strings.Contains(rc.Text, "id:"+rc.ReceiptedMessageID) {
			t.Errorf("receipt %+v: want smppgw's id in the TLV and the text, DELIVRD", rc)
		}
		delete(ids, rc.ReceiptedMessageID)
	}
	if s.MO[0].Text != "mo from node" || s.MO[0].DestinationAddr != "12345" {
		t.Errorf("MO %+v", s.MO[0])
	}
	up := ns.summary(t)
	if len(up.Submits) != nodeMessages {
		t.Errorf("node SMSC saw %d submit_sm, want %d", len(up.Submits), nodeMessages)
	}
	for _, d := range up.DeliverResp {
		if d.Status != 0 {
			t.Errorf("smppgw answered the node SMSC's %s with %#x", d.Kind, d.Status)
		}
	}
}
