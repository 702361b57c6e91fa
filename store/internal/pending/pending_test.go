package pending

import (
	"context"
	"sync"
	"testing"
	"time"
)

type node struct {
	n    int
	link Link[node]
}

func newList() *List[node] { return New(func(x *node) *Link[node] { return &x.link }) }

// TestClaimTakeAndOrder: Claim marks Mine only the nodes still on the list, Take takes a node
// once, and what is left keeps its order (the watcher's expired walk sees it oldest first).
func TestClaimTakeAndOrder(t *testing.T) {
	p := newList()
	ctx := context.Background()
	xs := make([]*node, 5)
	for i := range xs {
		xs[i] = &node{n: i}
		p.Add(xs[i], ctx)
	}
	if !p.Take(xs[1]) || p.Take(xs[1]) {
		t.Fatal("Take: want true once, then false")
	}
	p.Claim([]*node{xs[0], xs[1], xs[3]})
	for i, want := range []bool{true, false, false, true, false} {
		if got := xs[i].link.Mine(); got != want {
			t.Errorf("node %d: Mine %v, want %v", i, got, want)
		}
	}
	var left []int
	for x := p.head; x != nil; x = x.link.next {
		left = append(left, x.n)
	}
	if len(left) != 2 || left[0] != 2 || left[1] != 4 || p.tail != xs[4] {
		t.Errorf("left on the list %v (tail %d), want [2 4]", left, p.tail.n)
	}
}

// TestWatchExpires: Watch hands each node whose context ended to expire exactly once, with its
// context's error, leaves the others on the list, and returns when stop closes.
func TestWatchExpires(t *testing.T) {
	p := newList()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	var (
		mu  sync.Mutex
		got = map[int]error{}
	)
	stop := make(chan struct{})
	go p.Watch(stop, time.Millisecond, func(x *node, err error) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := got[x.n]; dup {
			t.Errorf("node %d expired twice", x.n)
		}
		got[x.n] = err
	})
	for i := range 6 {
		ctx := live
		if i%2 == 0 {
			ctx = ended
		}
		p.Add(&node{n: i}, ctx)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // more ticks: nothing else may expire
	close(stop)
	select {
	case <-p.Stopped():
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after stop")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 || got[0] != context.Canceled || got[2] != context.Canceled || got[4] != context.Canceled {
		t.Errorf("expired %v, want nodes 0, 2, 4 with context.Canceled", got)
	}
	var left []int
	for x := p.head; x != nil; x = x.link.next {
		left = append(left, x.n)
	}
	if len(left) != 3 || left[0] != 1 || left[1] != 3 || left[2] != 5 {
		t.Errorf("left on the list %v, want [1 3 5]", left)
	}
}
