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

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// fakeUpstream is an Upstream whose queue the test drains by hand.
type fakeUpstream struct {
	name string

	mu     sync.Mutex
	bound  bool
	refuse error
	queued []fakeQueued
}

type fakeQueued struct {
	sm   *pdu.SubmitSM
	done func(string, error)
}

func (f *fakeUpstream) Name() string { return f.name }

func (f *fakeUpstream) Bound() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bound
}

func (f *fakeUpstream) Enqueue(_ context.Context, sm *pdu.SubmitSM, done func(string, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.queued = append(f.queued, fakeQueued{sm, done})
	return nil
}

// take returns what was queued so far and empties the queue.
func (f *fakeUpstream) take() []fakeQueued {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := f.queued
	f.queued = nil
	return q
}

func (f *fakeUpstream) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queued)
}

func newTestRouter(t *testing.T, cfg RouterConfig, ups ...*fakeUpstream) *Router {
	t.Helper()
	list := make([]Upstream, len(ups))
	for i, u := range ups {
		list[i] = u
	}
	r, err := NewRouter(cfg, list, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRouterRoutes(t *testing.T) {
	a, b, c := &fakeUpstream{name: "a"}, &fakeUpstream{name: "b"}, &fakeUpstream{name: "c"}
	r := newTestRouter(t, RouterConfig{
		Routes: []Route{
			{Prefix: "", Upstream: "c"},
			{Prefix: "44", Upstream: "a"},
			{Prefix: "44", Upstream: "b", Accounts: []string{"vip"}},
			{Prefix: "4477", Upstream: "b"},
			{Prefix: "33", Upstream: "a", Accounts: []string{"fr"}},
		},
		MORoutes: []MORoute{{Prefix: "1", Account: "short"}, {Prefix: "123", Account: "acme"}},
	}, a, b, c)
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
	for dest, want := range map[string]string{"12345": "acme", "1999": "short", "999": ""} {
		got, ok := r.MOAccount(dest)
		if got != want || ok != (want != "") {
			t.Errorf("MOAccount(%q) = %q, %v; want %q", dest, got, ok, want)
		}
	}

	noDefault := newTestRouter(t, RouterConfig{Routes: []Route{{Prefix: "44", Upstream: "a"}}}, a)
	if got := noDefault.Routes("any", "33123"); len(got) != 0 {
		t.Errorf("Routes with no matching prefix = %v, want none", got)
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
		{RouterConfig{ReceiptWait: -1}, "receipt_wait"},
		{RouterConfig{DeliveryQueue: -1}, "delivery_queue"},
	} {
		err := tc.cfg.Validate(ups)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
		}
	}
	if err := (RouterConfig{Routes: []Route{{Upstream: "a"}}, MORoutes: []MORoute{{Account: "x"}}}).Validate(ups); err != nil {
		t.Errorf("valid config: %v", err)
	}
	dup := []Upstream{&fakeUpstream{name: "a"}, &fakeUpstream{name: "a"}}
	if _, err := NewRouter(RouterConfig{}, dup, zerolog.Nop()); err == nil {
		t.Error("NewRouter accepted two upstreams of the same name")
	}
}

// startRouterServer serves r on loopback with the accounts, and runs r until the test ends.
func startRouterServer(t *testing.T, r *Router, accounts ...Account) string {
	t.Helper()
	srv, addr := startServer(t, ServerConfig{}, r, accounts...)
	r.SetSessions(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return addr
}

// fiorixESME binds a fiorix/go-smpp transceiver to addr and returns it with the deliver_sm it receives.
func fiorixESME(t *testing.T, addr, user, pass string) (*fsmpp.Transceiver, <-chan fpdu.Body) {
	t.Helper()
	got := make(chan fpdu.Body, 100)
	tc := &fsmpp.Transceiver{
		Addr: addr, User: user, Passwd: pass, RespTimeout: testWait,
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
	case <-time.After(testWait):
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
	case <-time.After(testWait):
		t.Fatal("no deliver_sm reached the ESME")
		return nil
	}
}

// TestRouterOverLoopback: a third-party ESME (fiorix/go-smpp) binds to our Server; the Router fails
// over from an unbound upstream to a bound one, answers with its own message id, refuses an unroutable
// destination, and brings back the upstream's receipt (under our id) and an MO.
func TestRouterOverLoopback(t *testing.T) {
	primary := &fakeUpstream{name: "primary"}            // not bound
	backup := &fakeUpstream{name: "backup", bound: true} // bound
	r := newTestRouter(t, RouterConfig{
		Routes: []Route{
			{Prefix: "4477", Upstream: "primary"},
			{Prefix: "44", Upstream: "backup"},
		},
		MORoutes: []MORoute{{Prefix: "12345", Account: "acme"}},
	}, primary, backup)
	addr := startRouterServer(t, r, testAccount(t, "acme", "secret"))
	esme, delivered := fiorixESME(t, addr, "acme", "secret")

	sm, err := esme.Submit(&fsmpp.ShortMessage{
		Src: "12345", Dst: "447700900123", Text: pdutext.Raw("hello"), Register: pdufield.FinalDeliveryReceipt,
	})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	ourID := sm.RespID()
	if len(ourID) != 16 {
		t.Fatalf("message id %q, want the router's 16 hex digits", ourID)
	}
	if primary.len() != 0 {
		t.Error("the unbound primary got the message although the backup was bound")
	}
	q := backup.take()
	if len(q) != 1 || q[0].sm.DestinationAddr != "447700900123" || string(q[0].sm.ShortMessage) != "hello" {
		t.Fatalf("backup queue = %+v, want the one message", q)
	}

	_, err = esme.Submit(&fsmpp.ShortMessage{Src: "12345", Dst: "33612345678", Text: pdutext.Raw("x")})
	var st fpdu.Status
	if !errors.As(err, &st) || uint32(st) != uint32(pdu.ESME_RINVDSTADR) {
		t.Fatalf("unroutable submit: %v, want ESME_RINVDSTADR", err)
	}

	// The upstream accepts with its own id, then sends its receipt.
	q[0].done("UP-77", nil)
	if r.Awaiting() != 1 {
		t.Fatalf("awaiting = %d, want 1", r.Awaiting())
	}
	rec := &pdu.DeliverSM{SourceAddr: "447700900123", DestinationAddr: "12345"}
	err = dlr.Info{MessageID: "UP-77", State: pdu.DELIVERED, Receipt: dlr.Receipt{
		ID: "UP-77", Sub: 1, Dlvrd: 1, Stat: "DELIVRD", Err: "000", Text: "hello",
	}}.ToDeliverSM(rec)
	if err != nil {
		t.Fatal(err)
	}
	if st := r.HandleUpstreamDeliver("backup", rec); st != pdu.ESME_ROK {
		t.Fatalf("receipt answered %v", st)
	}
	p := nextDeliver(t, delivered)
	text := p.Fields()[pdufield.ShortMessage].String()
	if !strings.Contains(text, "id:"+ourID) || !strings.Contains(text, "stat:DELIVRD") {
		t.Errorf("receipt text %q does not carry our id %s and DELIVRD", text, ourID)
	}
	if v := p.TLVFields()[pdutlv.TagReceiptedMessageID]; v == nil || strings.TrimRight(v.String(), "\x00") != ourID {
		t.Errorf("receipted_message_id = %v, want %s", v, ourID)
	}
	if esm := p.Fields()[pdufield.ESMClass].Raw(); esm != uint8(0x04) {
		t.Errorf("esm_class = %v, want 0x04", esm)
	}
	if src, dst := p.Fields()[pdufield.SourceAddr].String(), p.Fields()[pdufield.DestinationAddr].String(); src != "447700900123" || dst != "12345" {
		t.Errorf("receipt from %s to %s, want from the destination to the source", src, dst)
	}
	if r.Awaiting() != 0 {
		t.Errorf("awaiting = %d after the final receipt, want 0", r.Awaiting())
	}
	// The same receipt again correlates to nothing: answered OK and dropped.
	if st := r.HandleUpstreamDeliver("backup", rec); st != pdu.ESME_ROK {
		t.Errorf("repeated receipt answered %v", st)
	}

	mo := &pdu.DeliverSM{SourceAddr: "447700900555", DestinationAddr: "12345", ShortMessage: []byte("STOP")}
	if st := r.HandleUpstreamDeliver("backup", mo); st != pdu.ESME_ROK {
		t.Fatalf("MO answered %v", st)
	}
	p = nextDeliver(t, delivered)
	if got := p.Fields()[pdufield.ShortMessage].String(); got != "STOP" {
		t.Errorf("MO text %q, want STOP", got)
	}
	if st := r.HandleUpstreamDeliver("backup", &pdu.DeliverSM{DestinationAddr: "999"}); st != pdu.ESME_RINVDSTADR {
		t.Errorf("MO with no route answered %v, want ESME_RINVDSTADR", st)
	}
	select {
	case p := <-delivered:
		t.Errorf("unexpected deliver_sm %v", p.Fields())
	case <-time.After(50 * time.Millisecond):
	}
}

// TestRouterHoldsUntilReceiverBinds: a receipt for an account bound as transmitter only is held, and
// delivered once the account binds as receiver.
func TestRouterHoldsUntilReceiverBinds(t *testing.T) {
	up := &fakeUpstream{name: "up", bound: true}
	r := newTestRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}, DeliveryRetry: 20 * time.Millisecond}, up)
	addr := startRouterServer(t, r, testAccount(t, "acme", "secret"))

	tx := bindESME(t, addr, newRecorder(), SessionConfig{}, BindTransmitter, "acme", "secret")
	resp, err := tx.Send(testCtx(t), &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: 1, ShortMessage: []byte("m")})
	if err != nil {
		t.Fatal(err)
	}
	ourID := resp.Body.(*pdu.SubmitSMResp).MessageID
	up.take()[0].done("U1", nil)

	rec := &pdu.DeliverSM{}
	if err := (dlr.Info{MessageID: "U1", State: pdu.UNDELIVERABLE}).ToDeliverSM(rec); err != nil {
		t.Fatal(err)
	}
	if st := r.HandleUpstreamDeliver("up", rec); st != pdu.ESME_ROK {
		t.Fatalf("receipt answered %v", st)
	}
	time.Sleep(100 * time.Millisecond) // several retry rounds with no receiver
	if got := r.Held()["acme"]; got != 1 {
		t.Fatalf("held for acme = %d, want 1", got)
	}

	rx := newRecorder()
	bindESME(t, addr, rx, SessionConfig{}, BindReceiver, "acme", "secret")
	eventually(t, "the held receipt to reach the receiver", func() bool {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return len(rx.requests) == 1
	})
	d := rx.requests[0].Body.(*pdu.DeliverSM)
	info, err := dlr.FromDeliverSM(d)
	if err != nil {
		t.Fatal(err)
	}
	if info.MessageID != ourID || info.State != pdu.UNDELIVERABLE {
		t.Errorf("receipt %s %v, want %s UNDELIVERABLE", info.MessageID, info.State, ourID)
	}
	eventually(t, "the held queue to empty", func() bool { return len(r.Held()) == 0 })
}

// TestRouterFailureAndRefusals: an upstream that finally rejects a message makes a REJECTD receipt;
// upstreams that refuse to queue make the submission fail with their status; a full delivery queue
// answers ESME_RMSGQFUL.
func TestRouterFailureAndRefusals(t *testing.T) {
	up := &fakeUpstream{name: "up", bound: true}
	r := newTestRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}, DeliveryQueue: 1}, up)

	id, st := r.Submit("acme", &pdu.SubmitSM{SourceAddr: "1", DestinationAddr: "2", RegisteredDelivery: 1})
	if st != pdu.ESME_ROK {
		t.Fatalf("submit: %v", st)
	}
	up.take()[0].done("", pdu.ESME_RINVDSTADR)
	if got := r.Held()["acme"]; got != 1 {
		t.Fatalf("held = %d, want the REJECTD receipt", got)
	}
	r.mu.Lock()
	d := r.held["acme"].items[0].sm
	r.mu.Unlock()
	info, err := dlr.FromDeliverSM(d)
	if err != nil || info.MessageID != id || info.State != pdu.REJECTED {
		t.Errorf("failure receipt = %+v, %v; want %s REJECTED", info, err, id)
	}

	// The queue (size 1) is full now.
	if st := r.HandleUpstreamDeliver("up", &pdu.DeliverSM{DestinationAddr: "x"}); st != pdu.ESME_RINVDSTADR {
		t.Errorf("MO without route: %v", st)
	}
	r2 := newTestRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}, MORoutes: []MORoute{{Account: "acme"}}, DeliveryQueue: 1}, up)
	if st := r2.HandleUpstreamDeliver("up", &pdu.DeliverSM{DestinationAddr: "1"}); st != pdu.ESME_ROK {
		t.Fatalf("first MO: %v", st)
	}
	if st := r2.HandleUpstreamDeliver("up", &pdu.DeliverSM{DestinationAddr: "1"}); st != pdu.ESME_RMSGQFUL {
		t.Errorf("MO beyond the delivery queue: %v, want ESME_RMSGQFUL", st)
	}

	up.mu.Lock()
	up.refuse = fmt.Errorf("queue full: %w", pdu.ESME_RMSGQFUL)
	up.mu.Unlock()
	if _, st := r.Submit("acme", &pdu.SubmitSM{DestinationAddr: "2"}); st != pdu.ESME_RMSGQFUL {
		t.Errorf("submit to a refusing upstream: %v, want its ESME_RMSGQFUL", st)
	}
	up.mu.Lock()
	up.refuse = errors.New("closed")
	up.mu.Unlock()
	if _, st := r.Submit("acme", &pdu.SubmitSM{DestinationAddr: "2"}); st != pdu.ESME_RSUBMITFAIL {
		t.Errorf("submit to a closed upstream: %v, want ESME_RSUBMITFAIL", st)
	}
}

// TestRouterForgetsOldest: beyond MaxAwaiting the oldest submissions stop waiting for receipts.
func TestRouterForgetsOldest(t *testing.T) {
	up := &fakeUpstream{name: "up", bound: true}
	r := newTestRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}, MaxAwaiting: 3}, up)
	for i := range 5 {
		if _, st := r.Submit("acme", &pdu.SubmitSM{DestinationAddr: "2", RegisteredDelivery: 1}); st != pdu.ESME_ROK {
			t.Fatal(st)
		}
		up.take()[0].done(fmt.Sprint("U", i), nil)
	}
	if got := r.Awaiting(); got != 3 {
		t.Fatalf("awaiting = %d, want the cap 3", got)
	}
	r.mu.Lock()
	_, oldest := r.awaiting[awaitKey{"up", "U0"}]
	_, newest := r.awaiting[awaitKey{"up", "U4"}]
	r.mu.Unlock()
	if oldest || !newest {
		t.Errorf("kept oldest=%v newest=%v, want the newest only", oldest, newest)
	}
}

// TestRouterDeliversBurst: more held MO than the session window are all delivered, in order, to the
// account's bind (bounded: 300 messages, testWait).
func TestRouterDeliversBurst(t *testing.T) {
	const n = 300
	up := &fakeUpstream{name: "up", bound: true}
	r := newTestRouter(t, RouterConfig{Routes: []Route{{Upstream: "up"}}, MORoutes: []MORoute{{Account: "acme"}}, DeliveryQueue: n}, up)
	addr := startRouterServer(t, r, testAccount(t, "acme", "secret"))
	for i := range n {
		if st := r.HandleUpstreamDeliver("up", &pdu.DeliverSM{DestinationAddr: "1", ShortMessage: []byte(fmt.Sprint(i))}); st != pdu.ESME_ROK {
			t.Fatalf("MO %d: %v", i, st)
		}
	}
	if st := r.HandleUpstreamDeliver("up", &pdu.DeliverSM{DestinationAddr: "1"}); st != pdu.ESME_RMSGQFUL {
		t.Errorf("MO beyond delivery_queue: %v, want ESME_RMSGQFUL", st)
	}
	rx := newRecorder()
	bindESME(t, addr, rx, SessionConfig{}, BindTransceiver, "acme", "secret")
	eventually(t, "every held MO to be delivered", func() bool {
		rx.mu.Lock()
		defer rx.mu.Unlock()
		return len(rx.requests) == n
	})
	rx.mu.Lock()
	for i, req := range rx.requests {
		if got := string(req.Body.(*pdu.DeliverSM).ShortMessage); got != fmt.Sprint(i) {
			t.Errorf("delivery %d carried %q", i, got)
			break
		}
	}
	rx.mu.Unlock()
	eventually(t, "the held queue to empty", func() bool { return len(r.Held()) == 0 })
}
