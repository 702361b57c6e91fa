package embedded

import "testing"

// TestTimeoutRing: pushes and pops interleaved across the ring's wrap and its growth keep
// first-in first-out order.
func TestTimeoutRing(t *testing.T) {
	var r timeoutRing
	next, want := uint64(0), uint64(0)
	for round := range 40 {
		for range round*7%150 + 1 {
			r.push(timeout{seq: next})
			next++
		}
		for range round * 5 % 120 {
			if r.len() == 0 {
				break
			}
			if got := r.pop().seq; got != want {
				t.Fatalf("round %d: popped %d, want %d", round, got, want)
			}
			want++
		}
	}
	if r.len() != int(next-want) {
		t.Fatalf("len %d, want %d", r.len(), next-want)
	}
	for r.len() > 0 {
		if got := r.front().seq; got != want {
			t.Fatalf("front %d, want %d", got, want)
		}
		if got := r.pop().seq; got != want {
			t.Fatalf("popped %d, want %d", got, want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped %d of %d", want, next)
	}
}
