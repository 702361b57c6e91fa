package gateway

import (
	"context"
	"strconv"
	"testing"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

// noReceiptList is a store whose ListReceipts finds nothing at no cost: receipts over it skip the
// duplicate check's read, the cost BenchmarkReceiptFromUpstream compares.
type noReceiptList struct{ store.Store }

func (noReceiptList) ListReceipts(context.Context, string) ([]store.Receipt, error) { return nil, nil }

// BenchmarkReceiptFromUpstream measures one upstream receipt on the embedded store: recorded
// (AddReceipt), checked for being a copy, published, and queued for the account as a deliver_sm.
// "check" is the path as it is; "nocheck" the same with a receipt list that costs nothing. Each
// receipt is the first final one of a message of its own, accepted and mapped before the timer
// starts, which the check answers from the message's part state without reading the list (madeFinal),
// so the two cost the same (before madeFinal, check cost 25 allocations more: 133 against 108).
func BenchmarkReceiptFromUpstream(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(store.Store) store.Store
	}{
		{"check", func(s store.Store) store.Store { return s }},
		{"nocheck", func(s store.Store) store.Store { return noReceiptList{s} }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			st := newEmbedded(b)
			ctx := context.Background()
			receipts := make([]*pdu.DeliverSM, b.N)
			for i := range b.N {
				m := &store.Message{ID: strconv.Itoa(1_000_000 + i), Account: "acme", Upstream: "up",
					Source: store.Address{Addr: "1"}, Destination: store.Address{Addr: "2"}, RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal,
					Parts: []store.Part{{ShortMessage: []byte("x")}}}
				if err := st.AcceptMessage(ctx, m); err != nil {
					b.Fatal(err)
				}
				upID := "U" + strconv.Itoa(i)
				if _, _, err := st.UpdatePart(ctx, store.PartUpdate{MessageID: m.ID, Upstream: "up", UpstreamID: upID, Status: pdu.ENROUTE}); err != nil {
					b.Fatal(err)
				}
				d := &pdu.DeliverSM{SourceAddr: "2", DestinationAddr: "1"}
				info := dlr.Info{MessageID: upID, State: pdu.DELIVERED, Receipt: dlr.Receipt{ID: upID, Sub: 1, Dlvrd: 1, Stat: "DELIVRD", Err: "000"}}
				if err := info.ToDeliverSM(d); err != nil {
					b.Fatal(err)
				}
				receipts[i] = d
			}
			wst := tc.wrap(st)
			deliv := newDeliverer(RouterConfig{}.withDefaults(), wst, "bench", newPool(4), zerolog.Nop())
			r := newReceipts(wst, newHub(), newCounters(), deliv, newAccountOptions(wst, zerolog.Nop()), zerolog.Nop())
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if s := r.fromUpstream("up", receipts[i]); s != pdu.ESME_ROK {
					b.Fatalf("receipt %d answered %v", i, s)
				}
			}
		})
	}
}
