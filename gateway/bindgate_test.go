package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/pdu"
)

// dialFrom connects to addr from the loopback address local (127.0.0.0/8 is all loopback), so that a
// test can play several remote addresses.
func dialFrom(local, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: sessiontest.Wait}
	return d.Dial("tcp", addr)
}

func bindBytes(t testing.TB, seq uint32, id, pw string) []byte {
	b, err := pdu.Append(nil, seq, pdu.ESME_ROK, &pdu.BindTransceiver{SystemID: id, Password: pw, InterfaceVersion: 0x34})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bindRetrying binds an ESME from 127.0.0.1 as an ESME would: ESME_RSYSERR (the gateway is busy
// checking other passwords) is retried, a bounded number of times.
func bindRetrying(t testing.TB, addr, id, pw string) (*session.Session, error) {
	var err error
	for range 100 {
		s := sessiontest.DialESME(t, addr, nil, session.Config{})
		if _, err = s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: id, Password: pw}); err == nil {
			return s, nil
		}
		s.Close()
		if !errors.Is(err, pdu.ESME_RSYSERR) {
			return nil, err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil, err
}

// TestBindFloodKeepsServing: while binds with wrong passwords pour in from four other addresses, a
// bound ESME keeps getting answers, legitimate binds succeed (also of the attacked system_id), and
// the bcrypt comparisons stay bounded by the penalty windows, not by the number of bad binds.
func TestBindFloodKeepsServing(t *testing.T) {
	const (
		base      = 50 * time.Millisecond
		capDelay  = 400 * time.Millisecond
		flood     = 1500 * time.Millisecond
		attackIPs = 4
		perIP     = 4   // concurrent attackers per address
		maxBinds  = 250 // per attacker
		legit     = 10
	)
	accounts := []Account{testAccount(t, "alice", "secret")}
	for i := range 3 {
		accounts = append(accounts, testAccount(t, fmt.Sprintf("bob%d", i), "pw"))
	}
	srv, addr := startServer(t, ServerConfig{FailureDelay: base, FailureDelayMax: capDelay, MaxPasswordChecks: 2}, &acceptSink{}, accounts...)

	// alice is bound before the flood (so her credentials are cached) and keeps working through it.
	alice := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransceiver, "alice", "secret")
	before := passwordChecks(srv)

	ctx, cancel := context.WithTimeout(context.Background(), flood)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	for ip := range attackIPs {
		local := fmt.Sprintf("127.0.0.%d", ip+2)
		for a := range perIP {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < maxBinds && ctx.Err() == nil; i++ {
					c, err := dialFrom(local, addr)
					if err != nil {
						continue
					}
					// Wrong passwords for alice and for ids that do not exist; most attackers fire and
					// forget, some wait for the answer.
					id := "alice"
					if i%2 == 1 {
						id = fmt.Sprintf("x%d", i)
					}
					if _, err := c.Write(bindBytes(t, 1, id, fmt.Sprintf("g%d-%d", a, i))); err == nil {
						sent.Add(1)
					}
					if a == 0 {
						c.SetReadDeadline(time.Now().Add(capDelay + time.Second))
						_, _, _ = pdu.NewReader(c, 0).Read()
					}
					c.Close()
				}
			}()
		}
	}

	var answered, asked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, body := range []pdu.Body{submit("447700900123"), &pdu.EnquireLink{}} {
				asked.Add(1)
				if _, err := alice.Send(sessiontest.Ctx(t), body); err == nil {
					answered.Add(1)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	var bound int
	for i := range legit {
		id, pw := fmt.Sprintf("bob%d", i%3), "pw"
		if i%2 == 1 {
			id, pw = "alice", "secret" // the attacked system_id binds through the cache
		}
		s, err := bindRetrying(t, addr, id, pw)
		if err != nil {
			t.Errorf("legitimate bind %d (%s) during the flood: %v", i, id, err)
			continue
		}
		bound++
		s.Close()
		time.Sleep(flood / legit)
	}
	wg.Wait()

	if bound != legit {
		t.Errorf("%d of %d legitimate binds succeeded during the flood", bound, legit)
	}
	if asked.Load() == 0 || answered.Load() != asked.Load() {
		t.Errorf("bound ESME: %d of %d requests answered during the flood", answered.Load(), asked.Load())
	}
	if alice.State() != session.StateBound || len(srv.sessionsFor("alice")) == 0 {
		t.Errorf("the bound ESME was dropped: %v", alice.State())
	}
	// Each attacking address gets at most perIP comparisons per penalty window (its concurrent binds
	// before the first failure lands), windows double from base to capDelay, and the legitimate binds
	// add one per bob.
	var windows int64 = 2
	for d, total := base, time.Duration(0); total < flood; d = min(2*d, capDelay) {
		total += d
		windows++
	}
	bound64 := attackIPs*perIP*windows + 3
	checks := int64(passwordChecks(srv) - before)
	t.Logf("%d bad binds sent, %d password checks, bound %d", sent.Load(), checks, bound64)
	if sent.Load() < 50 {
		t.Fatalf("only %d bad binds got through in %v: too few to tell", sent.Load(), flood)
	}
	if checks > bound64 || 4*checks > sent.Load() {
		t.Errorf("%d password checks for %d bad binds; want at most %d, and most bad binds to cost none", checks, sent.Load(), bound64)
	}
}

// TestRefusedBindAlwaysAnswered: with the failure delay's cap at the bind timeout, the failures past
// the cap still get their bind_resp before the connection is closed for not binding.
func TestRefusedBindAlwaysAnswered(t *testing.T) {
	const bindTimeout = 500 * time.Millisecond
	_, addr := startServer(t, ServerConfig{FailureDelay: 40 * time.Millisecond, FailureDelayMax: bindTimeout, Session: session.Config{BindTimeout: bindTimeout}},
		&acceptSink{}, testAccount(t, "alice", "secret"))
	for i := range 7 {
		p := smpptest.Dial(t, addr)
		if i == 6 {
			// Late in the connection's life: the answer must still beat its bind timeout.
			time.Sleep(bindTimeout / 2)
		}
		p.Request(&pdu.BindTransceiver{SystemID: "alice", Password: "guess", InterfaceVersion: 0x34})
		p.Conn.SetReadDeadline(time.Now().Add(sessiontest.Wait))
		h, _, err := p.Reader.Read()
		if err != nil {
			t.Fatalf("failure %d: no bind_resp: %v", i+1, err)
		}
		if h.ID != pdu.BindTransceiverRespID || h.Status == pdu.ESME_ROK {
			t.Fatalf("failure %d: got %v %v", i+1, h.ID, h.Status)
		}
		p.Conn.Close()
	}
}

// TestUnknownSystemIDLooksLikeWrongPassword: the status, and the work done (one bcrypt comparison),
// are the same for a system_id that does not exist as for a wrong password.
func TestUnknownSystemIDLooksLikeWrongPassword(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, &acceptSink{}, testAccount(t, "alice", "secret"))
	var got []pdu.CommandStatus
	for _, id := range []string{"alice", "mallory"} {
		before := passwordChecks(srv)
		s := sessiontest.DialESME(t, addr, nil, session.Config{})
		_, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: id, Password: "guess"})
		var st pdu.CommandStatus
		if !errors.As(err, &st) {
			t.Fatalf("bind %s: %v", id, err)
		}
		got = append(got, st)
		if n := passwordChecks(srv) - before; n != 1 {
			t.Errorf("bind %s cost %d password checks, want 1", id, n)
		}
	}
	if got[0] != got[1] || got[0] != pdu.ESME_RINVPASWD {
		t.Errorf("wrong password: %v, unknown system_id: %v; want both ESME_RINVPASWD", got[0], got[1])
	}

	// The store-backed authenticator answers the same.
	st := newEmbedded(t)
	sa, err := accountToStore(testAccount(t, "alice", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.PutAccount(sessiontest.Ctx(t), sa); err != nil {
		t.Fatal(err)
	}
	auth, err := newStoreAuthenticator(st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"alice", "mallory"} {
		if _, status := auth.Authenticate(sessiontest.Ctx(t), BindRequest{SystemID: id, Password: "guess", BindType: session.BindTransceiver}); status != pdu.ESME_RINVPASWD {
			t.Errorf("store: %s/guess refused with %v, want ESME_RINVPASWD", id, status)
		}
	}
}

// TestRebindStormCostsOneCheck: many binds with the same correct credentials, at once and one after
// another, cost one bcrypt comparison; a new password hash invalidates the cached one.
func TestRebindStormCostsOneCheck(t *testing.T) {
	const storm = 40
	auth, err := NewMemoryAuthenticator(testAccount(t, "acme", "pw"))
	if err != nil {
		t.Fatal(err)
	}
	srv, addr := startServerAuth(t, ServerConfig{}, auth, &acceptSink{})

	var wg sync.WaitGroup
	var failed atomic.Int64
	start := make(chan struct{})
	for range storm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			<-start
			if _, err := c.Write(bindBytes(t, 1, "acme", "pw")); err != nil {
				failed.Add(1)
				return
			}
			c.SetReadDeadline(time.Now().Add(sessiontest.Wait))
			if h, _, err := pdu.NewReader(c, 0).Read(); err != nil || h.Status != pdu.ESME_ROK {
				failed.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	for range storm {
		s := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "acme", "pw")
		s.Close()
	}
	if failed.Load() != 0 {
		t.Fatalf("%d of %d binds failed", failed.Load(), storm)
	}
	if n := passwordChecks(srv); n != 1 {
		t.Fatalf("%d binds with the same credentials cost %d password checks, want 1", 2*storm, n)
	}

	// The password changes: the cached credentials no longer bind, the new ones cost one check.
	h, err := bcrypt.GenerateFromPassword([]byte("pw2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.put(Account{SystemID: "acme", PasswordHash: string(h)}); err != nil {
		t.Fatal(err)
	}
	s := sessiontest.DialESME(t, addr, nil, session.Config{})
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransmitter, session.BindParams{SystemID: "acme", Password: "pw"}); !errors.Is(err, pdu.ESME_RINVPASWD) {
		t.Fatalf("old password after the change: %v", err)
	}
	for range 3 {
		s := sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransmitter, "acme", "pw2")
		s.Close()
	}
	if n := passwordChecks(srv); n != 3 {
		t.Fatalf("%d password checks after the change, want 3 (1 + old password + new password)", n)
	}
}

// gatedListener hands out connections only when the test says so, so that a peer can send its bind
// and hang up before the server starts on the connection.
type gatedListener struct {
	net.Listener
	gate     chan struct{}
	accepted chan struct{}
	closed   chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	select {
	case <-l.gate:
	case <-l.closed:
	}
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- struct{}{}
	}
	return c, err
}

// TestBindFromGonePeerCostsNoCheck: a bind whose peer hung up before it was looked at costs no
// bcrypt comparison; the same bind from a peer still there costs one.
func TestBindFromGonePeerCostsNoCheck(t *testing.T) {
	auth, err := NewMemoryAuthenticator(testAccount(t, "alice", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{FailureDelay: -1}, auth, &acceptSink{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &gatedListener{Listener: inner, gate: make(chan struct{}, 1), accepted: make(chan struct{}, 1), closed: make(chan struct{})}
	go srv.Serve(l)
	t.Cleanup(func() {
		close(l.closed)
		srv.Shutdown(context.Background())
	})
	addr := inner.Addr().String()

	for _, gone := range []bool{true, false} {
		before := passwordChecks(srv)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(bindBytes(t, 1, "alice", "guess")); err != nil {
			t.Fatal(err)
		}
		if gone {
			c.Close()
		}
		l.gate <- struct{}{}
		<-l.accepted
		if !gone {
			c.SetReadDeadline(time.Now().Add(sessiontest.Wait))
			if h, _, err := pdu.NewReader(c, 0).Read(); err != nil || h.Status != pdu.ESME_RINVPASWD {
				t.Fatalf("live peer: %v %v", h.Status, err)
			}
			c.Close()
		}
		sessiontest.Eventually(t, "the session to end", func() bool { return len(srv.Sessions()) == 0 })
		want := uint64(1)
		if gone {
			want = 0
		}
		if n := passwordChecks(srv) - before; n != want {
			t.Errorf("peer gone %v: %d password checks, want %d", gone, n, want)
		}
	}
}

// TestBindGateRefusesBeyondMaxChecks: with every check slot taken, a bind needing one is refused at
// once with ESME_RSYSERR; cached credentials still bind.
func TestBindGateRefusesBeyondMaxChecks(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{MaxPasswordChecks: 1}, &acceptSink{}, testAccount(t, "alice", "secret"), testAccount(t, "bob", "pw"))
	sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransceiver, "alice", "secret").Close()
	srv.bindGate.slots <- struct{}{} // a check that never ends
	defer func() { <-srv.bindGate.slots }()
	s := sessiontest.DialESME(t, addr, nil, session.Config{})
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: "bob", Password: "pw"}); !errors.Is(err, pdu.ESME_RSYSERR) {
		t.Fatalf("bind with every check slot taken: %v, want ESME_RSYSERR", err)
	}
	if _, err := s.Bind(sessiontest.Ctx(t), session.BindTransceiver, session.BindParams{SystemID: "alice", Password: "secret"}); err != nil {
		t.Fatalf("cached credentials with every check slot taken: %v", err)
	}
}

// TestSystemIDPenaltySkipsHashingButNotTheCache: once a system_id has failed, wrong guesses from
// another address are refused without a comparison, while its ESME's cached credentials still bind.
func TestSystemIDPenaltySkipsHashingButNotTheCache(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{FailureDelay: time.Second, FailureDelayMax: 2 * time.Second, Session: session.Config{BindTimeout: 5 * time.Second}},
		&acceptSink{}, testAccount(t, "alice", "secret"))
	sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransceiver, "alice", "secret").Close()
	now := time.Now()
	srv.bindGate.bySys.fail("alice", now) // an attacker elsewhere just failed as alice
	if _, hot := srv.bindGate.bySys.hot("alice", now); !hot {
		t.Fatal("alice not in her penalty window")
	}
	before := passwordChecks(srv)
	sessiontest.BindESME(t, addr, nil, session.Config{}, session.BindTransceiver, "alice", "secret").Close()
	c, err := dialFrom("127.0.0.2", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := smpptest.NewPeer(t, c)
	p.Request(&pdu.BindTransceiver{SystemID: "alice", Password: "guess", InterfaceVersion: 0x34})
	p.Expect(pdu.BindTransceiverRespID, pdu.ESME_RBINDFAIL)
	if n := passwordChecks(srv) - before; n != 0 {
		t.Errorf("%d password checks during alice's penalty window, want 0", n)
	}
}

func TestFailureTrackerIsBounded(t *testing.T) {
	ft := newFailureTracker[netip.Addr](time.Second, time.Minute, time.Hour)
	ft.limit = 100
	now := time.Now()
	for i := range 1000 {
		ft.fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), now)
	}
	if len(ft.m) > ft.limit {
		t.Fatalf("%d addresses remembered, limit %d", len(ft.m), ft.limit)
	}
	last := netip.AddrFrom4([4]byte{10, 0, 3, 231})
	if until, hot := ft.hot(last, now); !hot || !until.Equal(now.Add(time.Second)) {
		t.Fatalf("the latest address: hot %v until %v", hot, until)
	}
	if _, hot := ft.hot(last, now.Add(time.Second)); hot {
		t.Fatal("still hot once its window ended")
	}
}

// TestBindFromOutsideAllowListTellsNothing: from an address outside the account's allowed_ips, the
// right password and a wrong one get the same answer (ESME_RINVPASWD, as an unknown system_id) and
// cost no bcrypt comparison, with the accounts in memory and in the store alike. The same account
// binds from an allowed address. (Before, the address was checked after the password: the right one
// answered ESME_RBINDFAIL, a wrong one ESME_RINVPASWD, each after a comparison.)
func TestBindFromOutsideAllowListTellsNothing(t *testing.T) {
	far := testAccount(t, "far", "pw")
	far.AllowedIPs = []string{"10.0.0.0/8"}
	near := testAccount(t, "near", "pw")
	near.AllowedIPs = []string{"127.0.0.0/8"}
	memSrv, memAddr := startServer(t, ServerConfig{}, &acceptSink{}, far, near)
	g, storeAddr, _ := startGateway(t, Config{Accounts: []Account{far, near}}, newEmbedded(t))
	for name, c := range map[string]struct {
		srv  *Server
		addr string
	}{"memory": {memSrv, memAddr}, "store": {g.Server(), storeAddr}} {
		t.Run(name, func(t *testing.T) {
			before := passwordChecks(c.srv)
			for _, pw := range []string{"pw", "guess"} {
				if _, err := bindESMEErr(t, c.addr, "far", pw); !errors.Is(err, pdu.ESME_RINVPASWD) {
					t.Errorf("password %q from outside the allow-list: %v, want ESME_RINVPASWD", pw, err)
				}
			}
			if n := passwordChecks(c.srv) - before; n != 0 {
				t.Errorf("%d password checks for binds from outside the allow-list, want 0", n)
			}
			if _, err := bindESMEErr(t, c.addr, "near", "pw"); err != nil {
				t.Errorf("bind from an allowed address: %v", err)
			}
			if n := passwordChecks(c.srv) - before; n != 1 {
				t.Errorf("%d password checks after the allowed bind, want 1", n)
			}
		})
	}
}
