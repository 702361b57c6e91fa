package gateway

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
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

// listCounter counts the store's ListReceipts calls.
type listCounter struct {
	store.Store
	lists atomic.Int64
}

func (s *listCounter) ListReceipts(ctx context.Context, id string) ([]store.Receipt, error) {
	s.lists.Add(1)
	return s.Store.ListReceipts(ctx, id)
}

// TestReceiptDuplicateCheckReads: which receipts are handed on, and which cost a read of the
// message's receipt list, on both stores. Message A gets DELIVERED (the first final receipt of its
// part: known from the part's state, no read), DELIVERED again (a duplicate), UNDELIVERABLE (a later
// different final state: handed on, as before) and UNDELIVERABLE again (a duplicate). Message B gets
// ENROUTE, ENROUTE again (a duplicate) and DELIVERED (no read). Before, each of the 7 receipts read
// the list.
func TestReceiptDuplicateCheckReads(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := &listCounter{Store: open()}
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{ReceiptDelay: -1})
		g, addr, _ := startGateway(t, acmeVia(t, simUpstream("sim", sim.Addr())), st)
		ctx := sessiontest.Ctx(t)
		events, cancel := g.Subscribe("acme")
		defer cancel()
		rx := sessiontest.NewRecorder()
		e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
		submit := func(rd uint8) (upstreamID, id string) {
			t.Helper()
			resp, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900123", RegisteredDelivery: rd, ShortMessage: []byte("x")})
			if err != nil || resp.Status != pdu.ESME_ROK {
				t.Fatalf("submit_sm: %v %v", resp, err)
			}
			id = resp.Body.(*pdu.SubmitSMResp).MessageID
			var up string
			sessiontest.Eventually(t, "the upstream id of "+id, func() bool {
				m, err := st.GetMessage(ctx, id)
				if err == nil && m.Parts[0].UpstreamID != "" {
					up = m.Parts[0].UpstreamID
				}
				return up != ""
			})
			return up, id
		}
		a, aID := submit(pdu.RegisteredDeliveryReceiptFinal)
		b, bID := submit(pdu.RegisteredDeliveryReceiptFinal | pdu.RegisteredDeliveryIntermediate)
		for _, c := range []struct {
			up    string
			state pdu.MessageState
			lists int64 // the reads so far
		}{
			{a, pdu.DELIVERED, 0}, {a, pdu.DELIVERED, 1}, {a, pdu.UNDELIVERABLE, 2}, {a, pdu.UNDELIVERABLE, 3},
			{b, pdu.ENROUTE, 4}, {b, pdu.ENROUTE, 5}, {b, pdu.DELIVERED, 5},
		} {
			if s, err := sim.SendReceipt(ctx, c.up, c.state); err != nil || s != pdu.ESME_ROK {
				t.Fatalf("receipt %s %v: %v %v", c.up, c.state, s, err)
			}
			if n := st.lists.Load(); n != c.lists {
				t.Errorf("after %s %v: %d receipt list reads, want %d", c.up, c.state, n, c.lists)
			}
		}
		// Handed on: A's DELIVERED and UNDELIVERABLE, B's ENROUTE and DELIVERED (the account's
		// deliver_sm may go out in another order).
		var got []string
		for _, info := range awaitReceipts(t, rx, 4) {
			got = append(got, info.MessageID+" "+info.State.String())
		}
		want := []string{aID + " DELIVERED", aID + " UNDELIVERABLE", bID + " ENROUTE", bID + " DELIVERED"}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("receipts at the ESME %v, want %v", got, want)
		}
		n := 0
		for len(events) > 0 {
			if ev := <-events; ev.Kind == EventReceipt {
				n++
			}
		}
		if n != 4 {
			t.Errorf("%d receipt events, want 4", n)
		}
		time.Sleep(100 * time.Millisecond) // room for a fifth receipt, which must not come
		if n := len(rx.Requests()); n != 4 {
			t.Errorf("%d receipts at the ESME, want 4", n)
		}
		if s, err := g.Stats(ctx); err != nil || s.ReceiptsIn != 7 || s.ReceiptsDuplicate != 3 {
			t.Errorf("ReceiptsIn %d, ReceiptsDuplicate %d (%v); want 7 and 3", s.ReceiptsIn, s.ReceiptsDuplicate, err)
		}
	})
}
