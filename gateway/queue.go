package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// ErrQueueFull: the client's queue of pending submissions is at its limit.
var ErrQueueFull = errors.New("gateway: upstream queue full")

// Job is one request waiting for an upstream bind: a submit_sm (or data_sm, submit_multi, ...) and
// who to tell how it ended.
type Job struct {
	Body pdu.Body
	// Done is called once with the upstream's response when it accepted or refused the request for
	// good, or with ErrAttemptsExhausted or ErrExpired when the client gave up on it; throttling,
	// temporary errors, timeouts and lost PDUs are retried, not reported, within those bounds.
	Done func(session.Response, error)
	// Attempts is how many times it was sent and came back unsettled (a temporary error, a lost
	// PDU; throttling does not count), plus the attempt in flight while it is out.
	Attempts int
	// Accepted is when the message was accepted, which ClientConfig.MaxAge counts from: the store's
	// PartTask.Accepted for a Gateway's parts, the Submit call for a MemoryQueue's jobs. Zero means
	// unknown: the job's age is not bounded.
	Accepted time.Time
	// Validity is when the message stops being worth sending (its validity_period): a job still
	// queued then fails ErrExpired instead. The store's PartTask.Validity for a Gateway's parts, the
	// submit_sm's validity_period for a MemoryQueue's jobs. Zero means none.
	Validity time.Time

	// Set by the client when it sends the job, so a queue can record a lost PDU.
	Session  string // the session it was last sent on
	Sequence uint32 // its sequence number there

	// Ref is the queue's own handle on the job (a store lease); the client does not look at it.
	Ref any

	// ender is told the outcome when Done is nil: a queue of this package that embeds Job in a
	// struct of its own (storeQueue's partJob) implements it there, so no closure is made per job.
	ender jobEnder
	// client is the client that sent it last, whose result (*sentJob)(j) reports to.
	client *Client
}

type jobEnder interface {
	jobDone(session.Response, error)
}

// jobPinner is implemented by an ender that reuses its Job once the job ended and its outcome is
// handled: pin and unpin bracket a use of the job that may outlast its end (Client.pump's send).
type jobPinner interface {
	pin()
	unpin()
}

// end reports how the job ended, to Done or the queue's ender.
func (j *Job) end(resp session.Response, err error) {
	switch {
	case j.Done != nil:
		j.Done(resp, err)
	case j.ender != nil:
		j.ender.jobDone(resp, err)
	}
}

// sentJob is a Job in a session's window: its session.Completion, with nothing allocated per send.
type sentJob Job

// BorrowsResponse implements session.ResponseBorrower: a job of a queue of this package reads the
// response's message id during Complete (partJob.jobDone) and keeps nothing else of it; a job with
// a Done function hands the response to its caller, who may keep it.
func (j *sentJob) BorrowsResponse() bool { return j.Done == nil }

func (j *sentJob) Complete(resp session.Response, err error) {
	jb := (*Job)(j)
	jb.client.result(jb, resp, err)
}

// RequeueReason tells a Queue why a job comes back.
type RequeueReason uint8

// Requeue reasons.
const (
	// RequeueThrottled: the upstream answered ESME_RTHROTTLED or ESME_RMSGQFUL; retry after the delay.
	RequeueThrottled RequeueReason = iota + 1
	// RequeueLost: the request was sent and never answered (response timeout, or the session ended):
	// a lost PDU. The upstream may or may not have acted on it.
	RequeueLost
	// RequeueUnsent: the job was taken from the queue but never written (the session ended first).
	RequeueUnsent
	// RequeueTemporary: the upstream answered a temporary error (ESME_RSYSERR, ESME_RX_T_APPN);
	// retry after the delay. Unlike throttling, it counts as an attempt.
	RequeueTemporary
)

// Queue holds a client's pending jobs across reconnects: what the client takes and gives back. How
// jobs enter it is the queue's own business: MemoryQueue is the in-process one, fed by Client.Submit
// (its Push); a Gateway gives each of its clients a durable one reading the store's queue of the
// upstream, fed by store.AcceptMessage.
type Queue interface {
	// Requeue puts a job back (why says what happened to it; delay is how long it should wait before
	// it is sent again); it never blocks nor refuses.
	Requeue(j *Job, why RequeueReason, delay time.Duration)
	// Pop waits for the next job, until ctx ends.
	Pop(ctx context.Context) (*Job, error)
	// Len is how many jobs wait.
	Len() int
}

// MemoryQueue is a bounded in-memory Queue: a ring of jobs.
type MemoryQueue struct {
	mu    sync.Mutex
	buf   []*Job
	head  int
	n     int
	limit int
	wake  chan struct{}
}

// NewMemoryQueue returns a queue that holds up to limit pushed jobs (requeued ones may exceed it).
func NewMemoryQueue(limit int) *MemoryQueue {
	if limit <= 0 {
		limit = 10000
	}
	return &MemoryQueue{buf: make([]*Job, 16), limit: limit, wake: make(chan struct{}, 1)}
}

func (q *MemoryQueue) grow() {
	nb := make([]*Job, 2*len(q.buf))
	for i := range q.n {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

func (q *MemoryQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Push appends a job, or refuses with ErrQueueFull.
func (q *MemoryQueue) Push(_ context.Context, j *Job) error {
	q.mu.Lock()
	if q.n >= q.limit {
		q.mu.Unlock()
		return ErrQueueFull
	}
	if q.n == len(q.buf) {
		q.grow()
	}
	q.buf[(q.head+q.n)%len(q.buf)] = j
	q.n++
	q.mu.Unlock()
	q.signal()
	return nil
}

// Requeue implements Queue: the job goes back to the head at once; the client's throttle pause, not
// the queue, spaces out retries.
func (q *MemoryQueue) Requeue(j *Job, _ RequeueReason, _ time.Duration) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.grow()
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = j
	q.n++
	q.mu.Unlock()
	q.signal()
}

// Pop implements Queue.
func (q *MemoryQueue) Pop(ctx context.Context) (*Job, error) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			j := q.buf[q.head]
			q.buf[q.head] = nil
			q.head = (q.head + 1) % len(q.buf)
			q.n--
			more := q.n > 0
			q.mu.Unlock()
			if more {
				q.signal()
			}
			return j, nil
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Len implements Queue.
func (q *MemoryQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
