package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/embedded"
	sredis "github.com/smppgw/smppgw/store/redis"
)

// testStoreOptions make the stores react at test speed: claims look again every 10ms.
var testStoreOptions = store.Options{PollInterval: 10 * time.Millisecond, VisibilityTimeout: 5 * time.Second}

// openEmbedded opens (or reopens) the embedded store at path; the test closes it at its end unless
// it was closed before.
func openEmbedded(t testing.TB, path string) store.Store {
	t.Helper()
	st, err := embedded.Open(path, testStoreOptions)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEmbedded(t testing.TB) store.Store {
	return openEmbedded(t, filepath.Join(t.TempDir(), "smppgw.db"))
}

// redisServer starts a redis-server of the test's own (internal/redistest) and returns its address.
func redisServer(t testing.TB) string {
	t.Helper()
	return redistest.Start(t, redistest.Options{}).Addr()
}

func openRedis(t testing.TB, addr string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	st, err := sredis.Open(ctx, sredis.Config{Addrs: []string{addr}, Options: testStoreOptions})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startGateway runs a Gateway on st listening on a fresh 127.0.0.1 port; it is shut down at the end
// of the test (or earlier by stop).
func startGateway(t testing.TB, cfg Config, st store.Store) (g *Gateway, addr string, stop func()) {
	t.Helper()
	cfg.Server.Listeners = []ListenerConfig{{Address: "127.0.0.1:0"}}
	if cfg.Server.FailureDelay == 0 {
		cfg.Server.FailureDelay = -1
	}
	for i := range cfg.Upstreams {
		if cfg.Upstreams[i].ReconnectMin == 0 {
			cfg.Upstreams[i].ReconnectMin, cfg.Upstreams[i].ReconnectMax = 20*time.Millisecond, 100*time.Millisecond
		}
	}
	if cfg.Routing.DeliveryRetry == 0 {
		cfg.Routing.DeliveryRetry = 50 * time.Millisecond
	}
	g, err := New(cfg, st, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), testWait)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Errorf("gateway shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	if n := len(g.Server().Addrs()); n != 1 {
		t.Fatalf("%d listeners once Start returned, want 1", n)
	}
	return g, g.Server().Addrs()[0].String(), stop
}

// simSMSC is the upstream SMSC of these tests: our own Server with a handler that answers submit_sm
// with ids of its own (SIM0001, ...) and, when the message asks for one, sends a DELIVRD receipt.
type simSMSC struct {
	receiptFirst bool  // send the receipt (and wait for its answer) before submit_sm_resp
	holdFirst    int32 // leave the first holdFirst submissions unanswered, then close the bind

	next    atomic.Uint64
	held    atomic.Int32
	mu      sync.Mutex
	submits []*pdu.SubmitSM
	ids     []string
	resps   []pdu.CommandStatus // the gateway's answers to our deliver_sm
	srv     *Server
	addr    string
}

func (s *simSMSC) HandleMessage(m Inbound) {
	sm, ok := m.Request.Body.(*pdu.SubmitSM)
	if !ok {
		_ = m.Respond(pdu.ESME_RINVCMDID, nil)
		return
	}
	c := *sm
	c.ShortMessage = bytes.Clone(sm.ShortMessage)
	c.Options = pdu.Options(bytes.Clone(sm.Options))
	s.mu.Lock()
	s.submits = append(s.submits, &c)
	s.mu.Unlock()
	if n := s.held.Add(1); n <= s.holdFirst {
		if n == s.holdFirst {
			// Every held request is in flight: drop the connection under them.
			go func() { time.Sleep(20 * time.Millisecond); m.Session.Close() }()
		}
		return
	}
	id := fmt.Sprintf("SIM%04d", s.next.Add(1))
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	answer := func() { _ = m.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: id}) }
	if c.RegisteredDelivery&pdu.RegisteredDeliveryReceiptMask == pdu.RegisteredDeliveryReceiptNone {
		answer()
		return
	}
	rec := &pdu.DeliverSM{SourceAddrTON: c.DestAddrTON, SourceAddrNPI: c.DestAddrNPI, SourceAddr: c.DestinationAddr,
		DestAddrTON: c.SourceAddrTON, DestAddrNPI: c.SourceAddrNPI, DestinationAddr: c.SourceAddr}
	now := time.Now()
	info := dlr.Info{MessageID: id, State: pdu.DELIVERED, Receipt: dlr.Receipt{
		ID: id, Sub: 1, Dlvrd: 1, SubmitDate: now, DoneDate: now, Stat: "DELIVRD", Err: "000", Text: "sim",
	}}
	if err := info.ToDeliverSM(rec); err != nil {
		panic(err) // ids are short ASCII: a failure here is a bug in this test
	}
	if !s.receiptFirst {
		answer()
	}
	// Send waits for the answer, so not on the session's reader goroutine.
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		resp, err := m.Session.Send(ctx, rec)
		s.mu.Lock()
		s.resps = append(s.resps, pdu.StatusOf(err)|resp.Status)
		s.mu.Unlock()
		if s.receiptFirst {
			answer()
		}
	}()
}

func (s *simSMSC) submitted() []*pdu.SubmitSM {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pdu.SubmitSM(nil), s.submits...)
}

// startSim serves the simulated SMSC on addr ("127.0.0.1:0" for a fresh port) with the account
// gwup/uppw.
func startSim(t testing.TB, sim *simSMSC, addr string) string {
	t.Helper()
	auth, err := NewMemoryAuthenticator(testAccount(t, "gwup", "uppw"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{SystemID: "sim", FailureDelay: -1}, auth, sim, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	deadline := time.Now().Add(testWait)
	for {
		// A port given back by a stopped gateway test may still be in TIME_WAIT for a moment.
		if l, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		srv.Shutdown(ctx)
	})
	sim.srv, sim.addr = srv, l.Addr().String()
	return sim.addr
}

// freeAddr returns a loopback address nothing listens on (for an upstream that is down).
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func simUpstream(name, addr string) ClientConfig {
	return ClientConfig{Name: name, Address: addr, SystemID: "gwup", Password: "uppw"}
}
