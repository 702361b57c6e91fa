package gateway

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// storeQueue is the Queue a Gateway gives each Client: it claims the parts the store queued for the
// upstream (store.AcceptMessage put them there) and has each outcome written by its settler, off the
// session goroutines: submit_sm_resp -> Settle with the upstream id (the update and the Ack in one write); a
// permanent refusal -> Settle REJECTED, a failure receipt (EXPIRED or UNDELIVERABLE when the client gave up on
// the part's age or attempts); throttling -> Postpone after the pause; a temporary error -> GiveBack
// after the delay; a request lost with its session or timed out -> RequeueLost. A few parts are
// claimed ahead (up to the slots) and kept across reconnects; Close gives them back.
//
// A part handed to the client holds one of batch slots (ClientConfig.MaxUnsettled per bind, at least
// its window) until its outcome is written in the store: the client's window frees as soon as the
// upstream answers, but a crash before the settle is durable sends the part again, so the slots, not
// the window, bound those duplicates. With more slots than the window, the window refills while the
// answered parts' settles wait for their group commit, which they share.
type storeQueue struct {
	st       store.Store
	settle   settler
	work     *pool
	upstream string
	consumer string
	batch    int
	log      zerolog.Logger
	slotGap  int      // how many slots a waiting Pop waits to see free (takeSlot)
	inDoubt  *inDoubt // parts of messages refused while in doubt are never sent (indoubt.go)

	// slotMu guards out, the parts handed out and not yet settled durably (at most batch), and
	// freed, closed when enough of them settle while a Pop waits.
	slotMu sync.Mutex
	out    int
	freed  chan struct{}

	mu      sync.Mutex
	buf     []*Job // claimed, not yet handed to the client: buf[head:]
	head    int
	paused  bool
	resumed chan struct{} // closed when un-paused; replaced when paused
}

// claimWait is how long one ClaimParts waits for work before it is asked again.
const claimWait = time.Second

func newStoreQueue(st store.Store, settle settler, work *pool, upstream, consumer string, batch int, log zerolog.Logger) *storeQueue {
	if batch <= 0 {
		batch = 10
	}
	resumed := make(chan struct{})
	close(resumed)
	return &storeQueue{st: st, settle: settle, work: work, upstream: upstream, consumer: consumer, batch: batch,
		log: log.With().Str("upstream", upstream).Logger(), slotGap: max(1, batch/8), resumed: resumed}
}

// settled gives back the slot of a part whose outcome is durable (or that went back unsent).
func (q *storeQueue) settled() {
	q.slotMu.Lock()
	q.out--
	var freed chan struct{}
	if q.freed != nil && q.out <= q.batch-q.slotGap {
		freed, q.freed = q.freed, nil
	}
	q.slotMu.Unlock()
	if freed != nil {
		close(freed)
	}
}

// takeSlot waits for a slot, until ctx ends. One that finds none free waits until slotGap are, so
// that a full window refills in runs, not with one wake-up of the client per part settled.
func (q *storeQueue) takeSlot(ctx context.Context) error {
	for {
		q.slotMu.Lock()
		if q.out < q.batch {
			q.out++
			q.slotMu.Unlock()
			return nil
		}
		if q.freed == nil {
			q.freed = make(chan struct{})
		}
		freed := q.freed
		q.slotMu.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// setPaused stops or resumes handing out work. Parts already in the window go on.
func (q *storeQueue) setPaused(p bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if p == q.paused {
		return
	}
	q.paused = p
	if p {
		q.resumed = make(chan struct{})
	} else {
		close(q.resumed)
	}
}

func (q *storeQueue) isPaused() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.paused
}

// Pop implements Queue. It waits for a slot first: no more than batch parts are out unsettled.
func (q *storeQueue) Pop(ctx context.Context) (*Job, error) {
	if err := q.takeSlot(ctx); err != nil {
		return nil, err
	}
	j, err := q.pop(ctx)
	if err != nil {
		q.settled()
	}
	return j, err
}

func (q *storeQueue) pop(ctx context.Context) (*Job, error) {
	for {
		q.mu.Lock()
		resumed := q.resumed
		if !q.paused && q.head < len(q.buf) {
			j := q.buf[q.head]
			q.buf[q.head] = nil
			q.head++
			if q.head == len(q.buf) {
				q.buf, q.head = q.buf[:0], 0 // the next claim reuses the array
			}
			q.mu.Unlock()
			return j, nil
		}
		q.mu.Unlock()
		select {
		case <-resumed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		tasks, err := q.st.ClaimParts(ctx, q.upstream, q.consumer, q.batch, claimWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			q.log.Error().Err(err).Msg("claiming parts failed; retrying")
			sleepCtx(ctx, claimWait)
			continue
		}
		tasks = q.inDoubt.drop(ctx, tasks)
		q.mu.Lock()
		for _, t := range tasks {
			q.buf = append(q.buf, q.job(t))
		}
		q.mu.Unlock()
	}
}

// partJob is a claimed part as the client's Job, with its submit_sm, in one allocation; once the
// upstream has answered it is also the pool's task that settles it, and the completion of that
// write when the store writes asynchronously. Jobs are reused (partJobs) once
// settled and no longer pinned by a send; one requeued or given up unsettled is left to the
// garbage collector, since a session or queue may still hold it.
type partJob struct {
	Job
	sm   pdu.SubmitSM
	t    *store.PartTask
	q    *storeQueue
	id   string       // the upstream's message id, once accepted
	err  error        // why it failed, once it did
	at   time.Time    // when it was accepted upstream, for an asynchronous settle
	refs atomic.Int32 // 1 until settled, plus one per send in progress (jobPinner)
}

var partJobs = sync.Pool{New: func() any { return new(partJob) }}

// job wraps a claimed part for the client.
func (q *storeQueue) job(t *store.PartTask) *Job {
	pj := partJobs.Get().(*partJob)
	pj.t, pj.q = t, q
	pj.refs.Store(1)
	fillSubmitSMTimes(&pj.sm, t)
	pj.Job = Job{Body: &pj.sm, Attempts: t.Attempts, Accepted: t.Accepted, Validity: t.Validity, Ref: t, ender: pj}
	return &pj.Job
}

func (pj *partJob) pin() { pj.refs.Add(1) }

// unpin drops a reference; the last one clears pj, field by field (it holds an atomic), and gives
// it back for the next claimed part.
func (pj *partJob) unpin() {
	if pj.refs.Add(-1) != 0 {
		return
	}
	pj.Job, pj.sm, pj.t, pj.q, pj.id, pj.err, pj.at = Job{}, pdu.SubmitSM{}, nil, nil, "", nil, time.Time{}
	partJobs.Put(pj)
}

// jobDone is told how the Job ended: the outcome is written by the pool, off the session's reader;
// or, for a part accepted upstream when the store writes asynchronously, queued for the store here,
// which needs no worker (a full queue holds up the reader, pushing back on the upstream).
func (pj *partJob) jobDone(resp session.Response, err error) {
	pj.err = err
	if r, ok := resp.Body.(*pdu.SubmitSMResp); ok && err == nil {
		pj.id = r.MessageID
	}
	if err == nil && pj.q.settle.partSentAsync(pj.t, pj.q.upstream, pj.id, pj) {
		return // SettleDone ends it
	}
	pj.q.work.run(pj)
}

func (pj *partJob) run() {
	q := pj.q
	if pj.err == nil {
		q.settle.partSent(pj.t, q.upstream, pj.id) // the store has no asynchronous writes (jobDone)
	} else {
		q.settle.partFailed(pj.t, q.upstream, pj.err)
	}
	q.settled()
	pj.unpin()
}

// SettleDone implements store.SettleCompletion for partSentAsync. It runs on the store's goroutine,
// which must not be held up: receipts that came before the mapping are forwarded, a store write,
// on a goroutine of their own.
func (pj *partJob) SettleDone(m *store.Message, early []store.Receipt, err error) {
	if err == nil && len(early) > 0 {
		go pj.settleDone(m, early, err)
		return
	}
	pj.settleDone(m, early, err)
}

func (pj *partJob) settleDone(m *store.Message, early []store.Receipt, err error) {
	q := pj.q
	q.settle.sent(storeContext(), pj.t, q.upstream, pj.id, pj.at, m, early, err)
	q.settled()
	pj.unpin()
	q.work.writeDone()
}

// Requeue implements Queue. It runs on a session goroutine, so the store writes go to the pool.
func (q *storeQueue) Requeue(j *Job, why RequeueReason, delay time.Duration) {
	t := j.Ref.(*store.PartTask)
	switch why {
	case RequeueUnsent:
		// Still claimed by us: keep it first in line.
		q.mu.Lock()
		if q.head > 0 {
			q.head--
			q.buf[q.head] = j
		} else {
			q.buf = append([]*Job{j}, q.buf...)
		}
		q.mu.Unlock()
		q.settled()
	case RequeueThrottled:
		q.work.do(func() { q.settle.postpone(t.Lease, delay); q.settled() })
	case RequeueTemporary:
		q.work.do(func() { q.settle.giveBack(t.Lease, delay); q.settled() })
	default:
		lost := store.LostPDU{Lease: t.Lease, Session: j.Session, CommandID: uint32(pdu.SubmitSMID), SequenceNumber: j.Sequence, At: time.Now()}
		q.work.do(func() { q.settle.partLost(t, lost); q.settled() })
	}
}

// Len implements Queue: the parts in the store's queue of the upstream, claimed or not.
func (q *storeQueue) Len() int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := q.st.QueueLen(ctx, store.Queue{Kind: store.SubmitQueue, Name: q.upstream})
	if err != nil {
		q.log.Debug().Err(err).Msg("queue length unknown")
		return 0
	}
	return n
}

// Close gives back what was claimed ahead and not sent, so another bind (or the next run) takes it
// at once rather than after the visibility time-out.
func (q *storeQueue) Close(ctx context.Context) {
	q.mu.Lock()
	buf := q.buf[q.head:]
	q.buf, q.head = nil, 0
	q.mu.Unlock()
	for _, j := range buf {
		t := j.Ref.(*store.PartTask)
		if err := q.st.Postpone(ctx, t.Lease, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
			q.log.Warn().Err(err).Str("message_id", t.MessageID).Msg("claimed part not given back; it returns after the visibility time-out")
		}
	}
}
