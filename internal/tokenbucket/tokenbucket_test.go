package tokenbucket

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	if New(0, t0) != nil || New(-1, t0) != nil {
		t.Fatal("a rate that is not positive is no limit (nil)")
	}
	b := New(2.5, t0)
	n := 0
	for b.Allow(t0) {
		n++
	}
	if n != 2 { // 2.5 tokens: two whole ones
		t.Fatalf("full bucket at 2.5/s allowed %d, want 2", n)
	}
	if !b.Allow(t0.Add(time.Second)) || !b.Allow(t0.Add(time.Second)) || b.Allow(t0.Add(time.Second)) {
		t.Fatal("one second later: 0.5 + 2.5 tokens should allow exactly two more")
	}
	if b.Allow(t0) {
		t.Fatal("a clock that goes back earns nothing")
	}
	b.SetRate(0.5, t0.Add(time.Second))
	if b.Allow(t0.Add(time.Second)) {
		t.Fatal("the burst follows the new rate")
	}
	if !b.Allow(t0.Add(3 * time.Second)) {
		t.Fatal("0.5/s earns a token in two seconds")
	}
}
