package gateway

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	fsmpp "github.com/fiorix/go-smpp/smpp"
	fpdu "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutext"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// TestGatewayWholePath: a third-party ESME (fiorix/go-smpp) submits to smppgw, which writes the
// message to the store and answers with its own id; the upstream (simulated) accepts it and sends a
// receipt, which comes back to the ESME as a deliver_sm carrying our id; the store shows the message
// DELIVERED with the receipt. An MO reaches the account; an unroutable destination is refused.
func TestGatewayWholePath(t *testing.T) {
	forEachStore(t, func(t *testing.T, open func() store.Store) {
		st := open()
		sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
		g, addr, _ := startGateway(t, Config{
			Accounts:  []Account{testAccount(t, "acme", "secret")},
			Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
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
		if info := awaitReceipts(t, rx, 1)[0]; info.MessageID != ourID || info.State != pdu.DELIVERED {
			t.Errorf("receipt %+v, want %s DELIVERED", info, ourID)
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

// TestGatewayStoreAccountsAndRoutes: an account created in the store after start can bind; a route
// added in the store takes effect after ReloadRoutes.
func TestGatewayStoreAccountsAndRoutes(t *testing.T) {
	st := newEmbedded(t)
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{})
	g, addr, _ := startGateway(t, Config{
		Upstreams: []ClientConfig{simUpstream("sim", sim.Addr())},
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
