package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// Route sends submissions whose destination_addr starts with Prefix to the upstream named Upstream.
// Several routes may match one message: the longest prefix wins, a route limited to the submitting
// account beats one open to all, and then the order of the configuration decides. When the winning
// route's upstream is not bound, the next matching route is tried (failover).
type Route struct {
	// Prefix is matched against destination_addr as written (no number normalisation). Empty matches
	// every destination.
	Prefix string `yaml:"prefix"`
	// Accounts, when set, limits the route to submissions from these system_ids.
	Accounts []string `yaml:"accounts"`
	// Upstream is the name of the upstream bind (ClientConfig.Name) that carries the messages.
	Upstream string `yaml:"upstream"`
}

// MORoute sends MO messages (deliver_sm from an upstream that is not a receipt) whose destination_addr
// starts with Prefix to the account named Account. The longest prefix wins.
type MORoute struct {
	Prefix  string `yaml:"prefix"`
	Account string `yaml:"account"`
}

// RouterConfig configures the Router. Zero values mean the documented defaults.
type RouterConfig struct {
	// Routes carry submissions to upstreams. A submission no route matches is refused with
	// ESME_RINVDSTADR.
	Routes []Route `yaml:"routes"`
	// MORoutes carry MO messages to accounts. An MO no route matches is refused with ESME_RINVDSTADR.
	MORoutes []MORoute `yaml:"mo_routes"`
	// ReceiptWait is how long the upstream message id of a submission that asked for a receipt is
	// remembered, waiting for the receipt. 0 means 72h.
	ReceiptWait time.Duration `yaml:"receipt_wait"`
	// MaxAwaiting caps how many submissions may wait for a receipt at once; beyond it the oldest are
	// forgotten (their receipts, if they come, are answered and dropped). 0 means 1000000.
	MaxAwaiting int `yaml:"max_awaiting"`
	// DeliveryQueue bounds, per account, the receipts and MO messages held while the account has no
	// receiver or transceiver bind. A full queue makes the upstream's deliver_sm be answered
	// ESME_RMSGQFUL, so the upstream retries later. 0 means 10000.
	DeliveryQueue int `yaml:"delivery_queue"`
	// DeliveryRetry is how often held deliveries are retried while no bind can take them. 0 means 1s.
	DeliveryRetry time.Duration `yaml:"delivery_retry"`
}

// Validate reports the first field that cannot work. upstreams are the names routes may use.
func (c RouterConfig) Validate(upstreams []string) error {
	for i, r := range c.Routes {
		if r.Upstream == "" {
			return fmt.Errorf("gateway: routes[%d].upstream is required", i)
		}
		if !slices.Contains(upstreams, r.Upstream) {
			return fmt.Errorf("gateway: routes[%d].upstream %q names no configured upstream", i, r.Upstream)
		}
		if strings.ContainsRune(r.Prefix, 0) {
			return fmt.Errorf("gateway: routes[%d].prefix contains NUL", i)
		}
		for j, a := range r.Accounts {
			if a == "" {
				return fmt.Errorf("gateway: routes[%d].accounts[%d] is empty", i, j)
			}
		}
	}
	for i, r := range c.MORoutes {
		if r.Account == "" {
			return fmt.Errorf("gateway: mo_routes[%d].account is required", i)
		}
	}
	switch {
	case c.ReceiptWait < 0:
		return errors.New("gateway: receipt_wait must not be negative")
	case c.MaxAwaiting < 0:
		return errors.New("gateway: max_awaiting must not be negative")
	case c.DeliveryQueue < 0:
		return errors.New("gateway: delivery_queue must not be negative")
	case c.DeliveryRetry < 0:
		return errors.New("gateway: delivery_retry must not be negative")
	}
	return nil
}

func (c RouterConfig) withDefaults() RouterConfig {
	if c.ReceiptWait == 0 {
		c.ReceiptWait = 72 * time.Hour
	}
	if c.MaxAwaiting == 0 {
		c.MaxAwaiting = 1000000
	}
	if c.DeliveryQueue == 0 {
		c.DeliveryQueue = 10000
	}
	if c.DeliveryRetry == 0 {
		c.DeliveryRetry = time.Second
	}
	return c
}

// Upstream is what the Router hands submissions to: one upstream bind with its queue (a Client, in the
// daemon).
type Upstream interface {
	// Name is the name routes use.
	Name() string
	// Bound reports whether a bind to the upstream is up now.
	Bound() bool
	// Enqueue queues sm for the upstream and returns once it is queued (or refused, e.g. because the
	// queue is full); it must not wait for the upstream. done is called exactly once when Enqueue
	// returned nil: with the upstream's message id when it accepted the message, or with the error
	// that ended its attempts.
	Enqueue(ctx context.Context, sm *pdu.SubmitSM, done func(upstreamID string, err error)) error
}

// SessionFinder finds the bound sessions of an account; *Server is one.
type SessionFinder interface {
	SessionsFor(systemID string) []*Session
}

// The Router serves a Server and the Clients; a Client is an Upstream.
var (
	_ MessageHandler = (*Router)(nil)
	_ DeliverHandler = (*Router)(nil)
	_ Upstream       = (*Client)(nil)
	_ SessionFinder  = (*Server)(nil)
)

// maxDeliveryAttempts bounds how often one receipt or MO is offered to an ESME that keeps answering
// with a temporary error or loses it; after that it is dropped and logged, so one poisonous message
// cannot block an account's queue for ever.
const maxDeliveryAttempts = 10

// Router is the in-memory heart of the gateway until a store takes over: it answers submit_sm from
// bound ESMEs once an upstream has queued the message, remembers which account sent what, turns the
// upstreams' receipts back into receipts for that account, routes MO messages to accounts, and holds
// what it must deliver until the account has a bind that can receive it.
//
// Everything it holds lives in memory: a restart loses queued messages, pending receipts and held
// deliveries. It implements MessageHandler for a Server; upstream deliver_sm come in through
// HandleUpstreamDeliver. Run must be running for held deliveries to go out.
type Router struct {
	cfg       RouterConfig
	log       zerolog.Logger
	upstreams map[string]Upstream
	finder    atomic.Pointer[SessionFinder]

	idPrefix uint32
	nextID   atomic.Uint64

	mu       sync.Mutex
	awaiting map[awaitKey]*origin // upstream message id -> who submitted it
	order    []awaitEntry         // awaiting in insertion order, for expiry and the cap
	held     map[string]*heldQueue
	wake     chan struct{}
}

type awaitKey struct{ upstream, id string }

type awaitEntry struct {
	key awaitKey
	o   *origin
}

// origin is what a receipt needs to find its way back.
type origin struct {
	account   string
	messageID string // ours, as answered in submit_sm_resp
	srcTON    uint8
	srcNPI    uint8
	src       string
	dstTON    uint8
	dstNPI    uint8
	dst       string
	expires   time.Time
}

type heldQueue struct {
	items    []*delivery
	inFlight int
}

type delivery struct {
	account  string
	sm       *pdu.DeliverSM
	kind     string // "receipt" or "mo", for logs
	attempts int
}

// NewRouter checks cfg against the upstreams and returns a router. Call SetSessions before the server
// starts so that receipts and MO can reach the accounts, and Run to deliver.
func NewRouter(cfg RouterConfig, upstreams []Upstream, log zerolog.Logger) (*Router, error) {
	names := make([]string, 0, len(upstreams))
	byName := make(map[string]Upstream, len(upstreams))
	for _, u := range upstreams {
		if _, dup := byName[u.Name()]; dup {
			return nil, fmt.Errorf("gateway: two upstreams are named %q", u.Name())
		}
		byName[u.Name()] = u
		names = append(names, u.Name())
	}
	if err := cfg.Validate(names); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	// Routes sorted once: longest prefix first, account-limited before open, then configuration order.
	cfg.Routes = slices.Clone(cfg.Routes)
	slices.SortStableFunc(cfg.Routes, func(a, b Route) int {
		if d := len(b.Prefix) - len(a.Prefix); d != 0 {
			return d
		}
		return boolInt(len(b.Accounts) > 0) - boolInt(len(a.Accounts) > 0)
	})
	cfg.MORoutes = slices.Clone(cfg.MORoutes)
	slices.SortStableFunc(cfg.MORoutes, func(a, b MORoute) int { return len(b.Prefix) - len(a.Prefix) })

	var seed [4]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("gateway: message id seed: %w", err)
	}
	return &Router{
		cfg:       cfg,
		log:       log.With().Str("component", "router").Logger(),
		upstreams: byName,
		idPrefix:  binary.BigEndian.Uint32(seed[:]),
		awaiting:  make(map[awaitKey]*origin),
		held:      make(map[string]*heldQueue),
		wake:      make(chan struct{}, 1),
	}, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetSessions tells the router where to find the accounts' binds (the Server it serves).
func (r *Router) SetSessions(f SessionFinder) { r.finder.Store(&f) }

// Routes returns the upstreams a submission from account to dest may take, best first.
func (r *Router) Routes(account, dest string) []string {
	var out []string
	for _, rt := range r.cfg.Routes {
		if !strings.HasPrefix(dest, rt.Prefix) {
			continue
		}
		if len(rt.Accounts) > 0 && !slices.Contains(rt.Accounts, account) {
			continue
		}
		if !slices.Contains(out, rt.Upstream) {
			out = append(out, rt.Upstream)
		}
	}
	return out
}

// MOAccount returns the account an MO to dest goes to.
func (r *Router) MOAccount(dest string) (string, bool) {
	for _, rt := range r.cfg.MORoutes {
		if strings.HasPrefix(dest, rt.Prefix) {
			return rt.Account, true
		}
	}
	return "", false
}

// newMessageID returns a gateway message id: 16 hex digits, a random per-process prefix and a counter,
// so ids from two runs do not collide in an ESME's records.
func (r *Router) newMessageID() string {
	return fmt.Sprintf("%08x%08x", r.idPrefix, uint32(r.nextID.Add(1)))
}

// HandleMessage implements MessageHandler: submit_sm is routed; the other submissions and queries are
// refused with ESME_RINVCMDID because this in-memory router keeps no message state to answer them
// from (the store does, once it is wired in).
func (r *Router) HandleMessage(m Inbound) {
	sm, ok := m.Request.Body.(*pdu.SubmitSM)
	if !ok {
		_ = m.Respond(pdu.ESME_RINVCMDID, nil)
		return
	}
	account := m.Session.SystemID()
	id, status := r.submit(account, sm)
	if status != pdu.ESME_ROK {
		_ = m.Respond(status, nil)
		return
	}
	if err := m.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: id}); err != nil {
		// The message is queued upstream already; its receipt will still be held for the account.
		r.log.Warn().Err(err).Str("account", account).Str("message_id", id).Msg("submit_sm_resp not sent")
	}
}

// Submit routes a submission from account as HandleMessage does, for callers other than an SMPP
// session; it returns the gateway message id, or the status the submission is refused with.
func (r *Router) Submit(account string, sm *pdu.SubmitSM) (string, pdu.CommandStatus) {
	return r.submit(account, sm)
}

func (r *Router) submit(account string, in *pdu.SubmitSM) (string, pdu.CommandStatus) {
	names := r.Routes(account, in.DestinationAddr)
	if len(names) == 0 {
		// ESME_RINVDSTADR rather than ESME_RSUBMITFAIL: the gateway cannot reach this destination at all,
		// which is permanent for it, and ESMEs treat RINVDSTADR as "do not retry" while many retry the
		// generic RSUBMITFAIL for ever.
		r.log.Info().Str("account", account).Str("dest", in.DestinationAddr).Msg("submit_sm refused: no route")
		return "", pdu.ESME_RINVDSTADR
	}
	sm := cloneSubmit(in)
	id := r.newMessageID()
	o := &origin{
		account: account, messageID: id,
		srcTON: sm.SourceAddrTON, srcNPI: sm.SourceAddrNPI, src: sm.SourceAddr,
		dstTON: sm.DestAddrTON, dstNPI: sm.DestAddrNPI, dst: sm.DestinationAddr,
	}
	wantsReceipt := sm.RegisteredDelivery&0x03 != 0

	// Bound upstreams first, in route order; then the unbound ones, whose queues hold the message until
	// their bind is back.
	ordered := make([]string, 0, len(names))
	for _, n := range names {
		if r.upstreams[n].Bound() {
			ordered = append(ordered, n)
		}
	}
	for _, n := range names {
		if !r.upstreams[n].Bound() {
			ordered = append(ordered, n)
		}
	}
	var lastErr error
	for _, n := range ordered {
		up := r.upstreams[n]
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := up.Enqueue(ctx, sm, func(upstreamID string, err error) {
			r.submitted(n, o, wantsReceipt, upstreamID, err)
		})
		cancel()
		if err == nil {
			r.log.Debug().Str("account", account).Str("message_id", id).Str("upstream", n).
				Str("dest", sm.DestinationAddr).Msg("submit_sm queued upstream (in memory)")
			return id, pdu.ESME_ROK
		}
		lastErr = err
		r.log.Warn().Err(err).Str("upstream", n).Str("message_id", id).Msg("upstream refused the message, trying the next route")
	}
	// A full queue is worth retrying later (ESME_RMSGQFUL is temporary); a status an upstream gave is
	// passed on; anything else (a stopped client) is the generic submit failure.
	status := pdu.ESME_RSUBMITFAIL
	var cs pdu.CommandStatus
	switch {
	case errors.Is(lastErr, ErrQueueFull):
		status = pdu.ESME_RMSGQFUL
	case errors.As(lastErr, &cs) && cs != pdu.ESME_ROK:
		status = cs
	}
	r.log.Warn().Err(lastErr).Str("account", account).Str("dest", sm.DestinationAddr).Stringer("status", status).
		Msg("submit_sm refused: every route's upstream refused it")
	return "", status
}

// submitted records the outcome of one message at its upstream.
func (r *Router) submitted(upstream string, o *origin, wantsReceipt bool, upstreamID string, err error) {
	if err != nil {
		r.log.Warn().Err(err).Str("upstream", upstream).Str("account", o.account).Str("message_id", o.messageID).
			Msg("upstream did not accept the message")
		if wantsReceipt {
			// The ESME was told "accepted"; it learns of the failure the only way left, a REJECTD receipt.
			r.hold(o.account, r.failureReceipt(o, err), "receipt")
		}
		return
	}
	r.log.Debug().Str("upstream", upstream).Str("message_id", o.messageID).Str("upstream_id", upstreamID).
		Msg("upstream accepted the message")
	if !wantsReceipt || upstreamID == "" {
		return
	}
	o.expires = time.Now().Add(r.cfg.ReceiptWait)
	key := awaitKey{upstream, upstreamID}
	r.mu.Lock()
	r.awaiting[key] = o
	r.order = append(r.order, awaitEntry{key, o})
	r.expireLocked(time.Now())
	r.mu.Unlock()
}

// expireLocked forgets the awaiting entries past their wait and the oldest beyond MaxAwaiting.
func (r *Router) expireLocked(now time.Time) {
	n := 0
	for n < len(r.order) {
		e := r.order[n]
		cur, live := r.awaiting[e.key]
		live = live && cur == e.o
		if live && len(r.awaiting) <= r.cfg.MaxAwaiting && now.Before(e.o.expires) {
			break
		}
		if live {
			delete(r.awaiting, e.key)
			r.log.Info().Str("message_id", e.o.messageID).Str("upstream_id", e.key.id).Msg("stopped waiting for a receipt")
		}
		n++
	}
	if n > 0 {
		r.order = slices.Delete(r.order, 0, n)
	}
	// Entries answered by a final receipt stay in order until they reach its head; compact when they
	// outnumber the live ones, so order stays proportional to what is awaited.
	if len(r.order) > 2*len(r.awaiting)+1024 {
		r.order = slices.DeleteFunc(r.order, func(e awaitEntry) bool {
			cur, ok := r.awaiting[e.key]
			return !ok || cur != e.o
		})
	}
}

func (r *Router) failureReceipt(o *origin, cause error) *pdu.DeliverSM {
	now := time.Now()
	info := dlr.Info{
		MessageID: o.messageID,
		State:     pdu.REJECTED,
		Receipt: dlr.Receipt{
			ID: o.messageID, Sub: 1, Dlvrd: 0, SubmitDate: now, DoneDate: now,
			Stat: dlr.StatFor(pdu.REJECTED), Err: fmt.Sprintf("%03x", uint32(pdu.StatusOf(cause))&0xfff),
		},
	}
	d := r.receiptHeader(o)
	if err := info.ToDeliverSM(d); err != nil {
		// Only an unusable message id fails, and ours are 16 hex digits.
		r.log.Error().Err(err).Str("message_id", o.messageID).Msg("building a failure receipt")
	}
	return d
}

// receiptHeader addresses a receipt as an SMSC does: from the original destination to the original
// source.
func (r *Router) receiptHeader(o *origin) *pdu.DeliverSM {
	return &pdu.DeliverSM{
		SourceAddrTON: o.dstTON, SourceAddrNPI: o.dstNPI, SourceAddr: o.dst,
		DestAddrTON: o.srcTON, DestAddrNPI: o.srcNPI, DestinationAddr: o.src,
	}
}

// HandleDeliver implements DeliverHandler, so that a Client hands its upstream's deliver_sm to the
// router. Other requests (data_sm, alert_notification) are answered ESME_RINVCMDID: the in-memory
// router does not route them.
func (r *Router) HandleDeliver(upstream string, req Request) pdu.CommandStatus {
	d, ok := req.Body.(*pdu.DeliverSM)
	if !ok {
		r.log.Info().Str("upstream", upstream).Stringer("command", req.Body.CommandID()).Msg("request from upstream not routed")
		return pdu.ESME_RINVCMDID
	}
	return r.HandleUpstreamDeliver(upstream, d)
}

// HandleUpstreamDeliver takes a deliver_sm from the upstream named upstream and returns the status to
// answer it with. A receipt is correlated to the submission it reports on and held for the account
// that sent it, carrying the gateway's message id; an MO is routed by destination to an account.
func (r *Router) HandleUpstreamDeliver(upstream string, d *pdu.DeliverSM) pdu.CommandStatus {
	if dlr.IsReceipt(d.EsmClass) {
		return r.upstreamReceipt(upstream, d)
	}
	account, ok := r.MOAccount(d.DestinationAddr)
	if !ok {
		r.log.Info().Str("upstream", upstream).Str("dest", d.DestinationAddr).Msg("MO refused: no MO route")
		return pdu.ESME_RINVDSTADR
	}
	return r.hold(account, cloneDeliver(d), "mo")
}

func (r *Router) upstreamReceipt(upstream string, d *pdu.DeliverSM) pdu.CommandStatus {
	info, err := dlr.FromDeliverSM(d)
	if err != nil {
		// Answered OK all the same: refusing a receipt we cannot read only makes the upstream send it
		// again, forever.
		r.log.Warn().Err(err).Str("upstream", upstream).Msg("unreadable receipt dropped")
		return pdu.ESME_ROK
	}
	key := awaitKey{upstream, info.MessageID}
	r.mu.Lock()
	o, ok := r.awaiting[key]
	final := info.State.Final() && !info.Intermediate
	if ok && final {
		delete(r.awaiting, key) // its entry in order is skipped when it comes up
	}
	r.mu.Unlock()
	if !ok {
		r.log.Warn().Str("upstream", upstream).Str("upstream_id", info.MessageID).
			Msg("receipt for no message awaiting one (unknown, expired, or sent before a restart) dropped")
		return pdu.ESME_ROK
	}
	out := r.receiptHeader(o)
	out.ServiceType = d.ServiceType
	info.MessageID = o.messageID
	info.Receipt.ID = o.messageID
	if err := info.ToDeliverSM(out); err != nil {
		r.log.Error().Err(err).Str("message_id", o.messageID).Msg("building the receipt for the account")
		return pdu.ESME_RSYSERR
	}
	status := r.hold(o.account, out, "receipt")
	if status != pdu.ESME_ROK && final {
		// The upstream will send it again; be ready to correlate it then.
		r.mu.Lock()
		r.awaiting[key] = o
		r.order = append(r.order, awaitEntry{key, o})
		r.mu.Unlock()
	}
	return status
}

// hold queues a deliver_sm for an account and wakes the deliverer.
func (r *Router) hold(account string, d *pdu.DeliverSM, kind string) pdu.CommandStatus {
	r.mu.Lock()
	q := r.held[account]
	if q == nil {
		q = &heldQueue{}
		r.held[account] = q
	}
	if len(q.items)+q.inFlight >= r.cfg.DeliveryQueue {
		r.mu.Unlock()
		r.log.Warn().Str("account", account).Str("kind", kind).Msg("delivery queue full; deliver_sm refused with ESME_RMSGQFUL")
		return pdu.ESME_RMSGQFUL
	}
	q.items = append(q.items, &delivery{account: account, sm: d, kind: kind})
	r.mu.Unlock()
	r.poke()
	return pdu.ESME_ROK
}

func (r *Router) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Held returns how many deliveries wait for each account (in flight to a session included).
func (r *Router) Held() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.held))
	for a, q := range r.held {
		if n := len(q.items) + q.inFlight; n > 0 {
			out[a] = n
		}
	}
	return out
}

// Awaiting returns how many submissions wait for a receipt.
func (r *Router) Awaiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.awaiting)
}

// Run delivers held receipts and MO to the accounts' receiver and transceiver binds until ctx ends,
// retrying every DeliveryRetry while an account has none, and forgets receipts waited on too long.
// What is still held when it returns is lost, and logged as such.
func (r *Router) Run(ctx context.Context) {
	tick := time.NewTicker(r.cfg.DeliveryRetry)
	defer tick.Stop()
	for {
		r.deliverAll(ctx)
		select {
		case <-ctx.Done():
			held := r.Held()
			total := 0
			for _, n := range held {
				total += n
			}
			if total > 0 {
				r.log.Warn().Int("deliveries", total).Interface("by_account", held).
					Msg("router stopped with undelivered receipts and MO; without a store they are lost")
			}
			return
		case <-r.wake:
		case now := <-tick.C:
			r.mu.Lock()
			r.expireLocked(now)
			r.mu.Unlock()
		}
	}
}

// deliverAll offers every held delivery to a bind of its account that can receive.
func (r *Router) deliverAll(ctx context.Context) {
	fp := r.finder.Load()
	if fp == nil {
		return
	}
	r.mu.Lock()
	accounts := make([]string, 0, len(r.held))
	for a, q := range r.held {
		if len(q.items) > 0 {
			accounts = append(accounts, a)
		}
	}
	r.mu.Unlock()
	for _, account := range accounts {
		var receivers []*Session
		for _, s := range (*fp).SessionsFor(account) {
			if bt := s.BindType(); s.State() == StateBound && (bt == BindReceiver || bt == BindTransceiver) {
				receivers = append(receivers, s)
			}
		}
		if len(receivers) == 0 {
			continue
		}
		for i := 0; ctx.Err() == nil; i++ {
			r.mu.Lock()
			q := r.held[account]
			if len(q.items) == 0 {
				r.mu.Unlock()
				break
			}
			d := q.items[0]
			q.items = q.items[1:]
			q.inFlight++
			r.mu.Unlock()

			s := receivers[i%len(receivers)]
			// A window that stays full for a second ends this account's round, so that one slow ESME
			// does not hold up the others; answers and the ticker start the next round.
			sendCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := s.SendAsync(sendCtx, d.sm, func(resp Response, err error) { r.delivered(d, s, resp, err) })
			cancel()
			if err != nil {
				// Window full for too long, or the session is closing: put it back and try later.
				r.requeue(d)
				break
			}
		}
	}
}

// delivered handles an ESME's answer to one of our deliver_sm.
func (r *Router) delivered(d *delivery, s *Session, resp Response, err error) {
	if err == nil && resp.Status == pdu.ESME_ROK {
		r.mu.Lock()
		q := r.held[d.account]
		q.inFlight--
		more := len(q.items) > 0
		r.mu.Unlock()
		if more {
			r.poke() // a round may have stopped at a full window; the answer freed a slot
		}
		r.log.Debug().Str("account", d.account).Str("kind", d.kind).Uint64("session", s.ID()).Msg("delivered")
		return
	}
	d.attempts++
	status := resp.Status
	if err != nil {
		status = pdu.StatusOf(err)
	}
	retry := d.attempts < maxDeliveryAttempts &&
		(errors.Is(err, ErrLost) || errors.Is(err, ErrResponseTimeout) || errors.Is(err, ErrClosed) || status.Temporary())
	if !retry {
		r.mu.Lock()
		r.held[d.account].inFlight--
		r.mu.Unlock()
		r.log.Warn().Err(err).Str("account", d.account).Str("kind", d.kind).Stringer("status", status).
			Int("attempts", d.attempts).Msg("deliver_sm dropped: the ESME refused it")
		return
	}
	r.log.Info().Err(err).Str("account", d.account).Str("kind", d.kind).Stringer("status", status).
		Int("attempts", d.attempts).Msg("deliver_sm not taken, will retry")
	// This runs on the session's goroutine: requeue without sending; Run picks it up on its next tick
	// (not at once, so an ESME answering "try later" is not hammered).
	r.requeue(d)
}

// requeue puts a delivery back at the head of its account's queue; the next round of Run retries it.
func (r *Router) requeue(d *delivery) {
	r.mu.Lock()
	q := r.held[d.account]
	q.inFlight--
	q.items = append([]*delivery{d}, q.items...)
	r.mu.Unlock()
}

// cloneSubmit copies a submission so that it does not keep the frame it was decoded from alive.
func cloneSubmit(in *pdu.SubmitSM) *pdu.SubmitSM {
	sm := *in
	sm.ServiceType = strings.Clone(in.ServiceType)
	sm.SourceAddr = strings.Clone(in.SourceAddr)
	sm.DestinationAddr = strings.Clone(in.DestinationAddr)
	sm.ScheduleDeliveryTime = strings.Clone(in.ScheduleDeliveryTime)
	sm.ValidityPeriod = strings.Clone(in.ValidityPeriod)
	sm.ShortMessage = bytes.Clone(in.ShortMessage)
	sm.Options = pdu.Options(bytes.Clone(in.Options))
	return &sm
}

func cloneDeliver(in *pdu.DeliverSM) *pdu.DeliverSM {
	d := *in
	d.ServiceType = strings.Clone(in.ServiceType)
	d.SourceAddr = strings.Clone(in.SourceAddr)
	d.DestinationAddr = strings.Clone(in.DestinationAddr)
	d.ScheduleDeliveryTime = strings.Clone(in.ScheduleDeliveryTime)
	d.ValidityPeriod = strings.Clone(in.ValidityPeriod)
	d.ShortMessage = bytes.Clone(in.ShortMessage)
	d.Options = pdu.Options(bytes.Clone(in.Options))
	return &d
}
