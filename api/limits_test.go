package api_test

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type repeatA struct{}

func (repeatA) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	return len(p), nil
}

// TestRESTBodyIsBounded: an unauthenticated REST request with a huge body is refused without the
// server buffering it (found in review: a 256 MiB body grew the heap by 1.3 GiB before auth ran).
func TestRESTBodyIsBounded(t *testing.T) {
	st := openEmbedded(t)
	e := startEnv(t, newFakeGateway(st), st, nil)
	const size = 256 << 20
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
		}
	}()
	body := io.MultiReader(strings.NewReader(`{"source":"`), io.LimitReader(repeatA{}, size), strings.NewReader(`"}`))
	req, err := http.NewRequest(http.MethodPost, e.base+"/v1/messages", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // no Authorization at all
	resp, err := http.DefaultClient.Do(req)
	close(stop)
	<-sampled
	if err == nil {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode == http.StatusTooManyRequests || strings.Contains(string(raw), "grpc:") {
			t.Errorf("HTTP %d %s; want a 4xx refusal without gRPC internals", resp.StatusCode, raw)
		}
	} // else: the server closed the connection on the oversized body, which is a refusal too
	if grew := int64(peak.Load()) - int64(base); grew > 64<<20 {
		t.Errorf("the unauthenticated body was buffered: heap +%d MiB", grew>>20)
	}
}
