package gateway

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	fsmpp "github.com/fiorix/go-smpp/smpp"
	fpdu "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

func testAccount(t testing.TB, systemID, password string) Account {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return Account{SystemID: systemID, PasswordHash: string(h)}
}

// startServer serves accounts on a fresh 127.0.0.1 port and shuts down at the end of the test.
func startServer(t testing.TB, cfg ServerConfig, sink MessageHandler, accounts ...Account) (*Server, string) {
	t.Helper()
	auth, err := NewMemoryAuthenticator(accounts...)
	if err != nil {
		t.Fatal(err)
	}
	return startServerAuth(t, cfg, auth, sink)
}

// startServerAuth is startServer with the test's own authenticator. Unless cfg sets FailureDelay, a
// failed bind is not slowed down.
func startServerAuth(t testing.TB, cfg ServerConfig, auth Authenticator, sink MessageHandler) (*Server, string) {
	t.Helper()
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
		ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, l.Addr().String()
}

func submit(to string) *pdu.SubmitSM {
	return &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: to, ShortMessage: []byte("hello")}
}

// passwordChecks is how many bcrypt comparisons srv has run for binds.
func passwordChecks(srv *Server) uint64 { return srv.bindGate.checks.Load() }

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
	mo       *fromUpstream
	moRoutes *moRouteTable
}

func newStorePath(cfg RouterConfig, st store.Store, ups knownUpstreams) *storePath {
	cfg = cfg.withDefaults()
	rt := newRouteTable(cfg.Routes, st, ups, zerolog.Nop())
	work := newPool(16)
	mo := newMORouteTable(cfg.MORoutes, st, zerolog.Nop())
	return &storePath{
		routeTable: rt,
		moRoutes:   mo,
		submitter:  newSubmitter(st, rt, splitModes[cfg.LongMessages], newCounters(), work, zerolog.Nop()),
		mo:         newFromUpstream(mo, st, nil, nil, newHub(), newCounters(), work, zerolog.Nop()),
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
	if err := r.moRoutes.seed(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := r.moRoutes.load(sessiontest.Ctx(t)); err != nil {
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

func bindESMEWith(t *testing.T, addr string, bt session.BindType, id, pw string) (*session.Session, error) {
	t.Helper()
	s := sessiontest.DialESME(t, addr, sessiontest.NewRecorder(), session.Config{})
	_, err := s.Bind(sessiontest.Ctx(t), bt, session.BindParams{SystemID: id, Password: pw})
	return s, err
}

func bindESMEErr(t *testing.T, addr, id, pw string) (*session.Session, error) {
	return bindESMEWith(t, addr, session.BindTransceiver, id, pw)
}

// acmeVia is the gateway most tests start: the account acme (password secret), and one upstream that
// every submission is routed to.
func acmeVia(t testing.TB, up ClientConfig) Config {
	return Config{
		Accounts:  []Account{testAccount(t, "acme", "secret")},
		Upstreams: []ClientConfig{up},
		Routing:   RouterConfig{Routes: []Route{{Upstream: up.Name}}},
	}
}

// awaitReceipts waits until the ESME behind rx has been sent exactly n deliver_sm, and returns what
// the first n say as receipts.
func awaitReceipts(t testing.TB, rx *sessiontest.Recorder, n int) []dlr.Info {
	t.Helper()
	sessiontest.Eventually(t, fmt.Sprintf("%d receipts at the ESME", n), func() bool { return len(rx.Requests()) == n })
	infos := make([]dlr.Info, n)
	for i, req := range rx.Requests()[:n] {
		info, err := dlr.FromDeliverSM(req.Body.(*pdu.DeliverSM))
		if err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		infos[i] = info
	}
	return infos
}

// ackCounter counts the submit queue entries acknowledged (the parts settled durably).
type ackCounter struct {
	store.Store
	acked atomic.Int64
}

func (s *ackCounter) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	m, rs, err := s.Store.Settle(ctx, l, u)
	if err == nil && l.Queue.Kind == store.SubmitQueue {
		s.acked.Add(1)
	}
	return m, rs, err
}

func (s *ackCounter) Ack(ctx context.Context, leases ...store.Lease) error {
	err := s.Store.Ack(ctx, leases...)
	if err == nil {
		for _, l := range leases {
			if l.Queue.Kind == store.SubmitQueue {
				s.acked.Add(1)
			}
		}
	}
	return err
}
