package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/store"
)

// A queue's entries live on disk (bucket seq -> payload); which of them are ready, claimed or
// delayed lives in memory, because claiming must not cost a disk write. After a restart every
// entry still on disk is ready again: whatever was claimed and not acknowledged when the
// process stopped is exactly what has to be retried, and at once: this process is the only
// consumer. Give-back delays and attempt counts are kept in memory only, so a restart makes
// given-back entries ready at once, counting from 0.
//
// Every claim gives the entry a new token from a store-wide counter and the lease carries it
// ("seq/token"), so GiveBack, Reroute and RequeueLost can tell the current claim from a
// stale one. An Ack or Reroute keeps its entries in memory until its write is durable
// (removing counts the writes in flight; claims skip such entries), so a failed write leaves
// them queued.

type entryState uint8

const (
	stReady entryState = iota
	stClaimed
	stDelayed
)

type entry struct {
	state     entryState
	token     uint64 // the current claim's, new on each claim and give-back
	removing  int    // Acks and Reroutes of the entry being written; claims skip it meanwhile
	attempts  int
	reclaimed bool
	// payload is the entry's bytes on disk when they are kept in memory (see keepMax), so a
	// claim reads nothing; nil: the claim reads them.
	payload []byte
}

// keepMax bounds the bytes of queue payloads kept in memory, all queues together. An entry
// published while they are below it keeps its payload; a backlog beyond it is read from the
// store when claimed, as every entry is after a restart.
const keepMax = 8 << 20

// keep gives e its payload p when the budget allows. s.qmu must be held.
func (s *Store) keep(e *entry, p []byte) {
	if s.kept+len(p) <= keepMax {
		e.payload = p
		s.kept += len(p)
	}
}

// unkeep drops e's kept payload. s.qmu must be held.
func (s *Store) unkeep(e *entry) {
	s.kept -= len(e.payload)
	e.payload = nil
}

type timeout struct {
	seq      uint64
	token    uint64
	deadline time.Time
}

type queue struct {
	entries map[uint64]*entry
	ready   seqHeap       // oldest first; may hold stale seqs, checked on pop
	claims  timeoutRing   // FIFO: every claim uses the same visibility time-out
	delayed delayHeap     // given back with a delay
	notify  chan struct{} // closed and replaced when entries become ready
	// waited says a claim took notify to wait on since it was made: only then does wake
	// close it and make another (a channel a publish, one per message).
	waited bool
}

func newQueue() *queue {
	return &queue{entries: map[uint64]*entry{}, notify: make(chan struct{})}
}

func (q *queue) wake() {
	if !q.waited {
		return // nobody waits: a claim looks at the entries before it takes notify
	}
	close(q.notify)
	q.notify = make(chan struct{})
	q.waited = false
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
	err := s.read(func(tx *txn) error {
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

// newEntry returns a zero entry, one of a block allocated at once (an allocation per
// message was one of the most frequent): a block lives while any of its entries is queued.
// s.qmu must be held.
func (s *Store) newEntry() *entry {
	if len(s.entryBlock) == 0 {
		s.entryBlock = make([]entry, entryBlock)
	}
	e := &s.entryBlock[0]
	s.entryBlock = s.entryBlock[1:]
	return e
}

const entryBlock = 64

// published makes freshly committed entries claimable, with attempts give-backs behind them.
// payloads, when not nil, are the entries' bytes on disk, kept for claims while the queue is
// short.
func (s *Store) published(name store.Queue, seqs []uint64, attempts int, payloads [][]byte) {
	s.qmu.Lock()
	q := s.q(name)
	for i, n := range seqs {
		e := s.newEntry()
		e.attempts = attempts
		if payloads != nil {
			s.keep(e, payloads[i])
		}
		q.entries[n] = e
		q.ready.push(n)
	}
	q.wake()
	s.qmu.Unlock()
}

// claimed is one entry taken by claim, before its payload is read.
type claimed struct {
	seq       uint64
	token     uint64
	attempts  int
	reclaimed bool
	payload   []byte // the entry's, when kept in memory
	entry     string // the lease's Entry
	of        int    // how many were claimed with it, so the caller sizes its result once
}

// newToken returns a claim token never handed out before by this store. s.qmu must be held.
func (s *Store) newToken() uint64 {
	s.tokens++
	return s.tokens
}

// appendEntry appends a lease's entry, "seq/token".
func appendEntry(b []byte, seq, token uint64) []byte {
	b = strconv.AppendUint(b, seq, 10)
	return strconv.AppendUint(append(b, '/'), token, 10)
}

// entries gives every claimed entry its lease entry, all of them in one string.
func entries(got []claimed) {
	var buf [16 * 41]byte
	b := buf[:0]
	for _, g := range got {
		b = appendEntry(b, g.seq, g.token)
	}
	all := string(b)
	for i := range got {
		n := len(appendEntry(buf[:0], got[i].seq, got[i].token))
		got[i].entry, all = all[:n], all[n:]
		got[i].of = len(got)
	}
}

// take claims up to max ready entries of q at now. s.qmu must be held.
func (s *Store) take(q *queue, now time.Time, max int) []claimed {
	for len(q.delayed) > 0 && !q.delayed[0].at.After(now) {
		d := q.delayed.pop()
		if e := q.entries[d.seq]; e != nil && e.state == stDelayed {
			e.state = stReady
			q.ready.push(d.seq)
		}
	}
	for q.claims.len() > 0 && !q.claims.front().deadline.After(now) {
		t := q.claims.pop()
		if e := q.entries[t.seq]; e != nil && e.state == stClaimed && e.token == t.token {
			e.state, e.reclaimed = stReady, true
			q.ready.push(t.seq)
		}
	}
	if len(q.ready) == 0 {
		return nil
	}
	out := make([]claimed, 0, min(max, len(q.ready)))
	deadline := now.Add(s.opts.VisibilityTimeout)
	for len(out) < max && len(q.ready) > 0 {
		n := q.ready.pop()
		e := q.entries[n]
		if e == nil || e.state != stReady || e.removing > 0 {
			// Acknowledged, a duplicate push, or being removed (pushed again if that fails).
			continue
		}
		e.state = stClaimed
		e.token = s.newToken()
		q.claims.push(timeout{seq: n, token: e.token, deadline: deadline})
		out = append(out, claimed{seq: n, token: e.token, attempts: e.attempts, reclaimed: e.reclaimed, payload: e.payload})
	}
	return out
}

// nextWake is when q may next have something to claim without an enqueue. s.qmu must be held.
func (q *queue) nextWake() time.Time {
	var t time.Time
	if q.claims.len() > 0 {
		t = q.claims.front().deadline
	}
	if len(q.delayed) > 0 && (t.IsZero() || q.delayed[0].at.Before(t)) {
		t = q.delayed[0].at
	}
	return t
}

// claim waits up to wait for entries of name and hands each with its payload to decode, in
// the read transaction: the payload is valid only until decode returns. A nil payload means
// the entry left the disk after it was claimed (an Ack or Reroute whose caller stopped
// waiting, so the entry was made claimable again, and whose write happened after all).
func (s *Store) claim(ctx context.Context, name store.Queue, consumer string, n int, wait time.Duration, decode func(c claimed, payload []byte)) error {
	if err := store.ValidateQueue(name); err != nil {
		return err
	}
	if consumer == "" {
		return fmt.Errorf("%w: empty consumer name", store.ErrInvalid)
	}
	n = max(n, 1)
	until := time.Now().Add(wait)
	for {
		if s.closed.Load() {
			return store.ErrClosed
		}
		now := time.Now()
		s.qmu.Lock()
		q := s.q(name)
		got := s.take(q, now, n)
		notify, wake := q.notify, q.nextWake()
		if len(got) == 0 {
			q.waited = true // it may wait on notify
		}
		s.qmu.Unlock()
		if len(got) > 0 {
			entries(got)
			if cached(got) {
				for _, g := range got {
					decode(g, g.payload)
				}
				return nil
			}
			return s.payloads(name, got, decode)
		}
		left := until.Sub(now)
		if left <= 0 {
			return nil
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
			return ctx.Err()
		}
		t.Stop()
	}
}

// payloads hands the claimed entries' payloads to decode, with one cursor for all of them.
// cached reports whether every claimed entry's payload is in memory.
func cached(got []claimed) bool {
	for _, g := range got {
		if g.payload == nil {
			return false
		}
	}
	return true
}

func (s *Store) payloads(name store.Queue, got []claimed, decode func(claimed, []byte)) error {
	err := s.read(func(tx *txn) error {
		var c *cursor
		if qb := tx.Bucket(bQueues).Bucket(queueBucket(name)); qb != nil {
			c = qb.Cursor()
		}
		var key [8]byte
		for _, g := range got {
			var v []byte
			if c != nil {
				binary.BigEndian.PutUint64(key[:], g.seq)
				if k, val := c.Seek(key[:]); bytes.Equal(k, key[:]) {
					v = val
				}
			}
			decode(g, v)
		}
		return nil
	})
	if err != nil {
		// The claims stand; they come back after the visibility time-out.
		return unavailable(err)
	}
	return nil
}

func (s *Store) forget(name store.Queue, seq uint64) {
	s.qmu.Lock()
	q := s.q(name)
	if e := q.entries[seq]; e != nil {
		s.unkeep(e)
		delete(q.entries, seq)
	}
	s.qmu.Unlock()
}

// ClaimParts claims parts to submit to upstream. consumer is checked but not kept: one
// process is the only consumer of an embedded store.
func (s *Store) ClaimParts(ctx context.Context, upstream, consumer string, max int, wait time.Duration) ([]*store.PartTask, error) {
	name := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	var out []*store.PartTask
	var gone, corrupt []uint64
	err := s.claim(ctx, name, consumer, max, wait, func(c claimed, payload []byte) {
		if payload == nil {
			gone = append(gone, c.seq) // removed (rerouted) between the claim and the read
			return
		}
		t, err := store.DecodePartTask(payload)
		if err != nil {
			// Undecodable work can never succeed; it is logged by the caller's metrics as
			// missing and removed so it does not come back forever.
			corrupt = append(corrupt, c.seq)
			return
		}
		t.Lease = store.Lease{Queue: name, Entry: c.entry}
		t.Attempts, t.Reclaimed = c.attempts, c.reclaimed
		if out == nil {
			out = make([]*store.PartTask, 0, c.of)
		}
		out = append(out, t)
	})
	if err != nil {
		return nil, err
	}
	s.dropped(name, gone, corrupt)
	return out, nil
}

// ClaimDeliveries claims deliver_sm for account.
func (s *Store) ClaimDeliveries(ctx context.Context, account, consumer string, max int, wait time.Duration) ([]*store.Delivery, error) {
	name := store.Queue{Kind: store.DeliverQueue, Name: account}
	var out []*store.Delivery
	var gone, corrupt []uint64
	err := s.claim(ctx, name, consumer, max, wait, func(c claimed, payload []byte) {
		if payload == nil {
			gone = append(gone, c.seq) // removed (rerouted) between the claim and the read
			return
		}
		d, err := store.DecodeDelivery(payload)
		if err != nil {
			corrupt = append(corrupt, c.seq)
			return
		}
		d.Lease = store.Lease{Queue: name, Entry: c.entry}
		d.Attempts, d.Reclaimed = c.attempts, c.reclaimed
		if out == nil {
			out = make([]*store.Delivery, 0, c.of)
		}
		out = append(out, d)
	})
	if err != nil {
		return nil, err
	}
	s.dropped(name, gone, corrupt)
	return out, nil
}

// dropped forgets entries found gone at claim time and removes undecodable ones, outside
// the read transaction (a write waits for the group commit).
func (s *Store) dropped(name store.Queue, gone, corrupt []uint64) {
	for _, n := range gone {
		s.forget(name, n)
	}
	for _, n := range corrupt {
		s.dropCorrupt(name, n)
	}
}

func (s *Store) dropCorrupt(name store.Queue, seq uint64) {
	s.forget(name, seq)
	// Best effort: if this delete fails the entry is dropped again after the next restart.
	_ = s.write(context.Background(), func(tx *txn) error {
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
	return s.write(ctx, func(tx *txn) error {
		var err error
		seqs, err = s.putQueue(tx, name, payload, seqs[:0], nil)
		return dirty(err)
	}, func() { s.published(name, seqs, 0, payload) })
}

// parseLease splits a lease into the entry's sequence number and the claim's token.
func parseLease(l store.Lease) (seq, token uint64, err error) {
	if err := store.ValidateQueue(l.Queue); err != nil {
		return 0, 0, err
	}
	a, b, ok := strings.Cut(l.Entry, "/")
	seq, err1 := strconv.ParseUint(a, 10, 64)
	token, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("%w: lease %q", store.ErrInvalid, l.Entry)
	}
	return seq, token, nil
}

// removal is an entry whose removal is being written, kept in memory until it is durable.
type removal struct {
	name store.Queue
	seq  uint64
	e    *entry
}

// startRemoval marks entry seq of name as being removed, so claims skip it, and returns it;
// nil when it is not in memory. s.qmu must be held.
func (s *Store) startRemoval(name store.Queue, seq uint64) *removal {
	r := &removal{}
	if !s.startRemovalInto(r, name, seq) {
		return nil
	}
	return r
}

// startRemovalInto is startRemoval into r; false when the entry is not in memory.
func (s *Store) startRemovalInto(r *removal, name store.Queue, seq uint64) bool {
	e := s.q(name).entries[seq]
	if e == nil {
		return false
	}
	e.removing++
	*r = removal{name: name, seq: seq, e: e}
	return true
}

// removed forgets entries whose removal is durable.
func (s *Store) removed(rs ...*removal) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for _, r := range rs {
		if q := s.q(r.name); q.entries[r.seq] == r.e {
			s.unkeep(r.e)
			delete(q.entries, r.seq)
		}
	}
}

// abandoned undoes startRemoval after a failed (or not known to be done) write: the entries
// are claimable again when their state says so. Had the write happened after all, the next
// claim finds no payload and forgets the entry.
func (s *Store) abandoned(rs ...*removal) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for _, r := range rs {
		q := s.q(r.name)
		if q.entries[r.seq] != r.e {
			continue // the removal was durable after all, or another one was
		}
		r.e.removing--
		// The write may have happened after all (its caller stopped waiting), or rewritten the
		// payload (a replace): claims read the disk again, which tells.
		s.unkeep(r.e)
		// A claim may have popped the entry while it was being removed (it timed out or was
		// given back meanwhile); it goes back in line.
		if r.e.removing == 0 && r.e.state == stReady {
			q.ready.push(r.seq)
			q.wake()
		}
	}
}

// Ack deletes the entries. They stay in memory, not claimable, until the delete is durable,
// and are claimable again when it fails.
func (s *Store) Ack(ctx context.Context, leases ...store.Lease) error {
	seqs := make([]uint64, len(leases))
	for i, l := range leases {
		n, _, err := parseLease(l)
		if err != nil {
			return err
		}
		seqs[i] = n
	}
	rs := make([]*removal, 0, len(leases))
	s.qmu.Lock()
	for i, l := range leases {
		if r := s.startRemoval(l.Queue, seqs[i]); r != nil {
			rs = append(rs, r)
		}
	}
	s.qmu.Unlock()
	err := s.write(ctx, func(tx *txn) error {
		for i, l := range leases {
			if qb := tx.Bucket(bQueues).Bucket(queueBucket(l.Queue)); qb != nil {
				if err := qb.Delete(be64(seqs[i])); err != nil {
					return dirty(err)
				}
			}
		}
		return nil
	}, func() { s.removed(rs...) })
	if err != nil {
		s.abandoned(rs...)
	}
	return err
}

// GiveBack makes a claimed entry claimable again after delay.
func (s *Store) GiveBack(ctx context.Context, l store.Lease, delay time.Duration) error {
	n, token, err := parseLease(l)
	if err != nil {
		return err
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.giveBack(l.Queue, n, token, delay, backAttempted)
}

// Postpone makes a claimed entry claimable again after delay, its attempts unchanged.
func (s *Store) Postpone(ctx context.Context, l store.Lease, delay time.Duration) error {
	n, token, err := parseLease(l)
	if err != nil {
		return err
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.giveBack(l.Queue, n, token, delay, backPostponed)
}

// backKind is why an entry is given back: what giveBack counts.
type backKind uint8

const (
	backAttempted backKind = iota // GiveBack: one more attempt
	backPostponed                 // Postpone: no attempt
	backLost                      // RequeueLost: one more attempt, and reclaimed
)

// holder returns entry n of name if the claim with token still holds it: ErrNotFound when
// the entry is gone, ErrLeaseLost when it was claimed again (or given back) since. s.qmu
// must be held.
func (s *Store) holder(name store.Queue, n, token uint64) (*entry, error) {
	e := s.q(name).entries[n]
	if e == nil {
		return nil, fmt.Errorf("%w: queue %v entry %d", store.ErrNotFound, name, n)
	}
	if e.token != token {
		return nil, fmt.Errorf("%w: queue %v entry %d", store.ErrLeaseLost, name, n)
	}
	return e, nil
}

// giveBack moves entry n of name to delayed or ready, if the claim with token holds it.
// s.qmu must be held.
func (s *Store) giveBack(name store.Queue, n, token uint64, delay time.Duration, why backKind) error {
	e, err := s.holder(name, n, token)
	if err != nil {
		return err
	}
	q := s.q(name)
	if why != backPostponed {
		e.attempts++
	}
	if why == backLost {
		e.reclaimed = true
	}
	// The lease is spent, and the claim's pending time-out no longer applies.
	e.token = s.newToken()
	switch {
	case delay > 0:
		// An entry already ready again (its time-out ran out, nobody claimed it) leaves a
		// stale copy in the ready heap, which claims skip while it is delayed.
		e.state = stDelayed
		q.delayed.push(delayed{seq: n, at: time.Now().Add(delay)})
	case e.state != stReady:
		e.state = stReady
		q.ready.push(n)
	}
	q.wake()
	return nil
}

// Reroute moves entry l to upstream's queue in one transaction. Until it is durable the
// entry stays where it is, not claimable; if it fails the lease still holds the entry.
func (s *Store) Reroute(ctx context.Context, l store.Lease, upstream string) error {
	n, token, err := parseLease(l)
	if err != nil {
		return err
	}
	to := store.Queue{Kind: store.SubmitQueue, Name: upstream}
	if l.Queue.Kind != store.SubmitQueue || store.ValidateQueue(to) != nil {
		return fmt.Errorf("%w: reroute %v to %q", store.ErrInvalid, l.Queue, upstream)
	}
	s.qmu.Lock()
	e, err := s.holder(l.Queue, n, token)
	var (
		r        *removal
		attempts int
	)
	if err == nil {
		r, attempts = s.startRemoval(l.Queue, n), e.attempts
	}
	s.qmu.Unlock()
	if err != nil {
		return err
	}
	var seqs []uint64
	err = s.write(ctx, func(tx *txn) error {
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
		seqs, err = s.putQueue(tx, to, [][]byte{payload}, seqs[:0], nil)
		return dirty(err)
	}, func() {
		s.removed(r)
		s.published(to, seqs, attempts, nil)
	})
	if err != nil {
		s.abandoned(r)
	}
	return err
}

// RequeueLost logs the lost PDUs and gives their entries back at once.
func (s *Store) RequeueLost(ctx context.Context, lost []store.LostPDU) error {
	recs := make([][]byte, len(lost))
	seqs := make([]uint64, len(lost))
	tokens := make([]uint64, len(lost))
	for i := range lost {
		n, token, err := parseLease(lost[i].Lease)
		if err != nil {
			return err
		}
		seqs[i], tokens[i] = n, token
		if lost[i].At.IsZero() {
			lost[i].At = nowUTC()
		}
		recs[i] = store.AppendLostPDU(nil, &lost[i])
	}
	err := s.write(ctx, func(tx *txn) error {
		b := tx.Bucket(bLost)
		for _, r := range recs {
			seq, err := b.NextSequence()
			if err != nil {
				return dirty(err)
			}
			if err := b.PutNew(be64(seq), r); err != nil {
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
		// An entry acknowledged or claimed again meanwhile is someone else's to settle.
		_ = s.giveBack(lost[i].Lease.Queue, seqs[i], tokens[i], 0, backLost)
	}
	return nil
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
