package session

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// maxQueuedOut is how many encoded octets may wait for the writer before the reader stops reading.
const maxQueuedOut = 1 << 20

// outbound is a session's write side, after nats-server's client.out: senders encode PDUs straight
// into buf under mu, and one writer goroutine (loop) swaps the buffer for its spare one and writes it
// in one call, so bursts coalesce into few syscalls. Nothing on the way allocates.
type outbound struct {
	conn    net.Conn
	start   time.Time     // the session's start, the base of the monotonic write deadline
	timeout time.Duration // Config.WriteTimeout

	// mu guards buf and the flags: senders append to buf, the writer swaps it out.
	mu      sync.Mutex
	buf     []byte
	pending bool // the writer has been woken and has not taken buf yet
	closing bool // no more writes; the writer flushes what is queued and closes
	abort   bool // no more writes; the writer drops what is queued

	sig    chan struct{} // wakes the writer
	done   chan struct{} // closed once the writer has closed the connection and returned
	space  chan struct{} // the writer took the queued octets
	queued atomic.Int64  // octets encoded and not yet taken by the writer
	pdus   atomic.Uint64 // PDUs queued since the session began
}

func (o *outbound) init(conn net.Conn, start time.Time, timeout time.Duration) {
	o.conn, o.start, o.timeout = conn, start, timeout
	o.buf = make([]byte, 0, 4096)
	o.sig = make(chan struct{}, 1)
	o.space = make(chan struct{}, 1)
	o.done = make(chan struct{})
}

// append encodes one PDU into the buffer and wakes the writer if it was idle.
func (o *outbound) append(seq uint32, status pdu.CommandStatus, body pdu.Body) error {
	o.mu.Lock()
	if o.closing {
		o.mu.Unlock()
		return ErrClosed
	}
	b, err := pdu.Append(o.buf, seq, status, body)
	if err != nil {
		o.mu.Unlock()
		return err
	}
	o.buf = b
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
	o.buf = pdu.AppendHeader(o.buf, pdu.Header{Length: pdu.HeaderLen, ID: id, Status: status, Sequence: seq})
	o.queuedUnlock()
	return nil
}

// queuedUnlock is the end of every append: with o.mu held and one more PDU appended to o.buf, it
// publishes the buffered size, releases o.mu and wakes the writer unless a wake is already pending.
func (o *outbound) queuedUnlock() {
	o.queued.Store(int64(len(o.buf)))
	wake := !o.pending
	o.pending = true
	o.mu.Unlock()
	o.pdus.Add(1)
	if wake {
		o.wake()
	}
}

func (o *outbound) wake() {
	select {
	case o.sig <- struct{}{}:
	default:
	}
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

// loop owns the socket's write side: it takes whatever has been encoded since its last write and
// writes it in one call; it flushes and closes when stopped. A failed write is reported to failed
// (which must stop o), and the connection closed.
func (o *outbound) loop(failed func(error)) {
	defer close(o.done)
	spare := make([]byte, 0, 4096)
	var deadline time.Duration // when the write deadline set on the socket expires, since start
	for range o.sig {
		o.mu.Lock()
		buf := o.buf
		o.buf = spare[:0]
		o.pending = false
		o.queued.Store(0)
		closing, abort := o.closing, o.abort
		o.mu.Unlock()
		select {
		case o.space <- struct{}{}:
		default:
		}
		if abort {
			o.conn.Close()
			return
		}
		if len(buf) > 0 {
			// Refreshed only when half used up, not per write: a stalled write still fails
			// within WriteTimeout/2 to WriteTimeout.
			if now := time.Since(o.start); deadline-now < o.timeout/2 {
				deadline = now + o.timeout
				o.conn.SetWriteDeadline(o.start.Add(deadline))
			}
			if _, err := o.conn.Write(buf); err != nil {
				failed(err)
				o.conn.Close()
				return
			}
		}
		spare = buf[:0]
		if closing {
			o.mu.Lock()
			empty := len(o.buf) == 0
			o.mu.Unlock()
			if empty {
				o.conn.Close()
				return
			}
		}
	}
}
