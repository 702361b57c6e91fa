package gateway

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestAccountThroughputOverSMPPAndAPI: an account with throughput 20/s sends 40 submit_sm and 40 API
// submissions at once; together they are granted one quota: no more than the burst (one second's
// worth, 20) plus what the rate refills while they run, the rest refused ESME_RTHROTTLED or
// ErrThrottled. (Each path had its own bucket before: up to twice that.)
func TestAccountThroughputOverSMPPAndAPI(t *testing.T) {
	const (
		rate = 20
		each = 40
	)
	up := startSim(t, "127.0.0.1:0", smscsim.Options{})
	cfg := acmeVia(t, simUpstream("sim", up.Addr()))
	cfg.Accounts[0].Throughput = rate
	g, addr, _ := startGateway(t, cfg, newEmbedded(t))
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{Window: each}, session.BindTransceiver, "acme", "secret")
	ctx := sessiontest.Ctx(t)

	var smppOK, smppThrottled, apiOK, apiThrottled atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range each {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: fmt.Appendf(nil, "smpp %d", i)})
			switch {
			case err == nil:
				smppOK.Add(1)
			case errors.Is(err, pdu.ESME_RTHROTTLED):
				smppThrottled.Add(1)
			default:
				t.Errorf("submit_sm: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := g.Submit(ctx, Submission{Account: "acme", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "447700900123"}, Text: fmt.Sprint("api ", i)})
			switch {
			case err == nil:
				apiOK.Add(1)
			case errors.Is(err, ErrThrottled):
				apiThrottled.Add(1)
			default:
				t.Errorf("Submit: %v", err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	ok := smppOK.Load() + apiOK.Load()
	allowed := int64(rate + rate*elapsed.Seconds() + 1)
	t.Logf("in %v: SMPP %d accepted / %d ESME_RTHROTTLED, API %d accepted / %d ErrThrottled; at most %d allowed",
		elapsed.Round(time.Millisecond), smppOK.Load(), smppThrottled.Load(), apiOK.Load(), apiThrottled.Load(), allowed)
	if ok > allowed {
		t.Errorf("%d accepted over SMPP and the API together, want at most %d (burst %d + %d/s for %v)", ok, allowed, rate, rate, elapsed)
	}
	if ok < rate {
		t.Errorf("%d accepted, want at least the burst %d", ok, rate)
	}
	if got := ok + smppThrottled.Load() + apiThrottled.Load(); got != 2*each {
		t.Errorf("%d answers, want %d", got, 2*each)
	}
}
