package session

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/pdu"
)

// testWait bounds every wait in these tests; they all happen on loopback.
const testWait = 5 * time.Second

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	t.Cleanup(cancel)
	return ctx
}

// smsc is the SMSC side of these tests, in place of the gateway's Server: it binds system_id "alice"
// with password "secret", answers submit_sm with a fresh message id (or hands requests to serve),
// and reports each session it accepts and each bind it completes.
type smsc struct {
	BaseHandler
	next     atomic.Uint64
	serve    func(s *Session, req Request) // nil: answer as above
	accepted chan *Session
	bound    chan *Session
}

func (h *smsc) HandleBind(_ *Session, req Request) pdu.CommandStatus {
	if _, b, ok := BindOf(req.Body); ok && b.SystemID == "alice" && b.Password == "secret" {
		return pdu.ESME_ROK
	}
	return pdu.ESME_RINVPASWD
}

func (h *smsc) HandleBound(s *Session) {
	select {
	case h.bound <- s:
	default: // nobody listens (the fuzz target)
	}
}

func (h *smsc) HandleRequest(s *Session, req Request) {
	if h.serve != nil {
		h.serve(s, req)
		return
	}
	if _, ok := req.Body.(*pdu.SubmitSM); ok {
		_ = s.Respond(req, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: strconv.FormatUint(h.next.Add(1), 16)})
		return
	}
	h.BaseHandler.HandleRequest(s, req)
}

// startSMSC serves SMSC-role sessions on a fresh 127.0.0.1 port until the end of the test.
func startSMSC(t testing.TB, cfg Config, serve func(*Session, Request)) (*smsc, string) {
	t.Helper()
	h := &smsc{serve: serve, accepted: make(chan *Session, 100), bound: make(chan *Session, 100)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var all []*Session
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s := New(c, Options{Role: RoleSMSC, Handler: h, Config: cfg, Logger: zerolog.Nop()})
			mu.Lock()
			all = append(all, s)
			mu.Unlock()
			h.accepted <- s
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, s := range all {
			s.Abort()
			<-s.Done()
		}
	})
	return h, l.Addr().String()
}

// session returns the next session from ch (accepted or bound).
func next(t testing.TB, ch <-chan *Session) *Session {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(testWait):
		t.Fatal("no session")
		return nil
	}
}

// recorder is an ESME-side Handler that records what the session tells it.
type recorder struct {
	BaseHandler
	mu        sync.Mutex
	responses []Response
	timeouts  []Request
	requests  []Request
	lost      []Request
	reason    error
	ended     chan struct{}
	onRequest func(s *Session, req Request)
	gotResp   chan Response
	gotTO     chan Request
}

func newRecorder() *recorder {
	return &recorder{ended: make(chan struct{}), gotResp: make(chan Response, 100), gotTO: make(chan Request, 100)}
}

func (r *recorder) HandleRequest(s *Session, req Request) {
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

func (r *recorder) HandleResponse(_ *Session, _ Request, resp Response) {
	r.mu.Lock()
	r.responses = append(r.responses, resp)
	r.mu.Unlock()
	r.gotResp <- resp
}

func (r *recorder) HandleResponseTimeout(_ *Session, req Request) {
	r.mu.Lock()
	r.timeouts = append(r.timeouts, req)
	r.mu.Unlock()
	r.gotTO <- req
}

func (r *recorder) HandleClosed(_ *Session, reason error) {
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
}

func (r *recorder) Terminate(_ *Session, lost []Request) {
	r.mu.Lock()
	r.lost = lost
	r.mu.Unlock()
	close(r.ended)
}

func (r *recorder) waitEnded(t testing.TB) (error, []Request) {
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
func dialESME(t testing.TB, addr string, h Handler, cfg Config) *Session {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := New(c, Options{Role: RoleESME, Handler: h, Config: cfg, Logger: zerolog.Nop()})
	t.Cleanup(func() {
		s.shutdown(ErrClosed, false)
		<-s.Done()
	})
	return s
}

func bindESME(t testing.TB, addr string, h Handler, cfg Config, bt BindType, id, pw string) *Session {
	t.Helper()
	s := dialESME(t, addr, h, cfg)
	if _, err := s.Bind(testCtx(t), bt, BindParams{SystemID: id, Password: pw}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	return s
}

// boundToRaw returns an ESME session bound to a raw SMSC the test drives.
func boundToRaw(t testing.TB, h Handler, cfg Config) (*Session, *smpptest.Peer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := dialESME(t, l.Addr().String(), h, cfg)
	l.(*net.TCPListener).SetDeadline(time.Now().Add(testWait))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := smpptest.NewPeer(t, c)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Bind(testCtx(t), BindTransceiver, BindParams{SystemID: "esme", Password: "pw"})
		errc <- err
	}()
	h0, _ := p.Expect(pdu.BindTransceiverID, pdu.ESME_ROK)
	p.Send(h0.Sequence, pdu.ESME_ROK, &pdu.BindTransceiverResp{SystemID: "raw"})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return s, p
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

// held is a request of the peer's that a test answers when it likes.
type held struct {
	s   *Session
	req Request
}

func (m held) Respond(status pdu.CommandStatus, body pdu.Body) error {
	return m.s.Respond(m.req, status, body)
}

// holdAll serves by handing every request to ch.
func holdAll(ch chan held) func(*Session, Request) {
	return func(s *Session, req Request) { ch <- held{s, req} }
}
