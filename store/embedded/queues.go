package embedded

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/bbolt"

	"github.com/smppgw/smppgw/store"
)

// A queue's entries live on disk (bucket seq -> payload); which of them are ready, claimed or
// delayed lives in memory, because claiming must not cost a disk write. After a restart every
// entry still on disk is ready again: whatever was claimed and not acknowledged when the
// process stopped is exactly what has to be retried. Give-back delays and attempt counts are
// kept in memory only, so a restart makes given-back entries ready at once, counting from 0.

type entryState uint8

const (
	stReady entryState = iota
	stClaimed
	stDelayed
)

type entry struct {
	state     entryState
	token     uint32 // bumped on each claim, so a stale time-out is recognised
	attempts  int
	reclaimed bool
}

type timeout struct {
	seq      uint64
	token    uint32
	deadline time.Time
}

type queue struct {
	entries map[uint64]*entry
	ready   seqHeap       // oldest first; may hold stale seqs, checked on pop
	claims  []timeout     // FIFO: every claim uses the same visibility time-out
	delayed delayHeap     // given back with a delay
	notify  chan struct{} // closed and replaced when entries become ready
}

func newQueue() *queue {
	return &queue{entries: map[uint64]*entry{}, notify: make(chan struct{})}
}

func (q *queue) wake() {
	close(q.notify)
	q.notify = make(chan struct{})
}

// q returns the in-memory queue, creating it. s.qmu must be held.
func (s *Store) q(name store.Queue) *queue {
	q := s.queues[name]
	if q == nil {
		q = newQueue()
		s.queues[name] = q
	}
	return q
}

// loadQueues makes every entry on disk ready.
func (s *Store) loadQueues() error {
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bQueues).ForEachBucket(func(k []byte) error {
			if len(k) < 3 || k[1] != 0 {
				return nil
			}
			name := store.Queue{Kind: store.SubmitQueue, Name: string(k[2:])}
			if k[0] == 'd' {
				name.Kind = store.DeliverQueue
			}
			q := s.q(name)
			return tx.Bucket(bQueues).Bucket(k).ForEach(func(seq, _ []byte) error {
				if len(seq) == 8 {
					n := binary.BigEndian.Uint64(seq)
					q.entries[n] = &entry{}
					q.ready = append(q.ready, n) // ascending: ForEach is in key order
				}
				return nil
			})
		})
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// published makes freshly committed entries claimable.
func (s *Store) published(name store.Queue, seqs []uint64) {
	s.qmu.Lock()
	q := s.q(name)
	for _, n := range seqs {
		q.entries[n] = &entry{}
		heap.Push(&q.ready, n)
	}
	q.wake()
	s.qmu.Unlock()
}

// claimed is one entry taken by claim, before its payload is read.
type claimed struct {
	seq       uint64
	attempts  int
	reclaimed bool
}

// take claims up to max ready entries of q at now. s.qmu must be held.
func (s *Store) take(q *queue, now time.Time, max int) []claimed {
	for len(q.delayed) > 0 && !q.delayed[0].at.After(now) {
		d := heap.Pop(&q.delayed).(delayed)
		if e := q.entries[d.seq]; e != nil && e.state == stDelayed {
			e.state = stReady
			heap.Push(&q.ready, d.seq)
		}
	}
	for len(q.claims) > 0 && !q.claims[0].deadline.After(now) {
		t := q.claims[0]
		q.claims = q.claims[1:]
		if e := q.entries[t.seq]; e != nil && e.state == stClaimed && e.token == t.token {
			e.state, e.reclaimed = stReady, true
			heap.Push(&q.ready, t.seq)
		}
	}
	var out []claimed
	deadline := now.Add(s.opts.VisibilityTimeout)
	for len(out) < max && len(q.ready) > 0 {
		n := heap.Pop(&q.ready).(uint64)
		e := q.entries[n]
		if e == nil || e.state != stReady {
			continue // acknowledged, or a duplicate push
		}
		e.state = stClaimed
		e.token++
		q.claims = append(q.claims, timeout{seq: n, token: e.token, deadline: deadline})
		out = append(out, claimed{seq: n, attempts: e.attempts, reclaimed: e.reclaimed})
	}
	return out
}

// nextWake is when q may next have something to claim without an enqueue. s.qmu must be held.
func (q *queue) nextWake() time.Time {
	var t time.Time
	if len(q.claims) > 0 {
		t = q.claims[0].deadline
	}
	if len(q.delayed) > 0 && (t.IsZero() || q.delayed[0].at.Before(t)) {
		t = q.delayed[0].at
	}
	return t
}

// claim waits up to wait for entries of name and returns them with their payloads.
func (s *Store) claim(ctx context.Context, name store.Queue, consumer string, n int, wait time.Duration) ([]claimed, [][]byte, error) {
	if err := store.ValidateQueue(name); err != nil {
		return nil, nil, err
	}
	if consumer == "" {
		return nil, nil, fmt.Errorf("%w: empty consumer name", store.ErrInvalid)
	}
	n = max(n, 1)
	until := time.Now().Add(wait)
	for {
		if s.closed.Load() {
			return nil, nil, store.ErrClosed
		}
		now := time.Now()
		s.qmu.Lock()
		q := s.q(name)
		got := s.take(q, now, n)
		notify, wake := q.notify, q.nextWake()
		s.qmu.Unlock()
		if len(got) > 0 {
			payloads, err := s.payloads(name, got)
			return got, payloads, err
		}
		left := until.Sub(now)
		if left <= 0 {
			return nil, nil, nil
		}
		sleep := min(left, s.opts.PollInterval)
		if !wake.IsZero() && wake.Sub(now) < sleep {
			sleep = max(wake.Sub(now), time.Millisecond)
		}
		t := time.NewTimer(sleep)
		select {
		case <-notify:
		case <-t.C:
		case <-s.closing:
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		}
		t.Stop()
	}
}

// payloads reads the claimed entries' payloads; a nil payload means the entry left the
// disk after it was claimed (a concurrent Reroute of a reclaimed entry).
func (s *Store) payloads(name store.Queue, got []claimed) ([][]byte, error) {
	out := make([][]byte, len(got))
	err := s.db.View(func(tx *bbolt.Tx) error {
		qb := tx.Bucket(bQueues).Bucket(queueBucket(name))
		if qb == nil {
			return nil
		}
		for i, c := range got {
			out[i] = bytes.Clone(qb.Get(be64(c.seq)))
		}
		return nil
	})
	if err != nil {
		// The claims stand; they come back after the visibility time-out.
		return nil, unavailable(err)
	}
	return out, nil
}

func (s *Store) forget(name store.Queue, seq uint64) {
	s.qmu.Lock()
	delete(s.q(name).entries, seq)
	s.qmu.Unlock()
}

// ClaimParts claims parts to submit to upstream. consumer is checked but not kept: one
// process is the only consumer of an embedded store.
func (s *Store) ClaimParts(ctx context.Context, upstream, consumer string, max int, wait time.Duration) ([]*store.PartTask, error) {
	name := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	got, payloads, err := s.claim(ctx, name, consumer, max, wait)
	if err != nil {
		return nil, err
	}
	out := make([]*store.PartTask, 0, len(got))
	for i, c := range got {
		if payloads[i] == nil {
			s.forget(name, c.seq) // removed (rerouted) between the claim and the read
			continue
		}
		t, err := store.DecodePartTask(payloads[i])
		if err != nil {
			// Undecodable work can never succeed; it is logged by the caller's metrics as
			// missing and removed so it does not come back forever.
			s.dropCorrupt(name, c.seq)
			continue
		}
		t.Lease = store.Lease{Queue: name, Entry: strconv.FormatUint(c.seq, 10)}
		t.Attempts, t.Reclaimed = c.attempts, c.reclaimed
		out = append(out, t)
	}
	return out, nil
}

// ClaimDeliveries claims deliver_sm for account.
func (s *Store) ClaimDeliveries(ctx context.Context, account, consumer string, max int, wait time.Duration) ([]*store.Delivery, error) {
	name := store.Queue{Kind: store.DeliverQueue, Name: account}
	got, payloads, err := s.claim(ctx, name, consumer, max, wait)
	if err != nil {
		return nil, err
	}
	out := make([]*store.Delivery, 0, len(got))
	for i, c := range got {
		if payloads[i] == nil {
			s.forget(name, c.seq) // removed (rerouted) between the claim and the read
			continue
		}
		d, err := store.DecodeDelivery(payloads[i])
		if err != nil {
			s.dropCorrupt(name, c.seq)
			continue
		}
		d.Lease = store.Lease{Queue: name, Entry: strconv.FormatUint(c.seq, 10)}
		d.Attempts, d.Reclaimed = c.attempts, c.reclaimed
		out = append(out, d)
	}
	return out, nil
}

func (s *Store) dropCorrupt(name store.Queue, seq uint64) {
	s.forget(name, seq)
	// Best effort: if this delete fails the entry is dropped again after the next restart.
	_ = s.write(context.Background(), func(tx *bbolt.Tx) error {
		if qb := tx.Bucket(bQueues).Bucket(queueBucket(name)); qb != nil {
			return dirty(qb.Delete(be64(seq)))
		}
		return nil
	}, nil)
}

// EnqueueDelivery queues d for its account.
func (s *Store) EnqueueDelivery(ctx context.Context, d *store.Delivery) error {
	name := store.Queue{Kind: store.DeliverQueue, Name: d.Account}
	if err := store.ValidateQueue(name); err != nil {
		return err
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = nowUTC()
	}
	payload := [][]byte{store.AppendDelivery(nil, d)}
	var seqs []uint64
	return s.write(ctx, func(tx *bbolt.Tx) error {
		var err error
		seqs, err = putQueue(tx, name, payload, seqs[:0])
		return dirty(err)
	}, func() { s.published(name, seqs) })
}

func parseLease(l store.Lease) (uint64, error) {
	if err := store.ValidateQueue(l.Queue); err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(l.Entry, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: lease %q", store.ErrInvalid, l.Entry)
	}
	return n, nil
}

// Ack deletes the entries. They leave memory at once, so they are never handed out again.
func (s *Store) Ack(ctx context.Context, leases ...store.Lease) error {
	seqs := make([]uint64, len(leases))
	for i, l := range leases {
		n, err := parseLease(l)
		if err != nil {
			return err
		}
		seqs[i] = n
	}
	for i, l := range leases {
		s.forget(l.Queue, seqs[i])
	}
	return s.write(ctx, func(tx *bbolt.Tx) error {
		for i, l := range leases {
			if qb := tx.Bucket(bQueues).Bucket(queueBucket(l.Queue)); qb != nil {
				if err := qb.Delete(be64(seqs[i])); err != nil {
					return dirty(err)
				}
			}
		}
		return nil
	}, nil)
}

// GiveBack makes a claimed entry claimable again after delay.
func (s *Store) GiveBack(ctx context.Context, l store.Lease, delay time.Duration) error {
	n, err := parseLease(l)
	if err != nil {
		return err
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.giveBack(l.Queue, n, delay, false)
}

// giveBack moves entry n of name to delayed or ready. s.qmu must be held.
func (s *Store) giveBack(name store.Queue, n uint64, delay time.Duration, lost bool) error {
	q := s.q(name)
	e := q.entries[n]
	if e == nil {
		return fmt.Errorf("%w: queue %v entry %d", store.ErrNotFound, name, n)
	}
	if lost {
		e.reclaimed = true
	} else {
		e.attempts++
	}
	if e.state != stClaimed {
		return nil // already back in the queue (its time-out ran out first)
	}
	e.token++ // its pending time-out no longer applies
	if delay > 0 {
		e.state = stDelayed
		heap.Push(&q.delayed, delayed{seq: n, at: time.Now().Add(delay)})
	} else {
		e.state = stReady
		heap.Push(&q.ready, n)
	}
	q.wake()
	return nil
}

// Reroute moves entry l to upstream's queue in one transaction.
func (s *Store) Reroute(ctx context.Context, l store.Lease, upstream string) error {
	n, err := parseLease(l)
	if err != nil {
		return err
	}
	to := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	if l.Queue.Kind != store.SubmitQueue || store.ValidateQueue(to) != nil {
		return fmt.Errorf("%w: reroute %v to %q", store.ErrInvalid, l.Queue, upstream)
	}
	s.qmu.Lock()
	e := s.q(l.Queue).entries[n]
	attempts := 0
	if e != nil {
		attempts = e.attempts
	}
	s.qmu.Unlock()
	if e == nil {
		return fmt.Errorf("%w: queue %v entry %d", store.ErrNotFound, l.Queue, n)
	}
	var seqs []uint64
	return s.write(ctx, func(tx *bbolt.Tx) error {
		old := tx.Bucket(bQueues).Bucket(queueBucket(l.Queue))
		var payload []byte
		if old != nil {
			payload = bytes.Clone(old.Get(be64(n)))
		}
		if payload == nil {
			return fmt.Errorf("%w: queue %v entry %d", store.ErrNotFound, l.Queue, n)
		}
		if err := old.Delete(be64(n)); err != nil {
			return dirty(err)
		}
		var err error
		seqs, err = putQueue(tx, to, [][]byte{payload}, seqs[:0])
		return dirty(err)
	}, func() {
		s.forget(l.Queue, n)
		s.qmu.Lock()
		q := s.q(to)
		for _, seq := range seqs {
			q.entries[seq] = &entry{attempts: attempts}
			heap.Push(&q.ready, seq)
		}
		q.wake()
		s.qmu.Unlock()
	})
}

// RequeueLost logs the lost PDUs and gives their entries back at once.
func (s *Store) RequeueLost(ctx context.Context, lost []store.LostPDU) error {
	recs := make([][]byte, len(lost))
	seqs := make([]uint64, len(lost))
	for i := range lost {
		n, err := parseLease(lost[i].Lease)
		if err != nil {
			return err
		}
		seqs[i] = n
		if lost[i].At.IsZero() {
			lost[i].At = nowUTC()
		}
		recs[i] = store.AppendLostPDU(nil, &lost[i])
	}
	err := s.write(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bLost)
		for _, r := range recs {
			seq, err := b.NextSequence()
			if err != nil {
				return dirty(err)
			}
			if err := b.Put(be64(seq), r); err != nil {
				return dirty(err)
			}
			if seq > lostCap {
				if err := b.Delete(be64(seq - lostCap)); err != nil {
					return dirty(err)
				}
			}
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for i := range lost {
		// An entry acknowledged meanwhile has nothing left to retry.
		_ = s.giveBack(lost[i].Lease.Queue, seqs[i], 0, true)
	}
	return nil
}

// ListLost returns the newest lost PDUs first.
func (s *Store) ListLost(ctx context.Context, limit int) ([]store.LostPDU, error) {
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	var out []store.LostPDU
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bLost).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			l, err := store.DecodeLostPDU(v)
			if err != nil {
				return err
			}
			out = append(out, *l)
		}
		return nil
	})
	return out, err
}

// QueueLen counts the entries of q, claimed or not.
func (s *Store) QueueLen(ctx context.Context, name store.Queue) (int, error) {
	if err := store.ValidateQueue(name); err != nil {
		return 0, err
	}
	if s.closed.Load() {
		return 0, store.ErrClosed
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.q(name).entries), nil
}

type seqHeap []uint64

func (h seqHeap) Len() int           { return len(h) }
func (h seqHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h seqHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *seqHeap) Push(x any)        { *h = append(*h, x.(uint64)) }
func (h *seqHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type delayed struct {
	seq uint64
	at  time.Time
}

type delayHeap []delayed

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)        { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
