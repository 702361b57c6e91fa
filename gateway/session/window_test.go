package session

import (
	"testing"
	"time"
)

// The table starts small and doubles as requests are added, up to twice the window: every pending
// request is still found by its sequence number and they still come out oldest first.
func TestWindowGrows(t *testing.T) {
	const size = 100
	w := newWindow(size)
	if len(w.slots) != initialSlots {
		t.Fatalf("a new window has %d slots, want %d", len(w.slots), initialSlots)
	}
	// Sequence numbers that collide in the small table but not in the large one.
	w.next = 3
	var seqs []uint32
	for i := range size + internalSlots {
		j, ok := w.add(time.Duration(i))
		if !ok {
			t.Fatalf("add %d refused with %d pending in %d slots", i, w.n, len(w.slots))
		}
		seqs = append(seqs, w.slots[j].seq)
	}
	if want := 256; len(w.slots) != want {
		t.Errorf("%d pending in %d slots, want %d", w.n, len(w.slots), want)
	}
	for _, seq := range seqs {
		if w.lookup(seq) < 0 {
			t.Fatalf("seq %d lost in growing", seq)
		}
	}
	for i, seq := range seqs {
		if w.head < 0 {
			t.Fatalf("list ends after %d of %d", i, len(seqs))
		}
		p := w.take(w.head)
		if p.seq != seq || p.deadline != time.Duration(i) {
			t.Fatalf("entry %d is seq %d deadline %v, want seq %d deadline %v", i, p.seq, p.deadline, seq, time.Duration(i))
		}
	}
	if w.n != 0 || w.head != -1 || w.tail != -1 {
		t.Errorf("emptied window: n %d head %d tail %d", w.n, w.head, w.tail)
	}
}
