package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
)

// The API's own cost per Submit over each transport: authentication (a key read from the embedded
// store), validation, conversion and the transport, with a gateway that does not store the message.

func benchEnv(b *testing.B) (*env, string) {
	st := openEmbedded(b)
	gw := newFakeGateway(st)
	gw.discard = true
	e := startEnv(b, gw, st, nil)
	e.createAccount("acme", "pw1")
	return e, e.createKey("acme", "SCOPE_SEND")
}

func BenchmarkSubmitGRPC(b *testing.B) {
	e, key := benchEnv(b)
	ctx := withAuth(context.Background(), key)
	req := &smppgwv1.SubmitRequest{Source: "ACME", Destination: "4915112345678", Payload: &smppgwv1.SubmitRequest_Text{Text: "hello"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.msg.Submit(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubmitREST(b *testing.B) {
	e, key := benchEnv(b)
	body := []byte(`{"source":"ACME","destination":"4915112345678","text":"hello"}`)
	b.ReportAllocs()
	b.ResetTimer()
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
	e, key := benchEnv(b)
	ctx := withAuth(context.Background(), key)
	req := &smppgwv1.SubmitRequest{Source: "ACME", Destination: "4915112345678", Payload: &smppgwv1.SubmitRequest_Text{Text: "hello"}}
	b.ReportAllocs()
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.msg.Submit(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
