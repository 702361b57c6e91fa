package session

import "github.com/smppgw/smppgw/pdu"

// What the external tests (package session_test, which can use sessiontest) look at inside a session.

const (
	MaxQueuedOut = maxQueuedOut
	DrainStatus  = drainStatus
)

// SetNextSequence makes n the next sequence number s uses.
func SetNextSequence(s *Session, n uint32) {
	s.mu.Lock()
	s.win.next = n
	s.mu.Unlock()
}

// QueuedOut is how many octets wait for s's writer.
func QueuedOut(s *Session) int64 { return s.out.queued.Load() }

// Quiescing reports whether s's unbind waits for the answers in flight.
func Quiescing(s *Session) bool { return s.quiesce.Load() }

// CommandIndex and StatusIndex are a meter's indexes of a command id and a status.
func CommandIndex(id pdu.CommandID) int    { return commandIndex(id) }
func StatusIndex(st pdu.CommandStatus) int { return statusIndex(st) }

// HoldsOutBuf reports whether s holds an outgoing buffer (it should not while it has nothing to write).
func HoldsOutBuf(s *Session) bool {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.out.buf != nil
}
