package gateway

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestUpstreamMaxTPS: a backlog of 300 parts for an upstream with max_tps 100 reaches the simulator at
// no more than 100+1 per second (the bucket's burst is one), counted per 1-second bucket of arrival
// times at the simulator from the first submit_sm on, with checkRate's slack for arrival jitter, and
// over no less than the time 100 a second takes; every part arrives.
func TestUpstreamMaxTPS(t *testing.T) {
	const (
		tps = 100
		n   = 300
	)
	var (
		mu       sync.Mutex
		arrivals []time.Time
	)
	up := startSim(t, "127.0.0.1:0", smscsim.Options{OnSubmit: func(_ *smscsim.Sim, _ *pdu.SubmitSM) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
	}})
	upCfg := simUpstream("sim", up.Addr())
	upCfg.MaxTPS = tps
	upCfg.Session.Window = 50
	cfg := acmeVia(t, upCfg)
	g, _, _ := startGateway(t, cfg, newEmbedded(t))
	// The backlog is queued while the upstream is paused, so that the cap, not the accept rate, paces it.
	if err := g.SetUpstreamPaused("sim", true); err != nil {
		t.Fatal(err)
	}
	ctx := sessiontest.Ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := g.Submit(ctx, Submission{Account: "acme", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "447700900123"}, Text: fmt.Sprint("tps ", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := g.SetUpstreamPaused("sim", false); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Duration(n/tps)*time.Second + 5*time.Second)
	for up.Count() < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything beyond n would show
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != n {
		t.Fatalf("the simulator saw %d submissions, want %d", len(arrivals), n)
	}
	t.Logf("max_tps %d: %d submissions per second at the simulator: %v", tps, n, perSecond(arrivals))
	checkRate(t, arrivals, tps)
}
