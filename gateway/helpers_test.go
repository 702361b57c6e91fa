package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// testWait bounds every wait in these tests; they all happen on loopback.
const testWait = 5 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

func testAccount(t testing.TB, systemID, password string) Account {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return Account{SystemID: systemID, PasswordHash: string(h)}
}

// startServer serves on a fresh 127.0.0.1 port and shuts down at the end of the test.
func startServer(t testing.TB, cfg ServerConfig, sink MessageHandler, accounts ...Account) (*Server, string) {
	t.Helper()
	auth, err := NewMemoryAuthenticator(accounts...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FailureDelay == 0 {
		cfg.FailureDelay = -1
	}
	srv, err := NewServer(cfg, auth, sink, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, l.Addr().String()
}

// recorder is an ESME-side Handler that records what the session tells it.
type recorder struct {
	session.BaseHandler
	mu        sync.Mutex
	responses []session.Response
	timeouts  []session.Request
	requests  []session.Request
	lost      []session.Request
	reason    error
	ended     chan struct{}
	onRequest func(s *session.Session, req session.Request)
	gotResp   chan session.Response
	gotTO     chan session.Request
}

func newRecorder() *recorder {
	return &recorder{ended: make(chan struct{}), gotResp: make(chan session.Response, 100), gotTO: make(chan session.Request, 100)}
}

func (r *recorder) HandleRequest(s *session.Session, req session.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	f := r.onRequest
	r.mu.Unlock()
	if f != nil {
		f(s, req)
		return
	}
	_ = s.Respond(req, pdu.ESME_ROK, nil)
}

func (r *recorder) HandleResponse(_ *session.Session, _ session.Request, resp session.Response) {
	r.mu.Lock()
	r.responses = append(r.responses, resp)
	r.mu.Unlock()
	r.gotResp <- resp
}

func (r *recorder) HandleResponseTimeout(_ *session.Session, req session.Request) {
	r.mu.Lock()
	r.timeouts = append(r.timeouts, req)
	r.mu.Unlock()
	r.gotTO <- req
}

func (r *recorder) HandleClosed(_ *session.Session, reason error) {
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
}

func (r *recorder) Terminate(_ *session.Session, lost []session.Request) {
	r.mu.Lock()
	r.lost = lost
	r.mu.Unlock()
	close(r.ended)
}

func (r *recorder) waitEnded(t testing.TB) (error, []session.Request) {
	t.Helper()
	select {
	case <-r.ended:
	case <-time.After(testWait):
		t.Fatal("session did not end")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason, r.lost
}

// dialESME connects an ESME session to addr.
func dialESME(t testing.TB, addr string, h session.Handler, cfg session.Config) *session.Session {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := session.New(c, session.Options{Role: session.RoleESME, Handler: h, Config: cfg, Logger: zerolog.Nop()})
	t.Cleanup(func() {
		s.Abort()
		<-s.Done()
	})
	return s
}

func bindESME(t testing.TB, addr string, h session.Handler, cfg session.Config, bt session.BindType, id, pw string) *session.Session {
	t.Helper()
	s := dialESME(t, addr, h, cfg)
	if _, err := s.Bind(testCtx(t), bt, session.BindParams{SystemID: id, Password: pw}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	return s
}

// rawPeer is the other end of a connection driven byte by byte by a test.
type rawPeer struct {
	t   testing.TB
	c   net.Conn
	r   *pdu.Reader
	seq uint32
}

func newRawPeer(t testing.TB, c net.Conn) *rawPeer {
	t.Cleanup(func() { c.Close() })
	return &rawPeer{t: t, c: c, r: pdu.NewReader(c, 0)}
}

func dialRaw(t testing.TB, addr string) *rawPeer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return newRawPeer(t, c)
}

func (p *rawPeer) send(seq uint32, status pdu.CommandStatus, body pdu.Body) {
	p.t.Helper()
	b, err := pdu.Append(nil, seq, status, body)
	if err != nil {
		p.t.Fatal(err)
	}
	p.write(b)
}

func (p *rawPeer) request(body pdu.Body) uint32 {
	p.seq++
	p.send(p.seq, pdu.ESME_ROK, body)
	return p.seq
}

func (p *rawPeer) write(b []byte) {
	p.t.Helper()
	if _, err := p.c.Write(b); err != nil {
		p.t.Fatal(err)
	}
}

func (p *rawPeer) read() (pdu.Header, pdu.Body) {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(testWait))
	h, b, err := p.r.Read()
	if err != nil {
		p.t.Fatalf("raw peer read: %v", err)
	}
	return h, b
}

// expect reads one PDU and checks its command id and status.
func (p *rawPeer) expect(id pdu.CommandID, status pdu.CommandStatus) (pdu.Header, pdu.Body) {
	p.t.Helper()
	h, b := p.read()
	if h.ID != id || h.Status != status {
		p.t.Fatalf("got %v %v seq %d, want %v %v", h.ID, h.Status, h.Sequence, id, status)
	}
	return h, b
}

// expectEOF checks that the other side closes the connection.
func (p *rawPeer) expectEOF() {
	p.t.Helper()
	p.c.SetReadDeadline(time.Now().Add(testWait))
	for {
		_, _, err := p.r.Read()
		if err == nil {
			continue // e.g. an unbind on the way out
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isConnReset(err) {
			p.t.Fatalf("want the connection closed, got %v", err)
		}
		return
	}
}

func isConnReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

// rawSMSC listens on 127.0.0.1 and hands each accepted connection, already bound as a transceiver,
// to the test as a rawPeer.
func rawSMSC(t testing.TB) (string, <-chan *rawPeer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *rawPeer, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ch <- newRawPeer(t, c)
		}
	}()
	return l.Addr().String(), ch
}

func (p *rawPeer) acceptBind() {
	p.t.Helper()
	h, _ := p.read()
	if h.ID != pdu.BindTransceiverID && h.ID != pdu.BindTransmitterID && h.ID != pdu.BindReceiverID {
		p.t.Fatalf("want a bind, got %v", h.ID)
	}
	var resp pdu.Body
	switch h.ID {
	case pdu.BindTransmitterID:
		resp = &pdu.BindTransmitterResp{SystemID: "raw"}
	case pdu.BindReceiverID:
		resp = &pdu.BindReceiverResp{SystemID: "raw"}
	default:
		resp = &pdu.BindTransceiverResp{SystemID: "raw"}
	}
	p.send(h.Sequence, pdu.ESME_ROK, resp)
}

func submit(to string) *pdu.SubmitSM {
	return &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: to, ShortMessage: []byte("hello")}
}

// eventually polls cond until it holds or testWait passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// passwordChecks is how many bcrypt comparisons srv has run for binds.
func passwordChecks(srv *Server) uint64 { return srv.bindGate.checks.Load() }
