package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
	"github.com/smppgw/smppgw/store"
)

// Route, in the configuration file, sends submissions whose destination_addr starts with Prefix to
// the upstream named Upstream. The gateway writes the configured routes into the store at start
// (store.Route named "config-N"), where the admin API edits them and adds others; the store's routes
// are what the Router uses. Several routes may match one message: the longest prefix wins, a route
// limited to the submitting account beats one open to all, then the higher store priority (the
// configuration order for configured routes). The upstreams of the matching routes, in that order,
// are the failover order.
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
	// Routes carry submissions to upstreams; they are seeded into the store at start. A submission no
	// route matches is refused with ESME_RINVDSTADR.
	Routes []Route `yaml:"routes"`
	// MORoutes carry MO messages to accounts. An MO no route matches is refused with ESME_RINVDSTADR.
	MORoutes []MORoute `yaml:"mo_routes"`
	// DeliveryRetry is how long a receipt or MO waits before it is offered again to an account whose
	// bind refused it with a temporary error, lost it, or has gone. 0 means 1s.
	DeliveryRetry time.Duration `yaml:"delivery_retry"`
	// MaxDeliveryAttempts bounds how often one receipt or MO is offered to an ESME that keeps refusing
	// it temporarily; then it is dropped and logged, so one poisonous message cannot block an account's
	// queue for ever. 0 means 10.
	MaxDeliveryAttempts int `yaml:"max_delivery_attempts"`
	// LongMessages is how text submitted through the API is cut when it needs several parts: udh8
	// (concatenation UDH with an 8-bit reference, the most widely supported), udh16, sar (sar_* TLVs) or
	// payload (one submit_sm with message_payload). Empty means udh8.
	LongMessages string `yaml:"long_messages"`
}

var splitModes = map[string]pdu.SplitMode{
	"": pdu.SplitUDH8, "udh8": pdu.SplitUDH8, "udh16": pdu.SplitUDH16, "sar": pdu.SplitSAR, "payload": pdu.SplitPayload,
}

// Validate reports the first field that cannot work. upstreams are the names routes may use.
func (c RouterConfig) Validate(upstreams []string) error {
	for i, r := range c.Routes {
		if r.Upstream == "" {
			return fmt.Errorf("routes[%d].upstream is required", i)
		}
		if !slices.Contains(upstreams, r.Upstream) {
			return fmt.Errorf("routes[%d].upstream %q names no configured upstream", i, r.Upstream)
		}
		if strings.ContainsRune(r.Prefix, 0) {
			return fmt.Errorf("routes[%d].prefix contains NUL", i)
		}
		for j, a := range r.Accounts {
			if a == "" {
				return fmt.Errorf("routes[%d].accounts[%d] is empty", i, j)
			}
		}
	}
	for i, r := range c.MORoutes {
		if r.Account == "" {
			return fmt.Errorf("mo_routes[%d].account is required", i)
		}
	}
	switch {
	case c.DeliveryRetry < 0:
		return errors.New("delivery_retry must not be negative")
	case c.MaxDeliveryAttempts < 0:
		return errors.New("max_delivery_attempts must not be negative")
	}
	if _, ok := splitModes[c.LongMessages]; !ok {
		return fmt.Errorf("long_messages %q: want udh8, udh16, sar or payload", c.LongMessages)
	}
	return nil
}

func (c RouterConfig) withDefaults() RouterConfig {
	if c.DeliveryRetry == 0 {
		c.DeliveryRetry = time.Second
	}
	if c.MaxDeliveryAttempts == 0 {
		c.MaxDeliveryAttempts = 10
	}
	return c
}

// SessionFinder finds the bound sessions of an account; *Server is one.
type SessionFinder interface {
	SessionsFor(systemID string) []*session.Session
}

// upstreamView tells the Router which upstreams this gateway has and which of them can take work now.
type upstreamView interface {
	upstreamState(name string) (known, up bool)
}

// The Router serves a Server and the Clients.
var (
	_ MessageHandler      = (*Router)(nil)
	_ BindObserver        = (*Router)(nil)
	_ DeliverHandler      = (*Router)(nil)
	_ AsyncDeliverHandler = (*Router)(nil)
)

// storeTimeout bounds one store call made on behalf of a PDU.
const storeTimeout = 10 * time.Second

// configRoutePrefix names the store routes seeded from the configuration file.
const configRoutePrefix = "config-"

// Router is the message path between the Server, the Clients and the store (DESIGN.md, "Message
// life"). A submit_sm is validated, given a gateway message id, routed, written with
// store.AcceptMessage (which queues its parts for the upstream) and only then answered. The clients'
// queues read the store (storeQueue) and report back here: Settle on submit_sm_resp, a
// REJECTED receipt on a permanent refusal. Upstream receipts are recorded with AddReceipt and, once
// correlated, queued for the account as deliver_sm carrying our message id; MO are routed to accounts
// and queued the same way. While an account has a receiver or transceiver bind here, a delivery loop
// claims its queue and sends.
//
// Everything it must not lose lives in the store; what it holds in memory (routes, counters,
// subscribers, delivery loops) is rebuilt at start.
type Router struct {
	cfg      RouterConfig
	st       store.Store
	log      zerolog.Logger
	ups      upstreamView
	finder   SessionFinder
	instance string
	split    pdu.SplitMode
	moRoutes []MORoute
	events   *hub
	stats    *counters
	pool     *pool

	routes  atomic.Pointer[[]store.Route]
	idStart atomic.Uint64 // where this run's message ids start, in [0, idSpace); see newMessageID
	nextID  atomic.Uint64
	nextRef atomic.Uint32

	mu         sync.Mutex
	runCtx     context.Context
	deliverers map[string]chan struct{} // account -> wake-up of its delivery loop
	loops      sync.WaitGroup
}

func newRouter(cfg RouterConfig, st store.Store, ups upstreamView, instance string, events *hub, stats *counters, p *pool, log zerolog.Logger) (*Router, error) {
	cfg = cfg.withDefaults()
	mo := slices.Clone(cfg.MORoutes)
	slices.SortStableFunc(mo, func(a, b MORoute) int { return len(b.Prefix) - len(a.Prefix) })
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("gateway: message id seed: %w", err)
	}
	r := &Router{
		cfg: cfg, st: st, log: log.With().Str("component", "router").Logger(), ups: ups, instance: instance,
		split: splitModes[cfg.LongMessages], moRoutes: mo, events: events, stats: stats, pool: p,
		deliverers: make(map[string]chan struct{}),
	}
	r.idStart.Store(binary.BigEndian.Uint64(seed[:]) % idSpace)
	r.nextRef.Store(binary.BigEndian.Uint32(seed[4:]))
	r.routes.Store(&[]store.Route{})
	return r, nil
}

// Message ids are 16 decimal digits, the first 1 to 7: the numbers idBase to idBase+idSpace-1.
//
// Peers keep our ids as text (SMPP says a C-Octet String) or, many of them, as a signed 64-bit number
// read in a base of their choosing: Kannel's msg-id-type reads hex (0x03) or decimal (0x00), other
// peers read an id of digits only as decimal and anything else as hex. An id that overflows int64 is
// saturated to 9223372036854775807 by strtoll, so all of them become one and receipts go to the wrong
// message; an id read as hex by one rule and as decimal by another can equal a different id read the
// other way. Digits only, 16 of them, first 1 to 7, is the one form every such reader gets right:
// every id reads the same way under each rule (all digits), as decimal it is below 8·10^15 and as
// hex below 0x8000000000000000, both < 2^63, and two different strings of 16 digits are two different
// numbers in either base. No leading 0: strtoll with base 0 reads it as octal, and a peer that
// prints the number back would lose it.
const (
	idBase  = 1_000_000_000_000_000 // 10^15: the smallest id, "1000000000000000"
	idSpace = 7 * idBase            // ids are idBase+k for k in [0, idSpace), up to "7999999999999999"
)

// newMessageID returns a gateway message id (see idBase): this run's counter added to a random start,
// modulo idSpace. One run repeats none before 7·10^15 ids (two centuries at a million a second). Two
// runs or two instances meet only when their ranges overlap, a chance of about (ids issued)/idSpace;
// then the store refuses the repeat and accept moves this run to a new random start (reseedIDs).
func (r *Router) newMessageID() string {
	n := r.nextID.Add(1) % idSpace
	k := (r.idStart.Load() + n) % idSpace
	var b [16]byte
	return string(strconv.AppendUint(b[:0], idBase+k, 10))
}

// reseedIDs moves the id sequence to a new random start, after the store found an id taken.
func (r *Router) reseedIDs() {
	var seed [8]byte
	_, _ = rand.Read(seed[:]) // crypto/rand does not fail on supported platforms
	r.idStart.Store(binary.BigEndian.Uint64(seed[:]) % idSpace)
}

// seedRoutes writes the configured routes into the store as "config-N" and removes configured routes
// of an earlier configuration that are gone from this one.
func (r *Router) seedRoutes(ctx context.Context) error {
	want := map[string]bool{}
	n := len(r.cfg.Routes)
	for i, cr := range r.cfg.Routes {
		accounts := cr.Accounts
		if len(accounts) == 0 {
			accounts = []string{""}
		}
		for j, a := range accounts {
			name := fmt.Sprintf("%s%d", configRoutePrefix, i)
			if len(cr.Accounts) > 0 {
				name = fmt.Sprintf("%s%d-%d", configRoutePrefix, i, j)
			}
			want[name] = true
			sr := &store.Route{Name: name, Account: a, Prefix: cr.Prefix, Upstreams: []string{cr.Upstream}, Priority: n - i}
			if old, err := r.st.GetRoute(ctx, name); err == nil {
				sr.CreatedAt = old.CreatedAt
			}
			if err := r.st.PutRoute(ctx, sr); err != nil {
				return fmt.Errorf("gateway: seed route %s: %w", name, err)
			}
		}
	}
	all, err := r.st.ListRoutes(ctx)
	if err != nil {
		return fmt.Errorf("gateway: list routes: %w", err)
	}
	for _, rt := range all {
		if strings.HasPrefix(rt.Name, configRoutePrefix) && !want[rt.Name] {
			if err := r.st.DeleteRoute(ctx, rt.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("gateway: remove stale route %s: %w", rt.Name, err)
			}
		}
	}
	return nil
}

// loadRoutes reads the store's routes and makes them the ones in use.
func (r *Router) loadRoutes(ctx context.Context) error {
	all, err := r.st.ListRoutes(ctx)
	if err != nil {
		return fmt.Errorf("gateway: load routes: %w", err)
	}
	rs := make([]store.Route, 0, len(all))
	for _, rt := range all {
		rs = append(rs, *rt)
	}
	// Longest prefix first, account-limited before open, higher priority, then name for a stable order.
	slices.SortStableFunc(rs, func(a, b store.Route) int {
		if d := len(b.Prefix) - len(a.Prefix); d != 0 {
			return d
		}
		if d := boolInt(b.Account != "") - boolInt(a.Account != ""); d != 0 {
			return d
		}
		if d := b.Priority - a.Priority; d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	r.routes.Store(&rs)
	r.log.Info().Int("routes", len(rs)).Msg("routes loaded from the store")
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Routes returns the upstreams (known to this gateway) a submission from account to dest may take,
// in order of preference.
func (r *Router) Routes(account, dest string) []string {
	var out []string
	for _, rt := range *r.routes.Load() {
		if !strings.HasPrefix(dest, rt.Prefix) || (rt.Account != "" && rt.Account != account) {
			continue
		}
		for _, u := range rt.Upstreams {
			if known, _ := r.ups.upstreamState(u); known && !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// pickUpstream returns the queue a new message goes to: the first upstream in route order that is
// bound and not paused, else the first one (its queue holds the message until its bind is back).
func (r *Router) pickUpstream(account, dest string) (string, bool) {
	names := r.Routes(account, dest)
	if len(names) == 0 {
		return "", false
	}
	for _, n := range names {
		if _, up := r.ups.upstreamState(n); up {
			return n, true
		}
	}
	return names[0], true
}

// MOAccount returns the account an MO to dest goes to.
func (r *Router) MOAccount(dest string) (string, bool) {
	for _, rt := range r.moRoutes {
		if strings.HasPrefix(dest, rt.Prefix) {
			return rt.Account, true
		}
	}
	return "", false
}

// HandleMessage implements MessageHandler: submit_sm is accepted into the store and then answered;
// query_sm is answered from the store; the other requests are refused with ESME_RINVCMDID.
func (r *Router) HandleMessage(m Inbound) {
	account := m.Session.SystemID()
	if m.Account != nil && m.Account.SystemID != "" {
		account = m.Account.SystemID
	}
	switch b := m.Request.Body.(type) {
	case *pdu.SubmitSM:
		msg, err := r.fromSubmitSM(account, b, time.Now())
		if err != nil {
			r.stats.rejected.Add(1)
			st := statusForAcceptError(err)
			r.log.Info().Str("account", account).Str("dest", b.DestinationAddr).Err(err).Stringer("status", st).Msg("submit_sm refused")
			_ = m.Respond(st, nil)
			return
		}
		// The durable write waits for a disk flush (or a Redis round trip); doing it off the reader
		// lets concurrent submissions share one group commit. The inbound limit bounds how many wait.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
			err := r.accept(ctx, msg)
			cancel()
			if err != nil {
				r.stats.rejected.Add(1)
				_ = m.Respond(statusForAcceptError(err), nil)
				return
			}
			if err := m.Respond(pdu.ESME_ROK, &pdu.SubmitSMResp{MessageID: msg.ID}); err != nil {
				// Accepted and queued already: the message goes out and its receipt is queued.
				r.log.Warn().Err(err).Str("account", account).Str("message_id", msg.ID).Msg("submit_sm_resp not sent")
			}
		}()
	case *pdu.QuerySM:
		q := *b
		q.MessageID = strings.Clone(b.MessageID)
		go r.query(m, account, &q)
	default:
		_ = m.Respond(pdu.ESME_RINVCMDID, nil)
	}
}

// statusForAcceptError is what a submit_sm is refused with when the store did not take it.
// ESME_RSYSERR rather than ESME_RMSGQFUL: the gateway is not full, it cannot write, and ESMEs retry
// RSYSERR later just the same.
func statusForAcceptError(err error) pdu.CommandStatus {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve) && ve.Status != pdu.ESME_ROK:
		return ve.Status
	case errors.As(err, &ve):
		return pdu.ESME_RINVPARLEN
	case errors.Is(err, ErrNoRoute):
		// ESME_RINVDSTADR rather than ESME_RSUBMITFAIL: the gateway cannot reach this destination at
		// all, which is permanent for it, and ESMEs treat RINVDSTADR as "do not retry" while many retry
		// the generic RSUBMITFAIL for ever.
		return pdu.ESME_RINVDSTADR
	}
	return pdu.ESME_RSYSERR
}

// accept gives m an id, routes it when it has no upstream yet, and writes it durably.
func (r *Router) accept(ctx context.Context, m *store.Message) error {
	if m.Upstream == "" {
		up, ok := r.pickUpstream(m.Account, m.Destination.Addr)
		if !ok {
			return ErrNoRoute
		}
		m.Upstream = up
	}
	m.ID = r.newMessageID()
	err := r.st.AcceptMessage(ctx, m)
	for try := 0; errors.Is(err, store.ErrExists) && try < 3; try++ {
		// Another run or instance issued this id (their sequences met): move ours elsewhere.
		r.log.Warn().Str("message_id", m.ID).Msg("message id already taken; moving this run's ids to a new random start")
		r.reseedIDs()
		m.ID = r.newMessageID()
		err = r.st.AcceptMessage(ctx, m)
	}
	if err != nil {
		r.log.Error().Err(err).Str("account", m.Account).Str("upstream", m.Upstream).Msg("message not accepted: store write failed")
		return err
	}
	r.stats.accept(m)
	r.log.Debug().Str("account", m.Account).Str("message_id", m.ID).Str("upstream", m.Upstream).
		Str("dest", m.Destination.Addr).Int("parts", len(m.Parts)).Msg("message accepted")
	return nil
}

// query answers query_sm from the store, for the account's own messages.
func (r *Router) query(m Inbound, account string, q *pdu.QuerySM) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	msg, err := r.st.GetMessage(ctx, q.MessageID)
	if err != nil || msg.Account != account {
		st := pdu.ESME_RQUERYFAIL
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			st = pdu.ESME_RSYSERR
		}
		_ = m.Respond(st, nil)
		return
	}
	resp := &pdu.QuerySMResp{MessageID: msg.ID, MessageState: msg.Status}
	if msg.Status.Final() {
		resp.FinalDate = string(pdu.AppendAbsoluteTime(nil, msg.UpdatedAt))
	}
	for _, p := range msg.Parts {
		if p.Error != 0 {
			resp.ErrorCode = uint8(min(p.Error, 255))
		}
	}
	_ = m.Respond(pdu.ESME_ROK, resp)
}

// HandleBound implements BindObserver: a receiver or transceiver bind starts the account's delivery
// loop (or wakes it).
func (r *Router) HandleBound(s *session.Session, a *Account) {
	if !s.BindType().CanReceive() {
		return
	}
	r.startDelivery(a.SystemID)
}

// partSent settles a part the upstream accepted: the id map is written and the queue entry
// acknowledged in one write (Settle), and receipts that arrived before the mapping are forwarded.
func (r *Router) partSent(t *store.PartTask, upstream, upstreamID string) {
	r.stats.submit()
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	at := time.Now()
	m, early, err := r.st.Settle(ctx, t.Lease, store.PartUpdate{
		MessageID: t.MessageID, Part: t.Part, Upstream: upstream, UpstreamID: upstreamID, Status: pdu.ENROUTE, At: at,
	})
	if err != nil {
		// Not acknowledged: the entry is claimed again after the visibility time-out and sent again.
		// A duplicate is the price; losing the id map would lose the receipt.
		r.log.Error().Err(err).Str("message_id", t.MessageID).Int("part", t.Part).Str("upstream_id", upstreamID).
			Msg("submit result not recorded; the part will be sent again")
		return
	}
	// Receipts that came first were applied by the same update, each stamped with its arrival.
	stamps := []time.Time{at}
	for _, rc := range early {
		stamps = append(stamps, rc.Received)
	}
	r.stats.transition(m, stamps...)
	r.log.Debug().Str("message_id", t.MessageID).Int("part", t.Part).Str("upstream", upstream).
		Str("upstream_id", upstreamID).Msg("part accepted upstream")
	for _, rc := range early {
		r.log.Debug().Str("message_id", m.ID).Str("upstream_id", rc.UpstreamID).Msg("receipt that came before submit_sm_resp applied")
		if err := r.receiptCorrelated(ctx, m, rc); err != nil {
			r.log.Error().Err(err).Str("message_id", m.ID).Msg("early receipt not queued for the account")
		}
	}
}

// partFailed settles a part the upstream refused for good (or that could not be encoded): REJECTED;
// or that the client gave up on: EXPIRED when too old (ErrExpired), UNDELIVERABLE when sent too
// often (ErrAttemptsExhausted).
func (r *Router) partFailed(t *store.PartTask, upstream string, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	state, status := pdu.REJECTED, pdu.StatusOf(cause)
	switch {
	case errors.Is(cause, ErrExpired):
		state, status = pdu.EXPIRED, 0
	case errors.Is(cause, ErrAttemptsExhausted):
		state = pdu.UNDELIVERABLE
	}
	m, _, err := r.st.Settle(ctx, t.Lease, store.PartUpdate{
		MessageID: t.MessageID, Part: t.Part, Upstream: upstream, Status: state, Error: uint32(status),
	})
	if err != nil {
		r.log.Error().Err(err).Str("message_id", t.MessageID).Msg("refusal not recorded; the part will be tried again")
		return
	}
	r.stats.transition(m)
	r.log.Warn().Err(cause).Str("message_id", t.MessageID).Int("part", t.Part).Str("upstream", upstream).
		Stringer("state", state).Msg("part failed for good")
	// The ESME was told "accepted"; it learns of the failure the only way left, a failure receipt.
	rc := store.Receipt{MessageID: m.ID, Part: t.Part, Upstream: upstream, State: state, Error: uint32(status), Done: time.Now()}
	if err := r.receiptCorrelated(ctx, m, rc); err != nil {
		r.log.Error().Err(err).Str("message_id", m.ID).Msg("failure receipt not queued for the account")
	}
}

// HandleDeliver implements DeliverHandler, waiting for the answer.
func (r *Router) HandleDeliver(upstream string, req session.Request) pdu.CommandStatus {
	ch := make(chan pdu.CommandStatus, 1)
	r.HandleDeliverAsync(upstream, req, func(st pdu.CommandStatus) { ch <- st })
	return <-ch
}

// HandleDeliverAsync implements AsyncDeliverHandler: an upstream's deliver_sm is answered once what
// it carries is durable (a receipt recorded, an MO queued for its account), so the upstream keeps it
// until then. A store error is answered ESME_RX_T_APPN, which asks the upstream to retry later.
func (r *Router) HandleDeliverAsync(upstream string, req session.Request, respond func(pdu.CommandStatus)) {
	d, ok := req.Body.(*pdu.DeliverSM)
	if !ok {
		r.log.Info().Str("upstream", upstream).Stringer("command", req.Body.CommandID()).Msg("request from upstream not routed")
		respond(pdu.ESME_RINVCMDID)
		return
	}
	d = cloneDeliver(d)
	if dlr.IsReceipt(d.EsmClass) {
		go func() { respond(r.upstreamReceipt(upstream, d)) }()
		return
	}
	account, ok := r.MOAccount(d.DestinationAddr)
	if !ok {
		r.log.Info().Str("upstream", upstream).Str("dest", d.DestinationAddr).Msg("MO refused: no MO route")
		respond(pdu.ESME_RINVDSTADR)
		return
	}
	go func() { respond(r.upstreamMO(upstream, account, d)) }()
}

func (r *Router) upstreamMO(upstream, account string, d *pdu.DeliverSM) pdu.CommandStatus {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	del := &store.Delivery{
		Account: account, Kind: store.DeliveryMO,
		Source:      store.Address{TON: d.SourceAddrTON, NPI: d.SourceAddrNPI, Addr: d.SourceAddr},
		Destination: store.Address{TON: d.DestAddrTON, NPI: d.DestAddrNPI, Addr: d.DestinationAddr},
		ESMClass:    d.EsmClass, ProtocolID: d.ProtocolID, DataCoding: d.DataCoding,
		ShortMessage: d.ShortMessage, TLVs: d.Options, CreatedAt: time.Now(),
	}
	if err := r.st.EnqueueDelivery(ctx, del); err != nil {
		r.log.Error().Err(err).Str("upstream", upstream).Str("account", account).Msg("MO not queued; the upstream is asked to retry")
		return pdu.ESME_RX_T_APPN
	}
	r.stats.mo()
	r.events.publish(Event{Kind: EventMO, Account: account, MO: del, At: del.CreatedAt})
	r.startDeliveryIfBound(account)
	r.log.Debug().Str("upstream", upstream).Str("account", account).Msg("MO queued for the account")
	return pdu.ESME_ROK
}

func (r *Router) upstreamReceipt(upstream string, d *pdu.DeliverSM) pdu.CommandStatus {
	info, err := dlr.FromDeliverSM(d)
	if err != nil {
		// Answered OK all the same: refusing a receipt we cannot read only makes the upstream send it
		// again, forever.
		r.log.Warn().Err(err).Str("upstream", upstream).Msg("unreadable receipt dropped")
		return pdu.ESME_ROK
	}
	rc := &store.Receipt{
		Upstream: upstream, UpstreamID: info.MessageID, State: info.State, Error: receiptError(info),
		Submitted: info.Receipt.SubmitDate, Done: info.Receipt.DoneDate, Text: d.ShortMessage,
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	m, parked, err := r.st.AddReceipt(ctx, rc)
	switch {
	case errors.Is(err, store.ErrInvalid):
		r.log.Warn().Err(err).Str("upstream", upstream).Str("upstream_id", info.MessageID).Msg("receipt with an unusable id dropped")
		return pdu.ESME_ROK
	case err != nil:
		r.log.Error().Err(err).Str("upstream", upstream).Str("upstream_id", info.MessageID).Msg("receipt not recorded; the upstream is asked to retry")
		return pdu.ESME_RX_T_APPN
	}
	r.stats.receipt()
	if parked {
		r.log.Debug().Str("upstream", upstream).Str("upstream_id", info.MessageID).Msg("receipt parked until its submit_sm_resp is recorded")
		return pdu.ESME_ROK
	}
	r.stats.transition(m)
	if err := r.receiptCorrelated(ctx, m, *rc); err != nil {
		r.log.Error().Err(err).Str("message_id", m.ID).Msg("receipt not queued for the account; the upstream is asked to retry")
		return pdu.ESME_RX_T_APPN
	}
	return pdu.ESME_ROK
}

// receiptError reads the err: field (decimal as Appendix B shows it, else hex), or the network error
// code TLV.
func receiptError(info dlr.Info) uint32 {
	if e := info.Receipt.Err; e != "" {
		if n, err := strconv.ParseUint(e, 10, 32); err == nil {
			return uint32(n)
		}
		if n, err := strconv.ParseUint(e, 16, 32); err == nil {
			return uint32(n)
		}
	}
	if info.HasNetworkError {
		return uint32(info.NetworkError.Code)
	}
	return 0
}

// wantsReceipt reports whether registered_delivery asks for a receipt in state st.
func wantsReceipt(rd uint8, st pdu.MessageState) bool {
	if !st.Final() {
		return rd&pdu.RegisteredDeliveryIntermediate != 0
	}
	switch rd & pdu.RegisteredDeliveryReceiptMask {
	case pdu.RegisteredDeliveryReceiptFinal:
		return true
	case pdu.RegisteredDeliveryReceiptFailure:
		return st != pdu.DELIVERED
	}
	return false
}

// receiptCorrelated hands a receipt applied to m to the API subscribers and, when the message asked
// for one, queues a receipt deliver_sm for the account carrying our message id. A multi-part message
// gets one receipt, when its aggregate status becomes final.
func (r *Router) receiptCorrelated(ctx context.Context, m *store.Message, rc store.Receipt) error {
	rcCopy := rc
	r.events.publish(Event{Kind: EventReceipt, Account: m.Account, MessageID: m.ID, Receipt: &rcCopy, Status: m.Status, At: time.Now()})
	state := rc.State
	if len(m.Parts) > 1 {
		if !m.Status.Final() {
			return nil
		}
		state = m.Status
	}
	if !wantsReceipt(m.RegisteredDelivery, state) {
		return nil
	}
	d, err := receiptDeliver(m, rc, state)
	if err != nil {
		return err
	}
	if err := r.st.EnqueueDelivery(ctx, d); err != nil {
		return err
	}
	r.startDeliveryIfBound(m.Account)
	return nil
}

// receiptDeliver builds the receipt deliver_sm for the account: from the original destination to the
// original source, our id in the text and in receipted_message_id.
func receiptDeliver(m *store.Message, rc store.Receipt, state pdu.MessageState) (*store.Delivery, error) {
	rec := dlr.Receipt{Sub: 1, Dlvrd: 0, SubmitDate: m.CreatedAt, DoneDate: rc.Done, Err: fmt.Sprintf("%03d", min(rc.Error, 999))}
	if parsed, err := dlr.Parse(string(rc.Text)); err == nil {
		rec = parsed // the upstream's counts, dates and text, with our id and state below
		if rec.SubmitDate.IsZero() {
			rec.SubmitDate = m.CreatedAt
		}
	}
	if rec.DoneDate.IsZero() && state.Final() {
		rec.DoneDate = time.Now()
	}
	if state == pdu.DELIVERED && rec.Dlvrd <= 0 {
		rec.Dlvrd = 1
	}
	rec.ID = m.ID
	rec.Stat = dlr.StatFor(state)
	info := dlr.Info{MessageID: m.ID, State: state, Intermediate: !state.Final(), Receipt: rec}
	d := &pdu.DeliverSM{
		ServiceType:   m.ServiceType,
		SourceAddrTON: m.Destination.TON, SourceAddrNPI: m.Destination.NPI, SourceAddr: m.Destination.Addr,
		DestAddrTON: m.Source.TON, DestAddrNPI: m.Source.NPI, DestinationAddr: m.Source.Addr,
	}
	if err := info.ToDeliverSM(d); err != nil {
		return nil, fmt.Errorf("gateway: build receipt for %s: %w", m.ID, err)
	}
	return &store.Delivery{
		Account: m.Account, Kind: store.DeliveryReceipt, MessageID: m.ID,
		Source:      store.Address{TON: d.SourceAddrTON, NPI: d.SourceAddrNPI, Addr: d.SourceAddr},
		Destination: store.Address{TON: d.DestAddrTON, NPI: d.DestAddrNPI, Addr: d.DestinationAddr},
		ESMClass:    d.EsmClass, ProtocolID: d.ProtocolID, DataCoding: d.DataCoding,
		ShortMessage: d.ShortMessage, TLVs: d.Options, CreatedAt: time.Now(),
	}, nil
}

// start records the lifetime of the delivery loops.
func (r *Router) start(ctx context.Context) {
	r.mu.Lock()
	r.runCtx = ctx
	r.mu.Unlock()
}

// wait returns once every delivery loop has ended (after the start context ended).
func (r *Router) wait() { r.loops.Wait() }

// receivers returns the account's bound sessions that may be sent deliver_sm.
func (r *Router) receivers(account string) []*session.Session {
	if r.finder == nil {
		return nil
	}
	var out []*session.Session
	for _, s := range r.finder.SessionsFor(account) {
		if s.State() == session.StateBound && s.BindType().CanReceive() {
			out = append(out, s)
		}
	}
	return out
}

// startDeliveryIfBound starts (or wakes) the account's delivery loop when it has a receiver here.
func (r *Router) startDeliveryIfBound(account string) {
	if len(r.receivers(account)) > 0 {
		r.startDelivery(account)
	}
}

func (r *Router) startDelivery(account string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.runCtx == nil || r.runCtx.Err() != nil {
		return
	}
	if wake, ok := r.deliverers[account]; ok {
		select {
		case wake <- struct{}{}:
		default:
		}
		return
	}
	wake := make(chan struct{}, 1)
	r.deliverers[account] = wake
	r.loops.Add(1)
	go r.deliverLoop(r.runCtx, account, wake)
}

// deliverLoop claims the account's queued deliver_sm and sends them to its receiver binds, until the
// account has none left here (or the router stops).
func (r *Router) deliverLoop(ctx context.Context, account string, wake chan struct{}) {
	defer r.loops.Done()
	consumer := r.instance + "/deliver/" + account
	log := r.log.With().Str("account", account).Logger()
	log.Debug().Msg("delivery loop started")
	for i := 0; ; {
		rx := r.receivers(account)
		if len(rx) == 0 || ctx.Err() != nil {
			r.mu.Lock()
			if len(r.receivers(account)) == 0 || ctx.Err() != nil {
				delete(r.deliverers, account)
				r.mu.Unlock()
				log.Debug().Msg("delivery loop stopped: no receiver bind")
				return
			}
			r.mu.Unlock()
			continue
		}
		batch := 0
		for _, s := range rx {
			batch += s.Config().Window
		}
		ds, err := r.st.ClaimDeliveries(ctx, account, consumer, batch, r.cfg.DeliveryRetry)
		if err != nil {
			if ctx.Err() != nil {
				continue
			}
			log.Error().Err(err).Msg("claiming deliveries failed")
			sleepCtx(ctx, r.cfg.DeliveryRetry)
			continue
		}
		if len(ds) == 0 {
			select {
			case <-wake:
			default:
			}
			continue
		}
		for k, d := range ds {
			s := rx[i%len(rx)]
			i++
			// A window that stays full for a second ends the round; the rest is given back.
			sendCtx, cancel := context.WithTimeout(ctx, time.Second)
			err := s.SendAsync(sendCtx, deliverSMOf(d), func(resp session.Response, err error) {
				r.pool.do(func() { r.delivered(d, s, resp, err) })
			})
			cancel()
			if err != nil {
				for _, rest := range ds[k:] {
					r.giveBack(rest.Lease, r.cfg.DeliveryRetry)
				}
				break
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// postpone is giveBack without counting an attempt.
func (r *Router) postpone(l store.Lease, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.st.Postpone(ctx, l, delay); err != nil && !errors.Is(err, store.ErrNotFound) {
		r.log.Warn().Err(err).Stringer("queue", l.Queue).Msg("postpone failed; the entry returns after the visibility time-out")
	}
}

func (r *Router) giveBack(l store.Lease, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.st.GiveBack(ctx, l, delay); err != nil && !errors.Is(err, store.ErrNotFound) {
		r.log.Warn().Err(err).Stringer("queue", l.Queue).Msg("give back failed; the entry returns after the visibility time-out")
	}
}

func deliverSMOf(d *store.Delivery) *pdu.DeliverSM {
	return &pdu.DeliverSM{
		SourceAddrTON: d.Source.TON, SourceAddrNPI: d.Source.NPI, SourceAddr: d.Source.Addr,
		DestAddrTON: d.Destination.TON, DestAddrNPI: d.Destination.NPI, DestinationAddr: d.Destination.Addr,
		EsmClass: d.ESMClass, ProtocolID: d.ProtocolID, DataCoding: d.DataCoding,
		ShortMessage: d.ShortMessage, Options: pdu.Options(d.TLVs),
	}
}

// delivered settles the ESME's answer to one of our deliver_sm.
func (r *Router) delivered(d *store.Delivery, s *session.Session, resp session.Response, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	status := resp.Status
	if err != nil {
		status = pdu.StatusOf(err)
	}
	log := r.log.With().Str("account", d.Account).Uint64("session", s.ID()).Str("message_id", d.MessageID).Logger()
	if err == nil && status == pdu.ESME_ROK {
		if err := r.st.Ack(ctx, d.Lease); err != nil {
			log.Warn().Err(err).Msg("delivery not acknowledged; it may be delivered again")
		}
		log.Debug().Msg("delivered")
		return
	}
	temporary := errors.Is(err, session.ErrLost) || errors.Is(err, session.ErrResponseTimeout) || errors.Is(err, session.ErrClosed) || status.Temporary()
	if !temporary || d.Attempts+1 >= r.cfg.MaxDeliveryAttempts {
		log.Warn().Err(err).Stringer("status", status).Int("attempts", d.Attempts+1).Msg("deliver_sm dropped: the ESME refused it")
		if err := r.st.Ack(ctx, d.Lease); err != nil {
			log.Warn().Err(err).Msg("dropped delivery not acknowledged")
		}
		return
	}
	log.Info().Err(err).Stringer("status", status).Int("attempts", d.Attempts+1).Msg("deliver_sm not taken, will retry")
	r.giveBack(d.Lease, r.cfg.DeliveryRetry)
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
