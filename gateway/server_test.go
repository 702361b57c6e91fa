package gateway

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	fsmpp "github.com/fiorix/go-smpp/smpp"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
)

func TestBindRefusals(t *testing.T) {
	acct := testAccount(t, "alice", "secret")
	acct.MaxBinds = 1
	_, addr := startServer(t, ServerConfig{}, &acceptSink{}, acct)
	cases := []struct {
		id, pw string
		want   pdu.CommandStatus
	}{
		{"alice", "wrong", pdu.ESME_RINVPASWD},
		{"mallory", "secret", pdu.ESME_RINVPASWD}, // unknown system_id: told apart only in our log
	}
	for _, c := range cases {
		s := sessiontest.DialESME(t, addr, nil, session.Config{})
		_, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: c.id, Password: c.pw})
		if !errors.Is(err, c.want) {
			t.Errorf("bind %s/%s: %v, want %v", c.id, c.pw, err, c.want)
		}
		// A refused bind leaves the connection open for another try.
		if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: "alice", Password: "secret"}); err != nil {
			t.Fatalf("retry after %v: %v", c.want, err)
		}
		if err := s.Unbind(sessiontest.Ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "alice", "secret")
	s := sessiontest.DialESME(t, addr, nil, session.Config{})
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindReceiver, session.BindParams{SystemID: "alice", Password: "secret"}); !errors.Is(err, pdu.ESME_RALYBND) {
		t.Fatalf("bind beyond max_binds: %v", err)
	}
}

func TestAccountRestrictions(t *testing.T) {
	far := testAccount(t, "far", "pw")
	far.AllowedIPs = []string{"10.0.0.0/8"}
	near := testAccount(t, "near", "pw")
	near.AllowedIPs = []string{"10.0.0.0/8", "127.0.0.1"}
	near.BindTypes = []session.BindType{session.BindTransmitter}
	near.Throughput = 2
	_, addr := startServer(t, ServerConfig{}, &acceptSink{}, far, near)

	s := sessiontest.DialESME(t, addr, nil, session.Config{})
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransmitter, session.BindParams{SystemID: "far", Password: "pw"}); !errors.Is(err, pdu.ESME_RINVPASWD) {
		t.Fatalf("bind from outside the allow-list: %v", err)
	}
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindReceiver, session.BindParams{SystemID: "near", Password: "pw"}); !errors.Is(err, pdu.ESME_RBINDFAIL) {
		t.Fatalf("bind type not allowed: %v", err)
	}
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransmitter, session.BindParams{SystemID: "near", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	// A burst of 2 per second, then ESME_RTHROTTLED.
	var throttled int
	for range 4 {
		if _, err := s.Send(sessiontest.Ctx(t), submit("1")); errors.Is(err, pdu.ESME_RTHROTTLED) {
			throttled++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if throttled < 1 {
		t.Fatal("throughput cap not applied")
	}
}

func TestFailureTrackerBacksOff(t *testing.T) {
	ft := newFailureTracker[netip.Addr](100*time.Millisecond, time.Second, time.Minute)
	ip := netip.MustParseAddr("192.0.2.1")
	now := time.Now()
	var got []time.Duration
	for range 6 {
		got = append(got, ft.fail(ip, now))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays %v", got)
		}
	}
	if d := ft.fail(netip.MustParseAddr("192.0.2.2"), now); d != 100*time.Millisecond {
		t.Fatalf("another address shares the count: %v", d)
	}
	if d := ft.fail(ip, now.Add(2*time.Minute)); d != 100*time.Millisecond {
		t.Fatalf("failures not forgotten: %v", d)
	}
	ft.succeed(ip)
	if d := ft.fail(ip, now); d != 100*time.Millisecond {
		t.Fatalf("success did not reset: %v", d)
	}
}

func TestRepeatedBindFailuresAreSlowed(t *testing.T) {
	const base = 40 * time.Millisecond
	_, addr := startServer(t, ServerConfig{FailureDelay: base, FailureDelayMax: time.Second}, &acceptSink{}, testAccount(t, "alice", "secret"))
	s := sessiontest.DialESME(t, addr, nil, session.Config{})
	var took []time.Duration
	for range 3 {
		start := time.Now()
		if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: "alice", Password: "guess"}); !errors.Is(err, pdu.ESME_RINVPASWD) {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	// Lower bounds only: each answer is held back at least base, 2*base, 4*base.
	for i, d := range took {
		if min := base << i; d < min {
			t.Fatalf("failure %d answered after %v, want at least %v", i+1, d, min)
		}
	}
}

func TestOutbind(t *testing.T) {
	delivered := make(chan session.Request, 1)
	c, err := NewClient(ClientConfig{OutbindListen: "127.0.0.1:0", OutbindPassword: "ob", SystemID: "alice", Password: "secret"},
		deliverFunc(func(_ string, req session.Request) pdu.CommandStatus { delivered <- req; return pdu.ESME_ROK }), nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Unbind(context.Background()) })
	if st := c.Status().State; st != ClientWaiting {
		sessiontest.Eventually(t, "waiting for outbind", func() bool { return c.Status().State == ClientWaiting })
	}
	srv, _ := startServer(t, ServerConfig{SystemID: "smsc"}, &acceptSink{}, testAccount(t, "alice", "secret"))

	// A wrong outbind password is refused by the ESME.
	s, err := srv.Outbind(sessiontest.Ctx(t), OutbindConfig{Address: c.Status().OutbindAddr, Password: "nope"})
	if err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if c.Bound() {
		t.Fatal("bound after a bad outbind")
	}

	s, err = srv.Outbind(sessiontest.Ctx(t), OutbindConfig{Address: c.Status().OutbindAddr, Password: "ob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "server side bound", func() bool { return s.State() == session.StateBound })
	if got := srv.sessionsFor("alice"); len(got) != 1 || got[0] != s {
		t.Fatalf("registry %v", got)
	}
	if _, err := s.Send(sessiontest.Ctx(t), &pdu.DeliverSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("mo")}); err != nil {
		t.Fatal(err)
	}
	if req := <-delivered; string(req.Body.(*pdu.DeliverSM).ShortMessage) != "mo" {
		t.Fatalf("delivered %+v", req.Body)
	}
	// The client submits on the session it bound through the outbind.
	done := make(chan error, 1)
	c.Submit(sessiontest.Ctx(t), submit("9"), func(_ session.Response, err error) { done <- err })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestServerShutdownUnbindsAndReportsLost(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{Session: session.Config{UnbindTimeout: 100 * time.Millisecond}}, &acceptSink{}, testAccount(t, "alice", "secret"))
	rec := sessiontest.NewRecorder()
	rec.OnRequest = func(*session.Session, session.Request) {} // never answers deliver_sm
	c := sessiontest.BindESME(t, addr, rec, session.Config{}, session.BindTransceiver, "alice", "secret")
	other := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, other, session.Config{}, session.BindTransmitter, "alice", "secret")
	sessiontest.Eventually(t, "two binds", func() bool { return len(srv.sessionsFor("alice")) == 2 })
	var ss *session.Session
	for _, s := range srv.sessionsFor("alice") {
		if s.BindType() == session.BindTransceiver {
			ss = s
		}
	}
	if err := ss.SendAsync(sessiontest.Ctx(t), &pdu.DeliverSM{SourceAddr: "1", DestinationAddr: "2"}, nil); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "deliver_sm received", func() bool { return len(rec.Requests()) == 1 })
	if err := srv.Shutdown(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if reason, _ := other.WaitEnded(t); !errors.Is(reason, session.ErrPeerUnbound) {
		t.Fatalf("other bind: %v", reason)
	}
	rec.WaitEnded(t)
	// The one deliver_sm it never answered is the session's one lost PDU.
	if in := ss.Info(); in.Lost != 1 {
		t.Fatalf("lost %d", in.Lost)
	}
	if c.State() != session.StateClosed || len(srv.Sessions()) != 0 {
		t.Fatal("sessions left after shutdown")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestFiorixTransmitter binds an independent SMPP client, fiorix/go-smpp's Transmitter, to our Server
// and submits.
func TestFiorixTransmitter(t *testing.T) {
	got := make(chan string, 10)
	sink := &acceptSink{OnMessage: func(m Inbound) {
		if sm, ok := m.Request.Body.(*pdu.SubmitSM); ok {
			got <- sm.DestinationAddr + ":" + string(sm.ShortMessage)
		}
	}}
	_, addr := startServer(t, ServerConfig{}, sink, testAccount(t, "fiorix", "pw"))
	tx := &fsmpp.Transmitter{Addr: addr, User: "fiorix", Passwd: "pw", RespTimeout: 2 * time.Second, EnquireLink: time.Minute}
	status := tx.Bind()
	t.Cleanup(func() { tx.Close() })
	select {
	case st := <-status:
		if st.Status() != fsmpp.Connected {
			t.Fatalf("fiorix bind: %v %v", st.Status(), st.Error())
		}
	case <-time.After(sessiontest.Wait):
		t.Fatal("fiorix did not bind")
	}
	for i, text := range []string{"one", "two", "three"} {
		sm, err := tx.Submit(&fsmpp.ShortMessage{Src: "smppgw", Dst: "4479000000" + string(rune('0'+i)), Text: pdutext.Raw(text), Register: pdufield.NoDeliveryReceipt})
		if err != nil {
			t.Fatalf("fiorix submit: %v", err)
		}
		if sm.RespID() == "" {
			t.Fatal("no message id")
		}
		if g := <-got; g != "4479000000"+string(rune('0'+i))+":"+text {
			t.Fatalf("server got %q", g)
		}
	}
	// And a fiorix bind with a wrong password is refused.
	bad := &fsmpp.Transmitter{Addr: addr, User: "fiorix", Passwd: "nope", RespTimeout: time.Second}
	st := <-bad.Bind()
	bad.Close()
	if st.Status() == fsmpp.Connected || st.Error() == nil || !strings.Contains(st.Error().Error(), "invalid password") {
		t.Fatalf("bad password: %v %v", st.Status(), st.Error())
	}
}

// An ESME that unbinds and binds again at once, with max_binds 1, is not refused ESME_RALYBND by its
// own previous bind while that connection is still ending on our side.
func TestRebindRightAfterUnbind(t *testing.T) {
	acct := testAccount(t, "alice", "secret")
	acct.MaxBinds = 1
	_, addr := startServer(t, ServerConfig{}, &acceptSink{}, acct)
	for i := range 50 {
		s := sessiontest.DialESME(t, addr, nil, session.Config{})
		if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: "alice", Password: "secret"}); err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		if err := s.Unbind(sessiontest.Ctx(t)); err != nil {
			t.Fatalf("unbind %d: %v", i, err)
		}
	}
}

func TestBindAndSubmit(t *testing.T) {
	sink := &acceptSink{}
	srv, addr := startServer(t, ServerConfig{}, sink, testAccount(t, "alice", "secret"))
	s := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransceiver, "alice", "secret")
	if s.State() != session.StateBound || s.BindType() != session.BindTransceiver {
		t.Fatalf("state %v %v", s.State(), s.BindType())
	}
	resp, err := s.Send(sessiontest.Ctx(t), submit("4479"))
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resp.Body.(*pdu.SubmitSMResp)
	if !ok || r.MessageID != "1" || resp.Status != pdu.ESME_ROK {
		t.Fatalf("resp %+v %#v", resp, resp.Body)
	}
	in := s.Info()
	if in.SystemID != "alice" || in.PeerSystemID != "smppgw" || in.PDUsOut != 2 || in.PDUsIn != 2 || in.WindowUsed != 0 {
		t.Fatalf("client info %+v", in)
	}
	sessiontest.Eventually(t, "server registry", func() bool { return len(srv.sessionsFor("alice")) == 1 })
	ss := srv.sessionsFor("alice")[0]
	if got := ss.Info(); got.SystemID != "alice" || got.BindType != session.BindTransceiver || got.Role != session.RoleSMSC {
		t.Fatalf("server info %+v", got)
	}
	if _, ok := srv.Session(ss.ID()); !ok {
		t.Fatal("lookup by id failed")
	}
}

func TestUnbindFromESME(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, &acceptSink{}, testAccount(t, "alice", "secret"))
	rec := sessiontest.NewRecorder()
	s := sessiontest.BindESME(t, addr, rec, session.Config{}, session.BindTransceiver, "alice", "secret")
	sessiontest.Eventually(t, "registry", func() bool { return len(srv.sessionsFor("alice")) == 1 })
	ss := srv.sessionsFor("alice")[0]
	if err := s.Unbind(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if reason, _ := rec.WaitEnded(t); !errors.Is(reason, session.ErrUnbound) {
		t.Fatalf("client reason %v", reason)
	}
	<-ss.Done()
	if !errors.Is(ss.Err(), session.ErrPeerUnbound) {
		t.Fatalf("server reason %v", ss.Err())
	}
	sessiontest.Eventually(t, "registry cleared", func() bool { return len(srv.sessionsFor("alice")) == 0 && len(srv.Sessions()) == 0 })
}

func TestServerToESMEDeliveryAndInfo(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, &acceptSink{}, testAccount(t, "alice", "secret"))
	rec := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rec, session.Config{}, session.BindTransceiver, "alice", "secret")
	sessiontest.Eventually(t, "registry", func() bool { return len(srv.sessionsFor("alice")) == 1 })
	ss := srv.sessionsFor("alice")[0]
	// The SMSC side may not submit.
	if _, err := ss.Send(sessiontest.Ctx(t), submit("1")); !errors.Is(err, session.ErrNotBound) {
		t.Fatalf("smsc submit_sm: %v", err)
	}
	resp, err := ss.Send(sessiontest.Ctx(t), &pdu.DeliverSM{SourceAddr: "1", DestinationAddr: "2", ShortMessage: []byte("hi")})
	if err != nil || resp.Body.CommandID() != pdu.DeliverSMRespID {
		t.Fatalf("deliver_sm: %+v %v", resp, err)
	}
	infos := srv.Sessions()
	if len(infos) != 1 || infos[0].SystemID != "alice" || infos[0].PDUsOut < 2 || infos[0].Started.IsZero() || infos[0].RemoteAddr == "" {
		t.Fatalf("sessions %+v", infos)
	}
}
