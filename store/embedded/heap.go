package embedded

import "time"

// Binary heaps of queue entries: container/heap boxes every element pushed or popped in an
// interface, an allocation per entry on the claim path.

type seqHeap []uint64

func (h *seqHeap) push(n uint64) { heapPush((*[]uint64)(h), n, seqLess) }
func (h *seqHeap) pop() uint64   { return heapPop((*[]uint64)(h), seqLess) }

func seqLess(a, b uint64) bool { return a < b }

type delayed struct {
	seq uint64
	at  time.Time
}

type delayHeap []delayed

func (h *delayHeap) push(d delayed) { heapPush((*[]delayed)(h), d, delayLess) }
func (h *delayHeap) pop() delayed   { return heapPop((*[]delayed)(h), delayLess) }

func delayLess(a, b delayed) bool { return a.at.Before(b.at) }

func heapPush[T any](h *[]T, x T, less func(a, b T) bool) {
	s := append(*h, x)
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !less(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

// heapPop removes and returns the least element; h must not be empty.
func heapPop[T any](h *[]T, less func(a, b T) bool) T {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && less(s[l], s[m]) {
			m = l
		}
		if r := l + 1; r < n && less(s[r], s[m]) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// timeoutRing is a queue's claims in the order they were made, oldest first: a ring, so a
// claim appends without growing it once it holds a visibility time-out's worth (a slice
// taken from the front and appended at the back reallocated and copied as it moved on).
type timeoutRing struct {
	buf  []timeout
	head int // index of the oldest
	n    int
}

func (r *timeoutRing) len() int { return r.n }

// front returns the oldest; the ring must not be empty.
func (r *timeoutRing) front() timeout { return r.buf[r.head] }

func (r *timeoutRing) pop() timeout {
	t := r.buf[r.head]
	r.head++
	if r.head == len(r.buf) {
		r.head = 0
	}
	r.n--
	return t
}

func (r *timeoutRing) push(t timeout) {
	if r.n == len(r.buf) {
		grown := make([]timeout, max(2*len(r.buf), 64))
		k := copy(grown, r.buf[r.head:])
		copy(grown[k:], r.buf[:r.head])
		r.buf, r.head = grown, 0
	}
	i := r.head + r.n
	if i >= len(r.buf) {
		i -= len(r.buf)
	}
	r.buf[i] = t
	r.n++
}
