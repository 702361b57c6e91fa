package smpptest

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Wait bounds every read of a Peer; tests run on loopback.
const Wait = 5 * time.Second

// Peer is the other end of a connection, driven by a test. Its methods fail the test on any error.
type Peer struct {
	Conn   net.Conn
	Reader *pdu.Reader
	// Seq is the sequence number Request used last.
	Seq uint32
	t   testing.TB
}

// NewPeer wraps c, which is closed at the end of the test.
func NewPeer(t testing.TB, c net.Conn) *Peer {
	t.Cleanup(func() { c.Close() })
	return &Peer{t: t, Conn: c, Reader: pdu.NewReader(c, 0)}
}

// Dial connects a Peer to addr.
func Dial(t testing.TB, addr string) *Peer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return NewPeer(t, c)
}

// Listen listens on a fresh 127.0.0.1 port until the end of the test and hands each connection it
// accepts to the test as a Peer, not yet bound (see AcceptBind).
func Listen(t testing.TB) (addr string, peers <-chan *Peer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *Peer, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- NewPeer(t, c)
		}
	}()
	return l.Addr().String(), ch
}

// Send writes one PDU.
func (p *Peer) Send(seq uint32, status pdu.CommandStatus, body pdu.Body) {
	p.t.Helper()
	b, err := pdu.Append(nil, seq, status, body)
	if err != nil {
		p.t.Fatal(err)
	}
	p.Write(b)
}

// Request sends body with the next sequence number and returns it.
func (p *Peer) Request(body pdu.Body) uint32 {
	p.t.Helper()
	p.Seq++
	p.Send(p.Seq, pdu.ESME_ROK, body)
	return p.Seq
}

// Write writes raw bytes, well-formed or not.
func (p *Peer) Write(b []byte) {
	p.t.Helper()
	if _, err := p.Conn.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

// Read reads one PDU, waiting at most Wait.
func (p *Peer) Read() (pdu.Header, pdu.Body) {
	p.t.Helper()
	p.Conn.SetReadDeadline(time.Now().Add(Wait))
	h, b, err := p.Reader.Read()
	if err != nil {
		p.t.Fatalf("raw peer read: %v", err)
	}
	return h, b
}

// Expect reads one PDU and checks its command id and status.
func (p *Peer) Expect(id pdu.CommandID, status pdu.CommandStatus) (pdu.Header, pdu.Body) {
	p.t.Helper()
	h, b := p.Read()
	if h.ID != id || h.Status != status {
		p.t.Fatalf("got %v %v seq %d, want %v %v", h.ID, h.Status, h.Sequence, id, status)
	}
	return h, b
}

// ExpectEOF checks that the other side closes the connection; PDUs before the close (an unbind on the
// way out) are skipped.
func (p *Peer) ExpectEOF() {
	p.t.Helper()
	p.Conn.SetReadDeadline(time.Now().Add(Wait))
	for {
		_, _, err := p.Reader.Read()
		if err == nil {
			continue
		}
		if !IsClosed(err) {
			p.t.Fatalf("want the connection closed, got %v", err)
		}
		return
	}
}

// IsClosed reports whether a read error says the connection is gone: closed by the other side (EOF),
// by us, or reset; a read timeout is not.
func IsClosed(err error) bool {
	var ne *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne) && !ne.Timeout()
}

// AcceptBind reads a bind of any type and answers it ESME_ROK, as an SMSC with system_id "raw".
func (p *Peer) AcceptBind() {
	p.t.Helper()
	h, _ := p.Read()
	var resp pdu.Body
	switch h.ID {
	case pdu.BindTransmitterID:
		resp = &pdu.BindTransmitterResp{SystemID: "raw"}
	case pdu.BindReceiverID:
		resp = &pdu.BindReceiverResp{SystemID: "raw"}
	case pdu.BindTransceiverID:
		resp = &pdu.BindTransceiverResp{SystemID: "raw"}
	default:
		p.t.Fatalf("want a bind, got %v", h.ID)
	}
	p.Send(h.Sequence, pdu.ESME_ROK, resp)
}
