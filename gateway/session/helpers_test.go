package session_test

import (
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/pdu"
)

// smsc is the SMSC side of these tests, in place of the gateway's Server: it binds system_id "alice"
// with password "secret", answers submit_sm with a fresh message id (or hands requests to serve),
// and reports each session it accepts and each bind it completes.
type smsc struct {
	session.BaseHandler
	next     atomic.Uint64
	serve    func(s *session.Session, req session.Request) // nil: answer as above
	accepted chan *session.Session
	bound    chan *session.Session
}

func (h *smsc) HandleBind(_ *session.Session, req session.Request) pdu.CommandStatus {
	if _, b, ok := session.BindOf(req.Body); ok && b.SystemID == "alice" && b.Password == "secret" {
		return pdu.ESME_ROK
	}
	return pdu.ESME_RINVPASWD
}

func (h *smsc) HandleBound(s *session.Session) {
	select {
	case h.bound <- s:
	default: // nobody listens (the fuzz target)
	}
}

func (h *smsc) HandleRequest(s *session.Session, req session.Request) {
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
func startSMSC(t testing.TB, cfg session.Config, serve func(*session.Session, session.Request)) (*smsc, string) {
	t.Helper()
	h := &smsc{serve: serve, accepted: make(chan *session.Session, 100), bound: make(chan *session.Session, 100)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var all []*session.Session
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s := session.New(c, session.Options{Role: session.RoleSMSC, Handler: h, Config: cfg, Logger: zerolog.Nop()})
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
func next(t testing.TB, ch <-chan *session.Session) *session.Session {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(sessiontest.Wait):
		t.Fatal("no session")
		return nil
	}
}

// boundToRaw returns an ESME session bound to a raw SMSC the test drives.
func boundToRaw(t testing.TB, h session.Handler, cfg session.Config) (*session.Session, *smpptest.Peer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := sessiontest.DialESME(t, l.Addr().String(), h, cfg)
	l.(*net.TCPListener).SetDeadline(time.Now().Add(sessiontest.Wait))
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	p := smpptest.NewPeer(t, c)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: "esme", Password: "pw"})
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

// held is a request of the peer's that a test answers when it likes.
type held struct {
	s   *session.Session
	req session.Request
}

func (m held) Respond(status pdu.CommandStatus, body pdu.Body) error {
	return m.s.Respond(m.req, status, body)
}

// holdAll serves by handing every request to ch.
func holdAll(ch chan held) func(*session.Session, session.Request) {
	return func(s *session.Session, req session.Request) { ch <- held{s, req} }
}
