package session

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// maxQueuedOut is how many encoded octets may wait for the writer before the reader stops reading.
const maxQueuedOut = 1 << 20

// outBufSize is the capacity of a fresh outgoing buffer; maxKeptBuf the largest one given back to
// the pool for reuse (a buffer grown under a burst is left to the collector instead).
const (
	outBufSize = 4 << 10
	maxKeptBuf = 64 << 10
)

// outBufs holds the outgoing buffers of the sessions that have nothing to write: a session takes one
// when it queues a PDU and its writer gives it back once written, so an idle session holds none.
var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, outBufSize); return &b }}

func putOutBuf(b *[]byte) {
	if b != nil && cap(*b) <= maxKeptBuf {
		*b = (*b)[:0]
		outBufs.Put(b)
	}
}

// outbound is a session's write side, after nats-server's client.out: senders encode PDUs straight
// into buf under mu, and one writer goroutine (loop) takes the buffer and writes it in one call, so
// bursts coalesce into few syscalls. The writer runs only while there is something to write: the
// first PDU queued after it left starts it again, so an idle session has neither a writer goroutine
// nor a buffer. Nothing on the way allocates.
type outbound struct {
	conn    net.Conn
	start   time.Time     // the session's start, the base of the monotonic write deadline
	timeout time.Duration // Config.WriteTimeout
	failed  func(error)   // told of a failed write; it must stop o
	run     func()        // o.loop, made once: starting the writer allocates nothing

	// mu guards buf and the flags: senders append to buf, the writer takes it.
	mu      sync.Mutex
	buf     *[]byte // from outBufs; nil while nothing is queued
	running bool    // a writer goroutine runs, or has ended the connection (it is never started again)
	closing bool    // no more writes; the writer flushes what is queued and closes
	abort   bool    // no more writes; the writer drops what is queued

	deadline time.Duration // when the write deadline set on the socket expires, since start; the writer's
	done     chan struct{} // closed once the writer has closed the connection and returned
	space    chan struct{} // the writer took the queued octets
	queued   atomic.Int64  // octets encoded and not yet taken by the writer
	pdus     atomic.Uint64 // PDUs queued since the session began
}

func (o *outbound) init(conn net.Conn, start time.Time, timeout time.Duration, failed func(error)) {
	o.conn, o.start, o.timeout, o.failed = conn, start, timeout, failed
	o.run = o.loop
	o.space = make(chan struct{}, 1)
	o.done = make(chan struct{})
}

// take returns the buffer to append to, taking one from the pool if none is queued; o.mu is held.
func (o *outbound) take() []byte {
	if o.buf == nil {
		o.buf = outBufs.Get().(*[]byte)
	}
	return *o.buf
}

// append encodes one PDU into the buffer and starts the writer if it was not running.
func (o *outbound) append(seq uint32, status pdu.CommandStatus, body pdu.Body) error {
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return ErrClosed
	}
	b, err := pdu.Append(o.take(), seq, status, body)
	if err != nil {
		o.mu.Unlock()
		return err
	}
	*o.buf = b
	o.queuedUnlock()
	return nil
}

// appendHeader queues a header-only PDU: generic_nack, or a response with an error status.
func (o *outbound) appendHeader(id pdu.CommandID, status pdu.CommandStatus, seq uint32) error {
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return ErrClosed
	}
	*o.buf = pdu.AppendHeader(o.take(), pdu.Header{Length: pdu.HeaderLen, ID: id, Status: status, Sequence: seq})
	o.queuedUnlock()
	return nil
}

// queuedUnlock is the end of every append: with o.mu held and one more PDU appended to o.buf, it
// publishes the buffered size, releases o.mu and starts the writer unless it runs.
func (o *outbound) queuedUnlock() {
	o.queued.Store(int64(len(*o.buf)))
	o.pdus.Add(1)
	o.kickUnlock()
}

// kickUnlock releases o.mu, held, and starts the writer unless it runs.
func (o *outbound) kickUnlock() {
	start := !o.running
	o.running = true
	o.mu.Unlock()
	if start {
		go o.run()
	}
}

// wake has the writer look at the buffer and the flags (after stop).
func (o *outbound) wake() {
	o.mu.Lock()
	o.kickUnlock()
}

// stop takes no more writes: the writer flushes what is queued and closes the connection, or with
// abort drops it. The caller wakes the writer.
func (o *outbound) stop(abort bool) {
	o.mu.Lock()
	o.closing = true
	if abort {
		o.abort = true
	}
	o.mu.Unlock()
}

// loop owns the socket's write side while it runs: it takes whatever has been encoded since its last
// write and writes it in one call, until nothing is queued; then it returns, giving its buffer back.
// Once stopped it flushes (unless aborted), closes the connection and closes done. A failed write is
// reported to failed and the connection closed.
func (o *outbound) loop() {
	var spare *[]byte // the buffer just written, reused for the next round
	for {
		// Let the goroutines made runnable with us (the others of a burst of answers, a group
		// commit's waiters) append theirs first: one write of many PDUs costs less than many of few,
		// on both ends of the connection.
		runtime.Gosched()
		o.mu.Lock()
		buf := o.buf
		closing, abort := o.closing, o.abort
		if (buf == nil || len(*buf) == 0) && !closing {
			// Nothing to write: leave until the next PDU, with no buffer kept (an empty one may be
			// queued, the spare of the round before).
			o.buf = nil
			o.running = false
			o.mu.Unlock()
			putOutBuf(buf)
			putOutBuf(spare)
			return
		}
		o.buf = spare
		o.queued.Store(0)
		o.mu.Unlock()
		spare = nil
		select {
		case o.space <- struct{}{}:
		default:
		}
		if abort {
			o.end(buf)
			return
		}
		if buf != nil && len(*buf) > 0 {
			// Refreshed only when half used up, not per write: a stalled write still fails
			// within WriteTimeout/2 to WriteTimeout.
			if now := time.Since(o.start); o.deadline-now < o.timeout/2 {
				o.deadline = now + o.timeout
				o.conn.SetWriteDeadline(o.start.Add(o.deadline))
			}
			if _, err := o.conn.Write(*buf); err != nil {
				o.failed(err)
				o.end(buf)
				return
			}
			*buf = (*buf)[:0]
		}
		spare = buf
		if closing {
			o.mu.Lock()
			empty := o.buf == nil || len(*o.buf) == 0
			o.mu.Unlock()
			if empty {
				o.end(spare)
				return
			}
		}
	}
}

// end closes the connection for good; running stays set, so no writer starts again.
func (o *outbound) end(buf *[]byte) {
	o.conn.Close()
	putOutBuf(buf)
	close(o.done)
}
