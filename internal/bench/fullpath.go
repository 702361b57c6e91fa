package bench

import (
	"context"
	"encoding/base64"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
)

// fullPath is row 5: an application calls gRPC Submit (w calls at once), smppgw forwards to the
// simulator, which sends a receipt, which the application reads from StreamReceipts. Rate is
// receipts streamed over the time from the first Submit to the last receipt; latency is Submit to
// its receipt on the stream. With rate 0 the calls go as fast as they are answered (full load);
// with a rate, message n is due at n/rate seconds after the first and its latency counts from when
// it was due, so that a client or gateway falling behind the schedule shows in the figures. profile
// names the row's profiles ("": none).
func (r *runner) fullPath(ctx context.Context, w int, rate float64, profile string) (row Row) {
	g, err := r.startGateway(ctx, "fullpath", gwOptions{store: StoreEmbedded, receipts: true, profile: profile})
	if err != nil {
		return failed(row, err)
	}
	defer g.stop()
	conn, err := grpc.NewClient(g.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return failed(row, err)
	}
	defer conn.Close()

	// An API key for the account, made by the admin user of the configuration.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(adminUser+":"+adminPass))
	kctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "authorization", basic), 10*time.Second)
	key, err := smppgwv1.NewAdminServiceClient(conn).CreateApiKey(kctx, &smppgwv1.CreateApiKeyRequest{ApiKey: &smppgwv1.ApiKey{
		Account: account, Name: "smppbench", Scopes: []smppgwv1.Scope{smppgwv1.Scope_SCOPE_SEND, smppgwv1.Scope_SCOPE_READ}}})
	cancel()
	if err != nil {
		return failed(row, fmt.Errorf("create API key: %w", err))
	}
	actx := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key.GetSecret())
	msgs := smppgwv1.NewMessageServiceClient(conn)

	sctx, stopStream := context.WithCancel(actx)
	defer stopStream()
	stream, err := msgs.StreamReceipts(sctx, &smppgwv1.StreamReceiptsRequest{})
	if err != nil {
		return failed(row, fmt.Errorf("StreamReceipts: %w", err))
	}
	var (
		mu        sync.Mutex
		submitted = map[string]time.Time{} // message id -> Submit started
		receipted = map[string]time.Time{} // message id -> receipt streamed
		receipts  atomic.Int64
		lastRcpt  atomic.Int64
		streamErr atomic.Value
	)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for {
			m, err := stream.Recv()
			if err != nil {
				if sctx.Err() == nil {
					streamErr.Store(err.Error())
				}
				return
			}
			now := time.Now()
			mu.Lock()
			if _, seen := receipted[m.GetReceipt().GetMessageId()]; !seen {
				receipted[m.GetReceipt().GetMessageId()] = now
				receipts.Add(1)
				lastRcpt.Store(now.UnixNano())
			}
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the server register the stream before receipts come

	var (
		next, acked, errs atomic.Int64
		lastReply         atomic.Int64
		firstErr          atomic.Value
		wg                sync.WaitGroup
	)
	limit := int64(r.cfg.Messages)
	if rate > 0 {
		limit = min(limit, int64(rate*r.cfg.Duration.Seconds()))
	}
	prof := r.profileSending(ctx, g)
	first := time.Now()
	deadline := first.Add(r.cfg.Duration)
	// One deadline for every call, the last one sent getting 30s, rather than a timer per call: the
	// client shares the CPUs with smppgw.
	cctx, cancel := context.WithDeadline(actx, deadline.Add(30*time.Second))
	defer cancel()
	for range w {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := next.Add(1)
				if n > limit {
					next.Add(-1)
					return
				}
				t0 := time.Now()
				if rate > 0 {
					due := first.Add(time.Duration(float64(n-1) / rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
					t0 = due
				}
				resp, err := msgs.Submit(cctx, &smppgwv1.SubmitRequest{Source: "12345", Destination: destination(n),
					Payload: &smppgwv1.SubmitRequest_Text{Text: "smppbench full path"}, RegisteredDelivery: smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FINAL})
				lastReply.Store(time.Now().UnixNano())
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				acked.Add(1)
				mu.Lock()
				submitted[resp.GetMessageId()] = t0
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	row.Sent, row.Acked = next.Load(), acked.Load()
	if d := time.Unix(0, lastReply.Load()).Sub(first); d > 0 {
		row.Intake = float64(row.Acked) / d.Seconds()
	}
	// Wait for a receipt per accepted message, or until none came for a while.
	wctx, cancel := context.WithTimeout(ctx, r.drainTimeout())
	defer cancel()
	prev, since := int64(-1), time.Now()
	for wctx.Err() == nil {
		got := receipts.Load()
		if got >= row.Acked {
			break
		}
		if got != prev {
			prev, since = got, time.Now()
		} else if time.Since(since) > 10*time.Second {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopStream()
	<-streamDone
	row.Received = receipts.Load()
	if d := time.Unix(0, lastRcpt.Load()).Sub(first); row.Received > 0 && d > 0 {
		row.Rate = float64(row.Received) / d.Seconds()
	}
	mu.Lock()
	lat := make([]time.Duration, 0, len(receipted))
	for id, t1 := range receipted {
		if t0, ok := submitted[id]; ok {
			lat = append(lat, t1.Sub(t0))
		}
	}
	mu.Unlock()
	row.P50, row.P99 = quantileMS(lat, 0.5), quantileMS(lat, 0.99)
	if rate > 0 {
		addNote(&row, fmt.Sprintf("paced at %.0f msgs/s, up to %d Submit calls at once; latency is from each Submit's due time to its receipt streamed; upstream got %d", rate, w, g.arr.n.Load()))
	} else {
		addNote(&row, fmt.Sprintf("%d Submit calls at once; latency is Submit to receipt streamed; upstream got %d", w, g.arr.n.Load()))
	}
	if n := errs.Load(); n > 0 {
		addNote(&row, fmt.Sprintf("%d Submit failed, first: %v", n, firstErr.Load()))
	}
	if e := streamErr.Load(); e != nil {
		addNote(&row, fmt.Sprintf("stream ended: %v", e))
	}
	if row.Received < row.Acked {
		addNote(&row, fmt.Sprintf("receipts streamed %d of %d accepted", row.Received, row.Acked))
	}
	g.usage(&row)
	prof.finish(ctx, &row)
	return row
}

// destination is the n-th message's destination, 4670 and n's last eight digits: what
// fmt.Sprintf("4670%08d", n%100_000_000) gives, without fmt.
func destination(n int64) string {
	b := []byte("467000000000")
	for i, v := len(b)-1, n%100_000_000; v > 0; i, v = i-1, v/10 {
		b[i] = byte('0' + v%10)
	}
	return string(b)
}
