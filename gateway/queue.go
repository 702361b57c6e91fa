package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// ErrQueueFull: the client's queue of pending submissions is at its limit.
var ErrQueueFull = errors.New("gateway: upstream queue full")

// Job is one request waiting for an upstream bind: a submit_sm (or data_sm, submit_multi, ...) and
// who to tell how it ended.
type Job struct {
	Body pdu.Body
	// Done is called once with the upstream's response when it accepted or refused the request for
	// good; throttling, timeouts and lost PDUs are retried, not reported.
	Done     func(Response, error)
	Attempts int       // how many times it has been sent
	Enqueued time.Time // when it was first queued
}

// Queue holds a client's pending jobs across reconnects. MemoryQueue is the in-process one; a durable
// queue from the store can take its place.
type Queue interface {
	// Push appends a job, or refuses with ErrQueueFull.
	Push(ctx context.Context, j *Job) error
	// Requeue puts a job back at the head (it was throttled or lost); it never blocks nor refuses.
	Requeue(j *Job)
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

// Push implements Queue.
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

// Requeue implements Queue.
func (q *MemoryQueue) Requeue(j *Job) {
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
