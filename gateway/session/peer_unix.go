//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package session

import (
	"errors"
	"net"
	"syscall"
)

// peerGone reports whether the peer of c has closed or reset the connection, without reading
// anything: it peeks at the socket without waiting. The session's reader cannot tell, since it is the
// goroutine asking (a bind is decided on the reader). A peer that half-closes after sending its bind
// counts as gone; SMPP peers read their bind_resp before closing.
func peerGone(c net.Conn) bool {
	if t, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = t.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			gone = n == 0 // end of stream; n > 0 is more data from a live peer
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EWOULDBLOCK), errors.Is(err, syscall.EINTR):
		default:
			gone = true // ECONNRESET and the like
		}
		return true
	})
	return gone || err != nil
}
