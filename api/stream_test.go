package api_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestStreamReceiptsEndedWhenBehind: a receipt stream the gateway ends for falling behind hands on
// every receipt it held, then ends with ResourceExhausted (not a silent gap, not a hang); the
// webhook dispatcher's subscription, which skips instead, stays.
func TestStreamReceiptsEndedWhenBehind(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
	eventually(t, "the webhook dispatcher to subscribe", func() bool { return gw.subscribers() == 1 })
	ctx, cancel := context.WithTimeout(withAuth(context.Background(), key), 10*time.Second)
	defer cancel()
	gs, err := e.msg.StreamReceipts(ctx, &smppgwv1.StreamReceiptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Header(); err != nil {
		t.Fatal(err)
	}
	const sent = 20
	for i := range sent {
		id := fmt.Sprintf("m%d", i)
		gw.Publish(gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: id, ClientRef: "ref-" + id,
			Receipt: &store.Receipt{MessageID: id, State: pdu.DELIVERED}, At: time.Now()})
	}
	got := 0
	for ; got < sent; got++ {
		r, err := gs.Recv()
		if err != nil {
			t.Fatalf("receipt %d: %v", got, err)
		}
		if want := fmt.Sprintf("m%d", got); r.Receipt.MessageId != want || r.Receipt.ClientReference != "ref-"+want {
			t.Fatalf("receipt %d is %s (client reference %q), want %s", got, r.Receipt.MessageId, r.Receipt.ClientReference, want)
		}
	}
	if n := gw.endStreams(); n != 1 {
		t.Fatalf("ended %d stream subscriptions, want 1", n)
	}
	_, err = gs.Recv()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("after the end: %v, want ResourceExhausted", err)
	}
	if got != sent {
		t.Fatalf("streamed %d receipts, want %d", got, sent)
	}
	eventually(t, "the stream to unsubscribe, the dispatcher to stay", func() bool { return gw.subscribers() == 1 })
}

// TestSubmitBatchWritesTogether: the messages of a batch wait for their durable writes together, so
// that they can share group commits: the gateway holds each write until batchWaiting of them are
// waiting at once, which a batch accepted one after another never reaches; every message is then
// accepted, each result at its own index.
func TestSubmitBatchWritesTogether(t *testing.T) {
	e, gw := newFakeEnv(t)
	e.createAccount("acme", "pw1")
	key := e.createKey("acme", "SCOPE_SEND")
	const batchWaiting, batch = 8, 40
	var (
		mu      sync.Mutex
		waiting int
		full    = make(chan struct{})
		peak    int
		closed  bool
	)
	gw.hold = func() {
		mu.Lock()
		waiting++
		peak = max(peak, waiting)
		if waiting == batchWaiting && !closed { // later messages may make 8 again
			closed = true
			close(full)
		}
		mu.Unlock()
		select {
		case <-full:
		case <-time.After(5 * time.Second): // a batch written one at a time: never full
		}
		mu.Lock()
		waiting--
		mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(withAuth(context.Background(), key), time.Minute)
	defer cancel()
	req := &smppgwv1.SubmitBatchRequest{}
	for i := range batch {
		req.Messages = append(req.Messages, &smppgwv1.SubmitRequest{Source: "1", Destination: fmt.Sprintf("49%03d", i), Payload: &smppgwv1.SubmitRequest_Text{Text: "x"}})
	}
	resp, err := e.msg.SubmitBatch(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for i, r := range resp.Results {
		if r.Index != uint32(i) {
			t.Errorf("result %d has index %d", i, r.Index)
		}
		if r.GetAccepted().GetMessageId() != "" {
			accepted++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(resp.Results) != batch || accepted != batch || peak < batchWaiting {
		t.Fatalf("%d results, %d accepted, at most %d writes waiting together; want %d, %d, at least %d", len(resp.Results), accepted, peak, batch, batch, batchWaiting)
	}
}
