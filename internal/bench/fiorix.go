package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	fsmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
)

// fiorix is row 4's fiorix/go-smpp Transmitter: w goroutines each calling its blocking Submit (its
// WindowSize set to w), to smppgw, which forwards to the simulator. profile names the row's profiles
// ("": none).
func (r *runner) fiorix(ctx context.Context, w int, profile string) (row Row) {
	g, err := r.startGateway(ctx, "fiorix", gwOptions{store: StoreEmbedded, profile: profile})
	if err != nil {
		return failed(row, err)
	}
	defer g.stop()
	tx := &fsmpp.Transmitter{Addr: g.smppAddr, User: account, Passwd: accountPass,
		RespTimeout: 10 * time.Second, EnquireLink: time.Minute, WindowSize: uint(w)}
	defer tx.Close()
	select {
	case st := <-tx.Bind():
		if st.Status() != fsmpp.Connected {
			return failed(row, fmt.Errorf("fiorix bind: %v %v", st.Status(), st.Error()))
		}
	case <-time.After(startTimeout):
		return failed(row, fmt.Errorf("fiorix did not bind within %s", startTimeout))
	}
	var (
		next, acked, errs atomic.Int64
		mu                sync.Mutex
		lat               []time.Duration
		lastResp          atomic.Int64
		wg                sync.WaitGroup
		firstErr          atomic.Value
	)
	prof := r.profileSending(ctx, g)
	first := time.Now()
	deadline := first.Add(r.cfg.Duration)
	for range w {
		wg.Go(func() {
			own := make([]time.Duration, 0, r.cfg.Messages/w+1)
			for ctx.Err() == nil && time.Now().Before(deadline) {
				n := next.Add(1)
				if n > int64(r.cfg.Messages) {
					next.Add(-1)
					break
				}
				t0 := time.Now()
				_, err := tx.Submit(&fsmpp.ShortMessage{Src: "fiorix", Dst: fmt.Sprintf("4670%08d", n%100_000_000),
					Text: pdutext.Raw("smppbench fiorix message"), Register: pdufield.NoDeliveryReceipt})
				t1 := time.Now()
				lastResp.Store(t1.UnixNano())
				own = append(own, t1.Sub(t0))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				acked.Add(1)
			}
			mu.Lock()
			lat = append(lat, own...)
			mu.Unlock()
		})
	}
	wg.Wait()
	row.Sent, row.Acked = next.Load(), acked.Load()
	if d := time.Unix(0, lastResp.Load()).Sub(first); d > 0 {
		row.Intake = float64(row.Acked) / d.Seconds()
	}
	row.P50, row.P99 = quantileMS(lat, 0.5), quantileMS(lat, 0.99)
	if n := errs.Load(); n > 0 {
		addNote(&row, fmt.Sprintf("%d failed, first: %v", n, firstErr.Load()))
	}
	r.endToEnd(ctx, g, &row, first)
	g.usage(&row)
	prof.finish(ctx, &row)
	return row
}

// quantileMS is the q-quantile of d in milliseconds; d is sorted in place.
func quantileMS(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := min(len(d)-1, int(q*float64(len(d))))
	return float64(d[i]) / float64(time.Millisecond)
}
