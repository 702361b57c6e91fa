package sessiontest

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// Wait bounds every wait of these helpers; the tests run on loopback.
const Wait = 5 * time.Second

// Ctx is a context that ends after Wait or with the test.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it holds, or fails the test after Wait.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Recorder is a session.Handler (an ESME's, usually) that records what its session tells it and
// answers the peer's requests ESME_ROK with an empty body, unless OnRequest is set.
type Recorder struct {
	session.BaseHandler
	// OnRequest, when set before the session is dialled, handles the peer's requests instead.
	OnRequest func(s *session.Session, req session.Request)
	// Responses receives the responses to our asynchronous requests; Timeouts, those that timed out.
	// Each holds 100; a test that expects more reads them as they come.
	Responses chan session.Response
	Timeouts  chan session.Request

	mu       sync.Mutex
	requests []session.Request
	reason   error
	lost     []session.Request
	ended    chan struct{}
}

// NewRecorder returns a Recorder with nothing recorded.
func NewRecorder() *Recorder {
	return &Recorder{ended: make(chan struct{}), Responses: make(chan session.Response, 100), Timeouts: make(chan session.Request, 100)}
}

// HandleRequest implements session.Handler.
func (r *Recorder) HandleRequest(s *session.Session, req session.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.mu.Unlock()
	if r.OnRequest != nil {
		r.OnRequest(s, req)
		return
	}
	_ = s.Respond(req, pdu.ESME_ROK, nil)
}

// HandleResponse implements session.Handler.
func (r *Recorder) HandleResponse(_ *session.Session, _ session.Request, resp session.Response) {
	r.Responses <- resp
}

// HandleResponseTimeout implements session.Handler.
func (r *Recorder) HandleResponseTimeout(_ *session.Session, req session.Request) {
	r.Timeouts <- req
}

// HandleClosed implements session.Handler.
func (r *Recorder) HandleClosed(_ *session.Session, reason error) {
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
}

// Terminate implements session.Handler.
func (r *Recorder) Terminate(_ *session.Session, lost []session.Request) {
	r.mu.Lock()
	r.lost = lost
	r.mu.Unlock()
	close(r.ended)
}

// Requests returns the peer's requests so far, in their order.
func (r *Recorder) Requests() []session.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// WaitEnded waits for the session to end (or fails the test after Wait) and returns why it closed
// and the requests of ours it lost.
func (r *Recorder) WaitEnded(t testing.TB) (error, []session.Request) {
	t.Helper()
	select {
	case <-r.ended:
	case <-time.After(Wait):
		t.Fatal("session did not end")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason, r.lost
}

// DialESME connects an ESME session to addr; it is aborted at the end of the test.
func DialESME(t testing.TB, addr string, h session.Handler, cfg session.Config) *session.Session {
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

// BindESME dials addr like DialESME and binds as bt with system_id id and password pw, or fails the
// test.
func BindESME(t testing.TB, addr string, h session.Handler, cfg session.Config, bt session.BindType, id, pw string) *session.Session {
	t.Helper()
	s := DialESME(t, addr, h, cfg)
	if _, err := s.Bind(Ctx(t), bt, session.BindParams{SystemID: id, Password: pw}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	return s
}
