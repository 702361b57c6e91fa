package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/internal/cputime"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// The API's own cost per Submit over each transport: authentication (a key read from the embedded
// store), validation, conversion and the transport, with a gateway that does not store the message
// (BenchmarkSubmitGRPCDurable stores it). Client and server share the process, so cpu-us/op, the
// process's CPU over b.N, counts both ends of the call.

func benchEnv(b *testing.B, discard bool) (*env, *fakeGateway, string) {
	st := openEmbedded(b)
	gw := newFakeGateway(st)
	gw.discard = discard
	e := startEnv(b, gw, st, nil)
	e.createAccount("acme", "pw1")
	return e, gw, e.createKey("acme", "SCOPE_SEND", "SCOPE_READ")
}

var benchSubmit = &smppgwv1.SubmitRequest{Source: "ACME", Destination: "4915112345678", Payload: &smppgwv1.SubmitRequest_Text{Text: "hello"}}

func BenchmarkSubmitGRPC(b *testing.B) {
	e, _, key := benchEnv(b, true)
	ctx := withAuth(context.Background(), key)
	b.ReportAllocs()
	b.ResetTimer()
	defer cputime.PerOp(b)()
	for b.Loop() {
		if _, err := e.msg.Submit(ctx, benchSubmit); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubmitREST(b *testing.B) {
	e, _, key := benchEnv(b, true)
	body := []byte(`{"source":"ACME","destination":"4915112345678","text":"hello"}`)
	b.ReportAllocs()
	b.ResetTimer()
	defer cputime.PerOp(b)()
	for b.Loop() {
		req, _ := http.NewRequest("POST", e.base+"/v1/messages", bytes.NewReader(body))
		req.Header.Set("Authorization", key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := e.client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("HTTP %d", resp.StatusCode)
		}
	}
}

// BenchmarkSubmitGRPCParallel is BenchmarkSubmitGRPC with 32 calls in flight per CPU on one
// connection, as an application keeping many Submits in flight sends them.
func BenchmarkSubmitGRPCParallel(b *testing.B) {
	benchSubmitParallel(b, true)
}

// BenchmarkSubmitGRPCDurable is BenchmarkSubmitGRPCParallel with each message written to the
// embedded store before its answer, as the gateway does: the calls wait on group commits together,
// each in its handler, as they do in the daemon.
func BenchmarkSubmitGRPCDurable(b *testing.B) {
	benchSubmitParallel(b, false)
}

func benchSubmitParallel(b *testing.B, discard bool) {
	e, _, key := benchEnv(b, discard)
	ctx := withAuth(context.Background(), key)
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	defer cputime.PerOp(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.msg.Submit(ctx, benchSubmit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkStreamReceipts is the cost of one receipt on StreamReceipts, from the gateway's event to
// the client's Recv, in bursts of 32 as a group commit hands them on.
func BenchmarkStreamReceipts(b *testing.B) {
	e, gw, key := benchEnv(b, true)
	ctx, cancel := context.WithCancel(withAuth(context.Background(), key))
	defer cancel()
	gs, err := e.msg.StreamReceipts(ctx, &smppgwv1.StreamReceiptsRequest{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := gs.Header(); err != nil {
		b.Fatal(err)
	}
	const burst = 32 // half the fake gateway's subscriber buffer
	evs := make([]gateway.Event, burst)
	at := time.Now()
	for i := range evs {
		id := "m" + strconv.Itoa(i)
		evs[i] = gateway.Event{Kind: gateway.EventReceipt, Account: "acme", MessageID: id, ClientRef: "ref-" + id,
			Receipt: &store.Receipt{MessageID: id, Upstream: "up", UpstreamID: "u" + id, State: pdu.DELIVERED, Received: at, Submitted: at, Done: at}, At: at}
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer cputime.PerOp(b)()
	for n := 0; n < b.N; {
		k := min(burst, b.N-n)
		for _, ev := range evs[:k] {
			gw.Publish(ev)
		}
		for range k {
			if _, err := gs.Recv(); err != nil {
				b.Fatal(err)
			}
		}
		n += k
	}
}
