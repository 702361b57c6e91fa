package gateway

import (
	"context"

	"github.com/smppgw/smppgw/store"
)

// EventSink records, durably, what a receipt or an MO owes outside SMPP (the API's webhooks and
// per-message callback URLs), at the point where the account's own deliver_sm is queued: before the
// upstream's deliver_sm is answered, so that a crash after the answer loses nothing.
type EventSink interface {
	// Record is called with a receipt applied to m (e.Kind EventReceipt), or with a whole MO
	// (e.Kind EventMO, m nil). For a receipt, an error makes the upstream retry it
	// (ESME_RX_T_APPN); for an MO, whose account deliver_sm is queued already, the sink logs it.
	Record(ctx context.Context, e Event, m *store.Message) error
}

// SetEventSink makes the gateway hand each receipt and MO to s before answering the upstream; nil
// stops it. The API sets it at start, before upstream binds deliver anything.
func (g *Gateway) SetEventSink(s EventSink) {
	if s == nil {
		g.events.sink.Store(nil)
		return
	}
	g.events.sink.Store(&s)
}

// record hands a receipt to the sink, if there is one.
func (h *hub) record(ctx context.Context, e Event, m *store.Message) error {
	p := h.sink.Load()
	if p == nil {
		return nil
	}
	return (*p).Record(ctx, e, m)
}

// recordMO hands a whole MO to the sink. It runs on the MO's path, before its upstream is answered;
// the sink logs its own failures (the MO is queued for its account already, so the upstream is not
// asked to send it again).
func (h *hub) recordMO(e Event) {
	p := h.sink.Load()
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	_ = (*p).Record(ctx, e, nil)
}
