package gateway

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	fsmpp "github.com/fiorix/go-smpp/smpp"
	fpdu "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

// knownUpstreams is an upstreamStates over a fixed set: name -> bound.
type knownUpstreams map[string]bool

func (k knownUpstreams) upstreamState(name string) (bool, bool) {
	up, ok := k[name]
	return ok, up
}

// storePath is the submit side of the message path on a store, as gateway.New builds it, with the
// MO routes.
type storePath struct {
	*routeTable
	*submitter
	mo *fromUpstream
}

func newStorePath(cfg RouterConfig, st store.Store, ups knownUpstreams) *storePath {
	cfg = cfg.withDefaults()
	rt := newRouteTable(cfg.Routes, st, ups, zerolog.Nop())
	work := newPool(16)
	return &storePath{
		routeTable: rt,
		submitter:  newSubmitter(st, rt, splitModes[cfg.LongMessages], newCounters(), work, zerolog.Nop()),
		mo:         newFromUpstream(cfg.MORoutes, st, nil, nil, newHub(), newCounters(), work, zerolog.Nop()),
	}
}

func newStoreRouter(t *testing.T, cfg RouterConfig, st store.Store, ups knownUpstreams) *storePath {
	t.Helper()
	r := newStorePath(cfg, st, ups)
	if err := r.seed(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.load(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	return r
}

// deliverNow hands req to h and waits for its answer.
func deliverNow(h DeliverHandler, upstream string, req session.Request) pdu.CommandStatus {
	ch := make(chan pdu.CommandStatus, 1)
	h.HandleDeliver(upstream, req, func(st pdu.CommandStatus) { ch <- st })
	return <-ch
}

func TestRouterRoutes(t *testing.T) {
	st := newEmbedded(t)
	ups := knownUpstreams{"a": true, "b": false, "c": true}
	r := newStoreRouter(t, RouterConfig{
		Routes: []Route{
			{Prefix: "", Upstream: "c"},
			{Prefix: "44", Upstream: "a"},
			{Prefix: "44", Upstream: "b", Accounts: []string{"vip"}},
			{Prefix: "4477", Upstream: "b"},
			{Prefix: "33", Upstream: "a", Accounts: []string{"fr"}},
		},
		MORoutes: []MORoute{{Prefix: "1", Account: "short"}, {Prefix: "123", Account: "acme"}},
	}, st, ups)
	for _, tc := range []struct {
		account, dest string
		want          []string
	}{
		{"any", "447700900123", []string{"b", "a", "c"}}, // longest prefix first, then the shorter ones as failover
		{"any", "4420", []string{"a", "c"}},
		{"vip", "4420", []string{"b", "a", "c"}}, // the account's own route beats the open one of equal prefix
		{"any", "33123", []string{"c"}},          // the French route is not this account's
		{"fr", "33123", []string{"a", "c"}},
		{"any", "1", []string{"c"}},
	} {
		if got := r.Routes(tc.account, tc.dest); !slices.Equal(got, tc.want) {
			t.Errorf("Routes(%q, %q) = %v, want %v", tc.account, tc.dest, got, tc.want)
		}
	}
	// b is first for 4477 but not bound: a new message goes to the first bound one.
	if up, ok := r.pickUpstream("any", "447700900123"); !ok || up != "a" {
		t.Errorf("pickUpstream = %q, %v; want the bound a", up, ok)
	}
	for dest, want := range map[string]string{"12345": "acme", "1999": "short", "999": ""} {
		got, ok := r.mo.MOAccount(dest)
		if got != want || ok != (want != "") {
			t.Errorf("MOAccount(%q) = %q, %v; want %q", dest, got, ok, want)
		}
	}

	// The configured routes are in the store, and a second start with fewer routes removes the stale
	// ones but keeps routes the admin made.
	if err := st.PutRoute(sessiontest.Ctx(t), &store.Route{Name: "admin-1", Prefix: "49", Upstreams: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	r2 := newStoreRouter(t, RouterConfig{Routes: []Route{{Prefix: "44", Upstream: "a"}}}, st, ups)
	all, err := st.ListRoutes(sessiontest.Ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, rt := range all {
		names = append(names, rt.Name)
	}
	if !slices.Equal(names, []string{"admin-1", "config-0"}) {
		t.Errorf("store routes after the second seed = %v", names)
	}
	if got := r2.Routes("any", "33123"); len(got) != 0 {
		t.Errorf("Routes with no matching prefix = %v, want none", got)
	}
	if got := r2.Routes("any", "4930"); !slices.Equal(got, []string{"a"}) {
		t.Errorf("admin route: %v", got)
	}
	// An upstream this gateway does not have is not routed to.
	if err := st.PutRoute(sessiontest.Ctx(t), &store.Route{Name: "ghost", Prefix: "7", Upstreams: []string{"nowhere", "c"}}); err != nil {
		t.Fatal(err)
	}
	if err := r2.load(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := r2.Routes("any", "7"); !slices.Equal(got, []string{"c"}) {
		t.Errorf("route with an unknown upstream: %v, want [c]", got)
	}
}

func TestRouterConfigValidate(t *testing.T) {
	ups := []string{"a"}
	for _, tc := range []struct {
		cfg  RouterConfig
		want string
	}{
		{RouterConfig{Routes: []Route{{Prefix: "1"}}}, "routes[0].upstream is required"},
		{RouterConfig{Routes: []Route{{Upstream: "zz"}}}, `routes[0].upstream "zz" names no configured upstream`},
		{RouterConfig{Routes: []Route{{Upstream: "a", Accounts: []string{""}}}}, "routes[0].accounts[0] is empty"},
		{RouterConfig{MORoutes: []MORoute{{Prefix: "1"}}}, "mo_routes[0].account is required"},
		{RouterConfig{DeliveryRetry: -1}, "delivery_retry"},
		{RouterConfig{MaxDeliveryAttempts: -1}, "max_delivery_attempts"},
		{RouterConfig{LongMessages: "smoke"}, "long_messages"},
	} {
		err := tc.cfg.Validate(ups)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if err := (RouterConfig{Routes: []Route{{Upstream: "a"}}, MORoutes: []MORoute{{Account: "x"}}, LongMessages: "sar"}).Validate(ups); err != nil {
		t.Errorf("valid config: %v", err)
	}
	dup := Config{Upstreams: []ClientConfig{simUpstream("a", "127.0.0.1:1"), simUpstream("a", "127.0.0.1:2")}}
	if _, err := New(dup, newEmbedded(t), zerolog.Nop()); err == nil {
		t.Error("New accepted two upstreams of the same name")
	}
}

// fiorixESME binds a fiorix/go-smpp transceiver to addr and returns it with the deliver_sm it receives.
func fiorixESME(t *testing.T, addr, user, pass string) (*fsmpp.Transceiver, <-chan fpdu.Body) {
	t.Helper()
	got := make(chan fpdu.Body, 100)
	tc := &fsmpp.Transceiver{
		Addr: addr, User: user, Passwd: pass, RespTimeout: sessiontest.Wait,
		Handler: func(p fpdu.Body) {
			if p.Header().ID == fpdu.DeliverSMID {
				got <- p
			}
		},
	}
	st := tc.Bind()
	select {
	case s := <-st:
		if s.Status() != fsmpp.Connected {
			t.Fatalf("fiorix bind: %v %v", s.Status(), s.Error())
		}
	case <-time.After(sessiontest.Wait):
		t.Fatal("fiorix bind timed out")
	}
	t.Cleanup(func() { tc.Close() })
	return tc, got
}

func nextDeliver(t *testing.T, ch <-chan fpdu.Body) fpdu.Body {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(sessiontest.Wait):
		t.Fatal("no deliver_sm reached the ESME")
		return nil
	}
}

// forEachStore runs f with the embedded store and with a Redis store (a redis-server of its own).
func forEachStore(t *testing.T, f func(t *testing.T, open func() store.Store)) {
	t.Run("embedded", func(t *testing.T) {
		path := t.TempDir() + "/smppgw.db"
		f(t, func() store.Store { return openEmbedded(t, path) })
	})
	t.Run("redis", func(t *testing.T) {
		addr := redisServer(t)
		f(t, func() store.Store { return openRedis(t, addr) })
	})
}

// TestGatewayWholePath: a third-party ESME (fiorix/go-smpp) submits to smppgw, which writes the
// message to the store and answers with its own id; the upstream (simulated) accepts it and sends a
// receipt, which comes back to the ESME as a deliver_sm carrying our id; the store shows the message
// DELIVERED with the receipt. An MO reaches the account; an unroutable destination is refused.
func TestGatewayWholePath(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := open()
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
		simAddr := sim.Addr()
		g, addr, _ := startGateway(t, Config{
			Accounts:  []Account{testAccount(t, "acme", "secret")},
			Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
			Routing: RouterConfig{
				Routes:   []Route{{Prefix: "44", Upstream: "sim"}},
				MORoutes: []MORoute{{Prefix: "12345", Account: "acme"}},
			},
		}, st)
		sessiontest.Eventually(t, "the upstream bind", func() bool { return g.Upstreams()[0].Status.State == ClientBound })
		events, cancel := g.Subscribe("acme")
		defer cancel()

		esme, delivered := fiorixESME(t, addr, "acme", "secret")
		sm, err := esme.Submit(&fsmpp.ShortMessage{
			Src: "12345", Dst: "447700900123", Text: pdutext.Raw("hello"), Register: pdufield.FinalDeliveryReceipt,
		})
		if err != nil {
			t.Fatalf("submit: %v", err)
		}
		ourID := sm.RespID()
		if len(ourID) != 16 || strings.HasPrefix(ourID, "SIM") {
			t.Fatalf("message id %q, want the gateway's 16 hex digits", ourID)
		}
		p := nextDeliver(t, delivered)
		text := p.Fields()[pdufield.ShortMessage].String()
		if !strings.Contains(text, "id:"+ourID) || !strings.Contains(text, "stat:DELIVRD") {
			t.Errorf("receipt text %q does not carry our id %s and DELIVRD", text, ourID)
		}
		if v := p.TLVFields()[pdutlv.TagReceiptedMessageID]; v == nil || strings.TrimRight(v.String(), "\x00") != ourID {
			t.Errorf("receipted_message_id = %v, want %s", v, ourID)
		}
		if src, dst := p.Fields()[pdufield.SourceAddr].String(), p.Fields()[pdufield.DestinationAddr].String(); src != "447700900123" || dst != "12345" {
			t.Errorf("receipt from %s to %s, want from the destination to the source", src, dst)
		}
		m, err := st.GetMessage(sessiontest.Ctx(t), ourID)
		if err != nil {
			t.Fatal(err)
		}
		if m.Status != pdu.DELIVERED || m.Parts[0].UpstreamID != "SIM0001" || m.Parts[0].Upstream != "sim" || m.Account != "acme" {
			t.Errorf("stored message: status %v, part %+v, account %q", m.Status, m.Parts[0], m.Account)
		}
		rcs, err := st.ListReceipts(sessiontest.Ctx(t), ourID)
		if err != nil || len(rcs) != 1 || rcs[0].State != pdu.DELIVERED || rcs[0].UpstreamID != "SIM0001" {
			t.Errorf("receipts = %+v, %v", rcs, err)
		}
		select {
		case e := <-events:
			if e.Kind != EventReceipt || e.MessageID != ourID || e.Status != pdu.DELIVERED {
				t.Errorf("event %+v", e)
			}
		case <-time.After(sessiontest.Wait):
			t.Error("no receipt event for the subscriber")
		}
		if subs := sim.Submits(); len(subs) != 1 || string(subs[0].ShortMessage) != "hello" || subs[0].RegisteredDelivery != 1 {
			t.Errorf("upstream saw %+v", subs)
		}

		_, err = esme.Submit(&fsmpp.ShortMessage{Src: "12345", Dst: "33612345678", Text: pdutext.Raw("x")})
		var fst fpdu.Status
		if !errors.As(err, &fst) || uint32(fst) != uint32(pdu.ESME_RINVDSTADR) {
			t.Errorf("unroutable submit: %v, want ESME_RINVDSTADR", err)
		}

		// An MO from the upstream reaches the account it routes to.
		ctx := sessiontest.Ctx(t)
		status, err := sim.SendMO(ctx, &pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345", ShortMessage: []byte("STOP")})
		if err != nil || status != pdu.ESME_ROK {
			t.Fatalf("MO answered %v %v", status, err)
		}
		p = nextDeliver(t, delivered)
		if got := p.Fields()[pdufield.ShortMessage].String(); got != "STOP" {
			t.Errorf("MO text %q, want STOP", got)
		}
		stats, err := g.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if stats.Accepted != 1 || stats.Rejected != 1 || stats.ReceiptsIn != 1 || stats.MOIn != 1 || stats.MessagesByStatus[pdu.DELIVERED] != 1 {
			t.Errorf("stats = %+v", stats)
		}
	})
}

// TestGatewayDurableRestart: a message accepted while the upstream is down survives a restart of the
// gateway on the same store; once the upstream is up it is submitted exactly once, and its receipt
// reaches the ESME when it binds again.
func TestGatewayDurableRestart(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		upAddr := freeAddr(t)
		cfg := Config{
			Accounts:  []Account{testAccount(t, "acme", "secret")},
			Upstreams: []ClientConfig{simUpstream("sim", upAddr)},
			Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
			Instance:  "restart-test",
		}
		st1 := open()
		_, addr1, stop1 := startGateway(t, cfg, st1)
		e := sessiontest.BindESME(t, addr1, sessiontest.NewRecorder(), session.Config{}, session.BindTransceiver, "acme", "secret")
		resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: "447700900123", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("durable")})
		if err != nil {
			t.Fatalf("submit while the upstream is down: %v", err)
		}
		ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
		stop1()
		if err := st1.Close(); err != nil {
			t.Fatal(err)
		}

		st2 := open()
		g2, addr2, _ := startGateway(t, cfg, st2)
		sim := startSim(t, upAddr, smscsim.Options{})
		sessiontest.Eventually(t, "the message to be submitted upstream", func() bool { return len(sim.Submits()) == 1 })
		rx := sessiontest.NewRecorder()
		sessiontest.BindESME(t, addr2, rx, session.Config{}, session.BindReceiver, "acme", "secret")
		sessiontest.Eventually(t, "the receipt to reach the ESME", func() bool {
			return len(rx.Requests()) == 1
		})
		info, err := dlr.FromDeliverSM(rx.Requests()[0].Body.(*pdu.DeliverSM))
		if err != nil || info.MessageID != ourID || info.State != pdu.DELIVERED {
			t.Errorf("receipt %+v %v, want %s DELIVERED", info, err, ourID)
		}
		// Exactly once: nothing else comes, the queue is empty.
		time.Sleep(200 * time.Millisecond)
		if n := len(sim.Submits()); n != 1 {
			t.Errorf("the upstream saw %d submissions, want 1", n)
		}
		if n, err := st2.QueueLen(sessiontest.Ctx(t), store.Queue{Kind: store.SubmitQueue, Name: "sim"}); err != nil || n != 0 {
			t.Errorf("submit queue length %d, %v; want 0", n, err)
		}
		if g2.Upstreams()[0].QueueDepth != 0 {
			t.Errorf("upstream info %+v", g2.Upstreams()[0])
		}
	})
}

// lostLog is a store that keeps the lost PDUs it was given, for tests to read.
type lostLog struct {
	store.Store
	mu   sync.Mutex
	lost []store.LostPDU
}

func (l *lostLog) RequeueLost(ctx context.Context, lost []store.LostPDU) error {
	err := l.Store.RequeueLost(ctx, lost)
	if err == nil {
		l.mu.Lock()
		l.lost = append(l.lost, lost...)
		l.mu.Unlock()
	}
	return err
}

func (l *lostLog) recorded() []store.LostPDU {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lost)
}

// TestGatewayResubmitsLostPDUs: the upstream drops the bind with submissions in flight; they are
// recorded as lost PDUs and submitted again on the next bind.
func TestGatewayResubmitsLostPDUs(t *testing.T) {
	const n = 3
	st := &lostLog{Store: newEmbedded(t)}
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	sim.Inject(smscsim.Fault{Hold: true, Close: true, Count: n}) // the link drops under the first n
	simAddr := sim.Addr()
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	ids := map[string]bool{}
	for i := range n {
		resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: fmt.Sprint("4477009000", i), ShortMessage: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		ids[resp.Body.(*pdu.SubmitSMResp).MessageID] = true
	}
	sessiontest.Eventually(t, "the lost submissions to be sent again", func() bool { return len(sim.Submits()) == 2*n })
	lost := st.recorded()
	if len(lost) != n {
		t.Fatalf("lost PDUs recorded = %d entries; want %d", len(lost), n)
	}
	for _, l := range lost {
		if l.CommandID != uint32(pdu.SubmitSMID) || l.SequenceNumber == 0 || l.Session == "" {
			t.Errorf("lost PDU %+v", l)
		}
	}
	for id := range ids {
		sessiontest.Eventually(t, "the message to be enroute", func() bool {
			m, err := st.GetMessage(sessiontest.Ctx(t), id)
			return err == nil && m.Status == pdu.ENROUTE && strings.HasPrefix(m.Parts[0].UpstreamID, "SIM")
		})
	}
	time.Sleep(100 * time.Millisecond)
	if got := len(sim.Submits()); got != 2*n {
		t.Errorf("the upstream saw %d submissions, want %d (each lost one once more)", got, 2*n)
	}
}

// TestGatewayReceiptBeforeResp: an upstream that sends the receipt before its submit_sm_resp; the
// receipt is parked, picked up when the id map is written, and reaches the ESME.
func TestGatewayReceiptBeforeResp(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{ReceiptFirst: true})
	simAddr := sim.Addr()
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("early")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	sessiontest.Eventually(t, "the early receipt to reach the ESME", func() bool {
		return len(rx.Requests()) == 1
	})
	info, err := dlr.FromDeliverSM(rx.Requests()[0].Body.(*pdu.DeliverSM))
	if err != nil || info.MessageID != ourID || info.State != pdu.DELIVERED {
		t.Errorf("receipt %+v %v, want %s DELIVERED", info, err, ourID)
	}
	m, err := st.GetMessage(sessiontest.Ctx(t), ourID)
	if err != nil || m.Status != pdu.DELIVERED {
		t.Errorf("stored message %+v %v, want DELIVERED", m, err)
	}
}

// TestGatewayStoreAccountsAndRoutes: an account created in the store after start can bind; a route
// added in the store takes effect after ReloadRoutes.
func TestGatewayStoreAccountsAndRoutes(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simAddr := sim.Addr()
	g, addr, _ := startGateway(t, Config{
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Prefix: "44", Upstream: "sim"}}},
	}, st)
	ctx := sessiontest.Ctx(t)
	if _, err := bindESMEErr(t, addr, "newbie", "pw1"); !errors.Is(err, pdu.ESME_RINVPASWD) {
		t.Fatalf("bind before the account exists: %v, want ESME_RINVPASWD (as a wrong password)", err)
	}
	// A MinCost hash: at bcrypt's default cost, each bind check takes about a second under -race on
	// a loaded 2-core machine, which would eat this test's deadline.
	hash, err := bcrypt.GenerateFromPassword([]byte("pw1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := &store.Account{SystemID: "newbie", BindTypes: store.BindTransmitter, AllowIPs: []string{"127.0.0.0/8"}, PasswordHash: hash}
	if err := st.CreateAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := bindESMEErr(t, addr, "newbie", "wrong"); !errors.Is(err, pdu.ESME_RINVPASWD) {
		t.Errorf("wrong password: %v", err)
	}
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "newbie", "pw1")
	if _, err := bindESMEWith(t, addr, session.BindReceiver, "newbie", "pw1"); !errors.Is(err, pdu.ESME_RBINDFAIL) {
		t.Errorf("receiver bind of a transmitter-only account: %v, want ESME_RBINDFAIL", err)
	}

	ctx = sessiontest.Ctx(t) // the binds above had their own deadlines
	sm := &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "33612345678", ShortMessage: []byte("x")}
	if _, err := e.Send(ctx, sm); !errors.Is(err, pdu.ESME_RINVDSTADR) {
		t.Fatalf("submit before the route: %v, want ESME_RINVDSTADR", err)
	}
	if _, err := g.TestRoute(ctx, "newbie", "33612345678"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("TestRoute before the route: %v", err)
	}
	if err := st.CreateRoute(ctx, &store.Route{Name: "france", Account: "newbie", Prefix: "33", Upstreams: []string{"sim"}}); err != nil {
		t.Fatal(err)
	}
	if err := g.ReloadRoutes(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := g.TestRoute(ctx, "newbie", "33612345678"); err != nil || !slices.Equal(got, []string{"sim"}) {
		t.Errorf("TestRoute = %v, %v", got, err)
	}
	if _, err := g.TestRoute(ctx, "someone-else", "33612345678"); !errors.Is(err, ErrNoRoute) {
		t.Errorf("the account's route served another account: %v", err)
	}
	if _, err := e.Send(ctx, sm); err != nil {
		t.Fatalf("submit after the route: %v", err)
	}
	sessiontest.Eventually(t, "the message to reach the upstream", func() bool { return len(sim.Submits()) == 1 })
}

func bindESMEWith(t *testing.T, addr string, bt session.BindType, id, pw string) (*session.Session, error) {
	t.Helper()
	s := sessiontest.DialESME(t, addr, sessiontest.NewRecorder(), session.Config{})
	_, err := s.Bind(sessiontest.Ctx(t), bt, session.BindParams{SystemID: id, Password: pw})
	return s, err
}

func bindESMEErr(t *testing.T, addr, id, pw string) (*session.Session, error) {
	return bindESMEWith(t, addr, session.BindTransceiver, id, pw)
}

// TestGatewaySubmitLongText: an API submission of 400 characters becomes a multi-part message (UDH),
// each part submitted upstream and given its own upstream id.
func TestGatewaySubmitLongText(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simAddr := sim.Addr()
	g, _, _ := startGateway(t, Config{
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	ctx := sessiontest.Ctx(t)
	text := strings.Repeat("0123456789", 40)
	m, err := g.Submit(ctx, Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "+447700900123"}, Text: text, RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Parts) != 3 || m.Destination != (store.Address{TON: pdu.TONInternational, NPI: pdu.NPIISDN, Addr: "447700900123"}) || m.Source.TON != pdu.TONAlphanumeric {
		t.Fatalf("message: %d parts, destination %+v, source %+v; want 3 parts (153+153+94 GSM characters)", len(m.Parts), m.Destination, m.Source)
	}
	sessiontest.Eventually(t, "every part to be submitted and delivered", func() bool {
		got, err := st.GetMessage(ctx, m.ID)
		return err == nil && got.Status == pdu.DELIVERED
	})
	got, err := st.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var joined strings.Builder
	for i, p := range got.Parts {
		if p.UpstreamID == "" || seen[p.UpstreamID] || p.Status != pdu.DELIVERED || p.ESMClass&0x40 == 0 {
			t.Errorf("part %d: %+v; want its own upstream id, DELIVERED, UDHI", i, p)
		}
		seen[p.UpstreamID] = true
		joined.Write(p.ShortMessage[int(p.ShortMessage[0])+1:])
	}
	if joined.String() != text {
		t.Errorf("the parts carry %q, want the text", joined.String())
	}
	if subs := sim.Submits(); len(subs) != 3 {
		t.Errorf("the upstream saw %d submit_sm, want 3", len(subs))
	}

	for _, tc := range []struct {
		s     Submission
		field string
	}{
		{Submission{Destination: store.Address{Addr: "1"}, Text: "x"}, "account"},
		{Submission{Account: "api", Text: "x"}, "destination"},
		{Submission{Account: "api", Destination: store.Address{Addr: "1"}, Text: "x"}, "source"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}}, "text"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: "x", RegisteredDelivery: 3}, "registered_delivery"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: "x", Validity: time.Now().Add(-time.Hour)}, "validity_period"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: "x", Schedule: time.Now().Add(2 * time.Hour), Validity: time.Now().Add(time.Hour)}, "validity_period"},
		{Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "1"}, Text: strings.Repeat("x", 160*300)}, "text"},
	} {
		_, err := g.Submit(ctx, tc.s)
		var ve *ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("Submit(%+v) = %v, want a ValidationError on %s", tc.s.Account, err, tc.field)
		}
	}
}

// TestGatewayForwardsSchedule: a scheduled message, from the API and from a submit_sm with a relative
// schedule_delivery_time, is stored with its schedule and forwarded upstream with an absolute
// schedule_delivery_time, so the SMSC holds it; a schedule within the skew counts as now.
func TestGatewayForwardsSchedule(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simAddr := sim.Addr()
	g, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	ctx := sessiontest.Ctx(t)
	at := time.Now().Add(2 * time.Hour).Truncate(time.Second)
	m, err := g.Submit(ctx, Submission{Account: "api", Source: store.Address{Addr: "INFO"}, Destination: store.Address{Addr: "447700900123"}, Text: "later", Schedule: at})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetMessage(ctx, m.ID); err != nil || !got.Schedule.Equal(at) {
		t.Fatalf("stored schedule %v, %v; want %v", got.Schedule, err, at)
	}
	e := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	sent := time.Now()
	for _, sched := range []string{"000000010000000R", ""} {
		if _, err := e.Send(ctx, &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "447700900456", ScheduleDeliveryTime: sched, ShortMessage: []byte("at " + sched)}); err != nil {
			t.Fatalf("submit_sm with schedule %q: %v", sched, err)
		}
	}
	sessiontest.Eventually(t, "three submit_sm upstream", func() bool { return len(sim.Submits()) == 3 })
	for _, sm := range sim.Submits() {
		got, err := pdu.ParseTime(sm.ScheduleDeliveryTime, time.Now())
		switch string(sm.ShortMessage) {
		case "at 000000010000000R": // one hour from when it was accepted
			if err != nil || got.Before(sent.Add(time.Hour-time.Second)) || got.After(time.Now().Add(time.Hour+time.Second)) {
				t.Errorf("relative schedule forwarded as %q (%v, %v)", sm.ScheduleDeliveryTime, got, err)
			}
		case "at ":
			if sm.ScheduleDeliveryTime != "" {
				t.Errorf("unscheduled submit_sm forwarded with schedule %q", sm.ScheduleDeliveryTime)
			}
		default: // the API message
			if err != nil || !got.Equal(at) {
				t.Errorf("API schedule forwarded as %q (%v, %v), want %v", sm.ScheduleDeliveryTime, got, err, at)
			}
		}
	}
}

// TestGatewayRejectedPart: an upstream that refuses a message for good: the message is REJECTED in the
// store and the ESME that asked for a receipt gets a REJECTD one with our id.
func TestGatewayRejectedPart(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RINVDSTADR}) // every submission refused for good
	simAddr := sim.Addr()
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	rx := sessiontest.NewRecorder()
	e := sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	resp, err := e.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("no")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	sessiontest.Eventually(t, "the failure receipt", func() bool {
		return len(rx.Requests()) == 1
	})
	info, err := dlr.FromDeliverSM(rx.Requests()[0].Body.(*pdu.DeliverSM))
	if err != nil || info.MessageID != ourID || info.State != pdu.REJECTED {
		t.Errorf("receipt %+v %v, want %s REJECTED", info, err, ourID)
	}
	m, err := st.GetMessage(sessiontest.Ctx(t), ourID)
	if err != nil || m.Status != pdu.REJECTED || m.Parts[0].Error != uint32(pdu.ESME_RINVDSTADR) {
		t.Errorf("stored %+v %v", m, err)
	}
	// Queried over SMPP, the message reports its state.
	qr, err := e.Send(sessiontest.Ctx(t), &pdu.QuerySM{MessageID: ourID, SourceAddr: "1"})
	if err != nil || qr.Body.(*pdu.QuerySMResp).MessageState != pdu.REJECTED {
		t.Errorf("query_sm: %+v %v", qr.Body, err)
	}
	if _, err := e.Send(sessiontest.Ctx(t), &pdu.QuerySM{MessageID: "nope", SourceAddr: "1"}); !errors.Is(err, pdu.ESME_RQUERYFAIL) {
		t.Errorf("query_sm of an unknown id: %v", err)
	}
}

// TestGatewayHoldsUntilReceiverBinds: a receipt for an account bound as transmitter only waits in the
// store, and is delivered once the account binds as receiver.
func TestGatewayHoldsUntilReceiverBinds(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	simAddr := sim.Addr()
	_, addr, _ := startGateway(t, Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{simUpstream("sim", simAddr)},
		Routing:   RouterConfig{Routes: []Route{{Upstream: "sim"}}},
	}, st)
	tx := sessiontest.BindESME(t, addr, sessiontest.NewRecorder(), session.Config{}, session.BindTransmitter, "acme", "secret")
	resp, err := tx.Send(sessiontest.Ctx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: pdu.RegisteredDeliveryReceiptFinal, ShortMessage: []byte("m")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	q := store.Queue{Kind: store.DeliverQueue, Name: "acme"}
	sessiontest.Eventually(t, "the receipt to wait for the account", func() bool {
		n, err := st.QueueLen(sessiontest.Ctx(t), q)
		return err == nil && n == 1
	})
	rx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindReceiver, "acme", "secret")
	sessiontest.Eventually(t, "the held receipt to reach the receiver", func() bool {
		return len(rx.Requests()) == 1
	})
	info, err := dlr.FromDeliverSM(rx.Requests()[0].Body.(*pdu.DeliverSM))
	if err != nil || info.MessageID != ourID || info.State != pdu.DELIVERED {
		t.Errorf("receipt %+v %v, want %s DELIVERED", info, err, ourID)
	}
	sessiontest.Eventually(t, "the delivery queue to empty", func() bool {
		n, err := st.QueueLen(sessiontest.Ctx(t), q)
		return err == nil && n == 0
	})
}

// TestGatewayDeliversBurst: more MO than the session window, queued while the account is away, all
// reach its bind once it binds (bounded: 300 messages, sessiontest.Wait).
func TestGatewayDeliversBurst(t *testing.T) {
	const n = 300
	st := newEmbedded(t)
	g, addr, _ := startGateway(t, Config{
		Accounts: []Account{testAccount(t, "acme", "secret")},
		Routing:  RouterConfig{MORoutes: []MORoute{{Account: "acme"}}},
	}, st)
	for i := range n {
		if st := deliverNow(g.inbound, "up", session.Request{Body: &pdu.DeliverSM{DestinationAddr: "1", ShortMessage: []byte(fmt.Sprint(i))}}); st != pdu.ESME_ROK {
			t.Fatalf("MO %d: %v", i, st)
		}
	}
	if st := deliverNow(g.inbound, "up", session.Request{Body: &pdu.DataSM{}}); st != pdu.ESME_RINVCMDID {
		t.Errorf("data_sm from upstream: %v", st)
	}
	rx := sessiontest.NewRecorder()
	sessiontest.BindESME(t, addr, rx, session.Config{}, session.BindTransceiver, "acme", "secret")
	sessiontest.Eventually(t, "every queued MO to be delivered", func() bool {
		return len(rx.Requests()) == n
	})
	got := map[string]bool{}
	for _, req := range rx.Requests() {
		got[string(req.Body.(*pdu.DeliverSM).ShortMessage)] = true
	}
	if len(got) != n {
		t.Errorf("%d distinct MO delivered, want %d", len(got), n)
	}
	sessiontest.Eventually(t, "the delivery queue to empty", func() bool {
		n, err := st.QueueLen(sessiontest.Ctx(t), store.Queue{Kind: store.DeliverQueue, Name: "acme"})
		return err == nil && n == 0
	})
}
