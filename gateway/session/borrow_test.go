package session_test

import (
	"net"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
)

// recordingSMSC binds alice, keeps a copy of every submit_sm's fields and the body pointer it was
// handed, and answers each; borrow says whether it declares itself a SubmitSMBorrower.
type recordingSMSC struct {
	smsc
	borrow bool
	mu     sync.Mutex
	got    []pdu.SubmitSM
	bodies map[*pdu.SubmitSM]bool
}

func (h *recordingSMSC) BorrowsSubmitSM() bool { return h.borrow }

func (h *recordingSMSC) HandleRequest(s *session.Session, req session.Request) {
	sm, ok := req.Body.(*pdu.SubmitSM)
	if !ok {
		h.smsc.HandleRequest(s, req)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, *sm) // its strings and octets point into frame memory, never reused
	h.bodies[sm] = true
	h.mu.Unlock()
	_ = s.Respond(req, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "1"})
}

// TestBorrowedSubmitSMBodyLeaksNothing: a Handler that borrows submit_sm bodies gets one body,
// reused, and each submit_sm in it as sent: the TLVs, validity period and text of one are gone
// from the next that has none. A Handler that does not borrow gets a body of its own each time.
func TestBorrowedSubmitSMBodyLeaksNothing(t *testing.T) {
	for _, borrow := range []bool{true, false} {
		h := &recordingSMSC{borrow: borrow, bodies: map[*pdu.SubmitSM]bool{}}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var srv *session.Session
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			c, err := l.Accept()
			if err != nil {
				return
			}
			srv = session.New(c, session.Options{Role: session.RoleSMSC, Handler: h, Logger: zerolog.Nop()})
		}()
		esme := sessiontest.BindESME(t, l.Addr().String(), nil, session.Config{}, session.BindTransmitter, "alice", "secret")
		<-accepted
		l.Close()
		ctx := sessiontest.Ctx(t)

		const n = 10
		sent := make([]*pdu.SubmitSM, n)
		for i := range n {
			sm := &pdu.SubmitSM{SourceAddr: "777", DestinationAddr: "447700900123", ShortMessage: []byte("hi")}
			if i%2 == 0 {
				sm = &pdu.SubmitSM{ServiceType: "WAP", SourceAddr: "12345", DestinationAddr: "447700900001",
					PriorityFlag: 2, ValidityPeriod: "000001000000000R", ShortMessage: []byte("a longer message with options")}
				sm.Options.SetUserMessageReference(uint16(i))
			}
			sent[i] = sm
			if _, err := esme.Send(ctx, sm); err != nil {
				t.Fatal(err)
			}
		}
		h.mu.Lock()
		got, bodies := h.got, len(h.bodies)
		h.mu.Unlock()
		if len(got) != n {
			t.Fatalf("borrow=%v: the SMSC got %d submit_sm, want %d", borrow, len(got), n)
		}
		if want := map[bool]int{true: 1, false: n}[borrow]; bodies != want {
			t.Errorf("borrow=%v: %d distinct bodies handed to the Handler, want %d", borrow, bodies, want)
		}
		for i, g := range got {
			w := sent[i]
			if g.ServiceType != w.ServiceType || g.SourceAddr != w.SourceAddr || g.DestinationAddr != w.DestinationAddr ||
				g.PriorityFlag != w.PriorityFlag || g.ValidityPeriod != w.ValidityPeriod ||
				string(g.ShortMessage) != string(w.ShortMessage) || string(g.Options) != string(w.Options) {
				t.Errorf("borrow=%v: submit_sm %d handed over as %+v, sent as %+v", borrow, i, g, *w)
			}
		}
		esme.Abort()
		srv.Abort()
		<-srv.Done()
	}
}

// respRecorder is a Completion that keeps the message id of each submit_sm_resp and the body
// pointer it was handed; borrow says whether it declares itself a ResponseBorrower.
type respRecorder struct {
	borrow bool
	mu     sync.Mutex
	ids    []string
	bodies map[*pdu.SubmitSMResp]bool
	done   chan struct{}
}

func (c *respRecorder) BorrowsResponse() bool { return c.borrow }

func (c *respRecorder) Complete(r session.Response, err error) {
	c.mu.Lock()
	if b, ok := r.Body.(*pdu.SubmitSMResp); ok && err == nil {
		c.ids = append(c.ids, b.MessageID)
		c.bodies[b] = true
	}
	c.mu.Unlock()
	c.done <- struct{}{}
}

// TestBorrowedSubmitSMRespBody: a Completion that borrows submit_sm_resp bodies gets the session's
// one body, each time with the message id of its own response; one that does not gets a body of its
// own each time, so that it may keep it.
func TestBorrowedSubmitSMRespBody(t *testing.T) {
	_, addr := startSMSC(t, session.Config{}, nil)
	for _, borrow := range []bool{true, false} {
		s := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "alice", "secret")
		ctx := sessiontest.Ctx(t)
		c := &respRecorder{borrow: borrow, bodies: map[*pdu.SubmitSMResp]bool{}, done: make(chan struct{}, 1)}
		const n = 10
		var kept []*pdu.SubmitSMResp
		for range n {
			if err := s.SendAsyncTo(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("x")}, c); err != nil {
				t.Fatal(err)
			}
			<-c.done
		}
		c.mu.Lock()
		for b := range c.bodies {
			kept = append(kept, b)
		}
		ids := c.ids
		c.mu.Unlock()
		if want := map[bool]int{true: 1, false: n}[borrow]; len(kept) != want {
			t.Errorf("borrow=%v: %d distinct bodies, want %d", borrow, len(kept), want)
		}
		if len(ids) != n {
			t.Fatalf("borrow=%v: %d responses, want %d", borrow, len(ids), n)
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if id == "" || seen[id] {
				t.Errorf("borrow=%v: message ids %q: each response's own expected", borrow, ids)
				break
			}
			seen[id] = true
		}
		if !borrow {
			// Kept bodies still say what their responses said.
			got := map[string]bool{}
			for _, b := range kept {
				got[b.MessageID] = true
			}
			if len(got) != n {
				t.Errorf("kept bodies say %v, want the %d ids %q", got, n, ids)
			}
		}
		s.Abort()
	}
}
