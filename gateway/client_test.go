package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/internal/smpptest"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/pdu"
)

func startClient(t *testing.T, cfg ClientConfig, deliver DeliverHandler) *Client {
	t.Helper()
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin = 10 * time.Millisecond
		cfg.ReconnectMax = 50 * time.Millisecond
	}
	c, err := NewClient(cfg, deliver, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
		defer cancel()
		c.Unbind(ctx)
	})
	return c
}

// results collects the outcome of jobs.
type results struct {
	mu   sync.Mutex
	errs []error
	ids  []string
	ch   chan struct{}
}

func newResults() *results { return &results{ch: make(chan struct{}, 1000)} }

func (r *results) done(resp session.Response, err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	if sr, ok := resp.Body.(*pdu.SubmitSMResp); ok {
		r.ids = append(r.ids, sr.MessageID)
	}
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *results) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-r.ch:
		case <-time.After(sessiontest.Wait):
			t.Fatalf("only %d of %d jobs finished", len(r.errs), n)
		}
	}
}

func TestClientSubmitsThroughWindow(t *testing.T) {
	sink := &acceptSink{}
	_, addr := startServer(t, ServerConfig{}, sink, testAccount(t, "acme", "pw"))
	c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw", Session: session.Config{Window: 5}}, nil)
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	res := newResults()
	const n = 200
	for range n {
		if err := c.Submit(sessiontest.Ctx(t), submit("44"), res.done); err != nil {
			t.Fatal(err)
		}
	}
	res.wait(t, n)
	for _, err := range res.errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := c.Status()
	if st.State != ClientBound || st.Submitted != n || st.Accepted != n || st.Sent != n || st.Binds != 1 || st.Queued != 0 || st.Session == nil || st.Session.WindowSize != 5 {
		t.Fatalf("status %+v", st)
	}
	if err := c.Submit(sessiontest.Ctx(t), &pdu.DeliverSM{}, nil); err == nil {
		t.Fatal("deliver_sm accepted for an upstream")
	}
}

func TestClientReconnectsAfterServerRestart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	serve := func(l net.Listener) *Server {
		auth, _ := NewMemoryAuthenticator(testAccount(t, "acme", "pw"))
		srv, err := NewServer(ServerConfig{FailureDelay: -1}, auth, &acceptSink{}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(l)
		return srv
	}
	srv := serve(l)
	c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw", ReconnectMin: 20 * time.Millisecond, ReconnectMax: 80 * time.Millisecond}, nil)
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	first := c.Session()
	if err := srv.Shutdown(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "the client to notice", func() bool { return !c.Bound() })
	sessiontest.Eventually(t, "failed attempts while the server is down", func() bool { return c.Status().BindErrors >= 2 })
	st := c.Status()
	if st.State != ClientBackingOff && st.State != ClientConnecting {
		t.Fatalf("state while down: %v", st.State)
	}
	if st.LastError == "" {
		t.Fatal("no last error")
	}
	// Work queued while the upstream is away waits for it.
	res := newResults()
	if err := c.Submit(sessiontest.Ctx(t), submit("1"), res.done); err != nil {
		t.Fatal(err)
	}
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("relisten on %s: %v", addr, err)
	}
	srv2 := serve(l2)
	t.Cleanup(func() { srv2.Shutdown(context.Background()) })
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	res.wait(t, 1)
	if res.errs[0] != nil {
		t.Fatal(res.errs[0])
	}
	if s := c.Session(); s == first || c.Status().Binds != 2 {
		t.Fatalf("no new session: %+v", c.Status())
	}
}

func TestClientBackoffIsCappedWithJitter(t *testing.T) {
	c, err := NewClient(ClientConfig{Address: "127.0.0.1:1", SystemID: "x", ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second}, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	for n := 1; n <= 12; n++ {
		ceil := min(100*time.Millisecond<<(n-1), time.Second)
		for range 50 {
			d := c.backoff(n)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: %v outside [0, %v]", n, d, ceil)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Fatalf("back-off barely varies: %d distinct values", len(seen))
	}
}

func TestClientRetriesWhenThrottled(t *testing.T) {
	for _, st := range []pdu.CommandStatus{pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL} {
		t.Run(st.String(), func(t *testing.T) {
			sim := startSim(t, "127.0.0.1:0", smscsim.Options{Accounts: map[string]string{"acme": "pw"}})
			sim.Inject(smscsim.Fault{Status: st, Count: 3})
			addr := sim.Addr()
			c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw", ThrottleDelay: 5 * time.Millisecond}, nil)
			res := newResults()
			start := time.Now()
			if err := c.Submit(sessiontest.Ctx(t), submit("1"), res.done); err != nil {
				t.Fatal(err)
			}
			res.wait(t, 1)
			if res.errs[0] != nil {
				t.Fatalf("job failed: %v", res.errs[0])
			}
			// Pauses of 5, 10 and 20ms were taken between the attempts.
			if took := time.Since(start); took < 35*time.Millisecond {
				t.Fatalf("retried without slowing down (%v)", took)
			}
			if s := c.Status(); s.Throttled != 3 || s.Sent != 4 || s.Accepted != 1 || s.Rejected != 0 {
				t.Fatalf("status %+v", s)
			}
		})
	}
}

func TestClientPermanentRefusalReported(t *testing.T) {
	sim := startSim(t, "127.0.0.1:0", smscsim.Options{Accounts: map[string]string{"acme": "pw"}})
	sim.Inject(smscsim.Fault{Status: pdu.ESME_RINVDSTADR, Count: 1})
	addr := sim.Addr()
	c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw"}, nil)
	res := newResults()
	c.Submit(sessiontest.Ctx(t), submit("1"), res.done)
	res.wait(t, 1)
	if !errors.Is(res.errs[0], pdu.ESME_RINVDSTADR) || c.Status().Rejected != 1 {
		t.Fatalf("got %v, status %+v", res.errs[0], c.Status())
	}
}

func TestClientRequeuesLostPDUs(t *testing.T) {
	addr, peers := smpptest.Listen(t)
	c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw", Session: session.Config{EnquireLink: -1}}, nil)
	p := <-peers
	p.AcceptBind()
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	res := newResults()
	for _, to := range []string{"1", "2"} {
		if err := c.Submit(sessiontest.Ctx(t), submit(to), res.done); err != nil {
			t.Fatal(err)
		}
	}
	p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	p.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
	p.Conn.Close() // the link drops with both in flight

	p2 := <-peers
	p2.AcceptBind()
	got := map[string]bool{}
	for range 2 {
		h, b := p2.Expect(pdu.SubmitSMID, pdu.ESME_ROK)
		got[b.(*pdu.SubmitSM).DestinationAddr] = true
		p2.Send(h.Sequence, pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: "u" + b.(*pdu.SubmitSM).DestinationAddr})
	}
	res.wait(t, 2)
	if !got["1"] || !got["2"] {
		t.Fatalf("resent %v", got)
	}
	for _, err := range res.errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Status(); st.Requeued != 2 || st.Accepted != 2 || st.Binds != 2 {
		t.Fatalf("status %+v", st)
	}
}

func TestClientDeliversToHandler(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, &acceptSink{}, testAccount(t, "acme", "pw"))
	got := make(chan string, 1)
	c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw", BindType: session.BindReceiver},
		deliverFunc(func(up string, req session.Request) pdu.CommandStatus {
			got <- up + ":" + string(req.Body.(*pdu.DeliverSM).ShortMessage)
			return pdu.ESME_ROK
		}))
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "registry", func() bool { return len(srv.sessionsFor("acme")) == 1 })
	if _, err := srv.sessionsFor("acme")[0].Send(sessiontest.Ctx(t), &pdu.DeliverSM{ShortMessage: []byte("receipt")}); err != nil {
		t.Fatal(err)
	}
	if g := <-got; g != "acme@"+addr+":receipt" {
		t.Fatalf("got %q", g)
	}
	if err := c.Submit(sessiontest.Ctx(t), submit("1"), nil); err == nil {
		t.Fatal("a receiver accepted a submission")
	}
}

func TestClientUnbindIsGraceful(t *testing.T) {
	srv, addr := startServer(t, ServerConfig{}, &acceptSink{}, testAccount(t, "acme", "pw"))
	c := startClient(t, ClientConfig{Address: addr, SystemID: "acme", Password: "pw"}, nil)
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	sessiontest.Eventually(t, "registry", func() bool { return len(srv.sessionsFor("acme")) == 1 })
	ss := srv.sessionsFor("acme")[0]
	if err := c.Unbind(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	<-ss.Done()
	if !errors.Is(ss.Err(), session.ErrPeerUnbound) {
		t.Fatalf("server saw %v", ss.Err())
	}
	if st := c.Status(); st.State != ClientStopped {
		t.Fatalf("state %v", st.State)
	}
	if err := c.awaitBound(sessiontest.Ctx(t)); !errors.Is(err, ErrClientStopped) {
		t.Fatalf("await after stop: %v", err)
	}
	if err := c.Submit(sessiontest.Ctx(t), submit("1"), nil); !errors.Is(err, ErrClientStopped) {
		t.Fatalf("submit after stop: %v", err)
	}
}

func TestClientQueueBound(t *testing.T) {
	c, err := NewClient(ClientConfig{Address: "127.0.0.1:1", SystemID: "x", QueueSize: 2}, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		err := c.Submit(sessiontest.Ctx(t), submit("1"), nil)
		if (i < 2) != (err == nil) || (i == 2 && !errors.Is(err, ErrQueueFull)) {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
}

func TestMemoryQueueOrder(t *testing.T) {
	q := NewMemoryQueue(100)
	var jobs []*Job
	for i := range 40 {
		j := &Job{Attempts: i}
		jobs = append(jobs, j)
		if err := q.Push(sessiontest.Ctx(t), j); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := q.Pop(sessiontest.Ctx(t))
	second, _ := q.Pop(sessiontest.Ctx(t))
	q.Requeue(second, RequeueLost, 0)
	q.Requeue(first, RequeueThrottled, time.Second)
	for i := range 40 {
		j, err := q.Pop(sessiontest.Ctx(t))
		if err != nil || j != jobs[i] {
			t.Fatalf("pop %d: %v %v", i, j, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := q.Pop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pop on empty: %v", err)
	}
}
