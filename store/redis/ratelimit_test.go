package redis

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/store"
)

// TestTakeTokens: two stores on one Redis share a bucket: a new bucket is full (burst), what one takes
// the other cannot, and the rate refills it by Redis's clock; bad arguments are refused.
func TestTakeTokens(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	cfg := Config{Addrs: []string{srv.Addr()}}
	a, b := openStore(t, srv, cfg), openStore(t, srv, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	take := func(s *Store, n int) int {
		t.Helper()
		got, err := s.TakeTokens(ctx, "acct:acme", 10, 10, n, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := take(a, 6); got != 6 {
		t.Fatalf("first take of 6 from a full bucket of 10: %d", got)
	}
	if got := take(b, 6); got != 4 {
		t.Fatalf("second take of 6 (4 left): %d", got)
	}
	if got := take(a, 6); got != 0 {
		t.Fatalf("take from an empty bucket: %d", got)
	}
	time.Sleep(350 * time.Millisecond) // 10/s: 3 whole tokens earned
	if got := take(b, 10); got < 3 || got > 4 {
		t.Fatalf("after 350ms at 10/s took %d, want 3 (or 4 on a slow machine)", got)
	}
	for _, bad := range []struct {
		key         string
		rate, burst float64
		n           int
		idle        time.Duration
	}{{"", 1, 1, 1, time.Second}, {"k", 0, 1, 1, time.Second}, {"k", 1, 0.5, 1, time.Second}, {"k", 1, 1, -1, time.Second}, {"k", 1, 1, 1, 0}} {
		if _, err := a.TakeTokens(ctx, bad.key, bad.rate, bad.burst, bad.n, bad.idle); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("TakeTokens%+v: %v, want ErrInvalid", bad, err)
		}
	}
}
