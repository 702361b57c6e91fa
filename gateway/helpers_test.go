package gateway

import (
	"context"
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
