package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/dlr"
)

// ErrNoBind is returned by Run when no bind succeeded and no outbind listener could make one.
var ErrNoBind = errors.New("load: no bind succeeded")

// fleet is one run: the configuration, the shared budget and rate, and the members.
type fleet struct {
	cfg   Config
	tmpls [numKinds][]template
	pick  []Kind // the mix, one entry per unit of weight
	lim   *rate.Limiter
	start time.Time

	claimed atomic.Int64 // messages claimed by senders (may overshoot Messages by one per sender)
	ctr     counters     // everything the members count, shared
	lat     hist         // submit_sm to submit_sm_resp

	sendCtx context.Context // ends when sending must stop (Duration, the caller's context)

	mu        sync.Mutex
	members   []*member
	closed    bool // no sender starts any more
	senders   sync.WaitGroup
	active    atomic.Int32 // senders running
	bindErrs  []string
	waiting   []*session.Session // outbind connections, closed at the end if they never bound
	outbinds  atomic.Int64       // outbind PDUs received
	outBound  atomic.Int64       // binds made back after an outbind
	lastResp  atomic.Int64       // when the last response came, since start
	firstSend atomic.Int64       // when the first submit_sm went out, since start; -1 before
}

// counters are the fleet's totals, updated with atomics from every session's reader.
type counters struct {
	messages, sent, acked, timeouts, lost, sendErrs atomic.Int64
	receipts, receiptsBad, otherDeliver             atomic.Int64
	byState                                         [9]atomic.Int64 // receipts by pdu.MessageState (0: unknown)

	mu       sync.Mutex
	byStatus map[pdu.CommandStatus]int64 // error responses
}

func (c *counters) refused(st pdu.CommandStatus) {
	c.mu.Lock()
	if c.byStatus == nil {
		c.byStatus = map[pdu.CommandStatus]int64{}
	}
	c.byStatus[st]++
	c.mu.Unlock()
}

// member is one bind of the fleet and its session's Handler.
type member struct {
	session.BaseHandler
	f       *fleet
	s       *session.Session
	outbind bool // born from an outbind

	// The sender's own: its random source, the current draw and its wires by kind and part.
	rng   *rand.Rand
	cur   draw
	wires [numKinds][]wire

	inflight atomic.Int64 // submit_sm sent and not answered yet
}

// Run runs the fleet until Messages are sent and answered (and receipts awaited), Duration ends or
// ctx is done, and reports. The error is set when the configuration is invalid or no bind
// succeeded; the report is then as far as the run got. Report.Check says whether a run that did
// happen went well.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Report{}, err
	}
	f := &fleet{cfg: cfg, start: time.Now()}
	f.firstSend.Store(-1)
	var err error
	if f.tmpls, err = buildTemplates(&f.cfg); err != nil {
		return Report{}, err
	}
	for _, p := range cfg.Mix {
		for range p.Weight {
			f.pick = append(f.pick, p.Kind)
		}
	}
	if cfg.Rate > 0 {
		burst := max(1, int(cfg.Rate/50)) // 20ms worth: smooth, yet cheap at high rates
		f.lim = rate.NewLimiter(rate.Limit(cfg.Rate), burst)
	}
	sendCtx, cancelSend := context.WithCancel(ctx)
	defer cancelSend()
	if cfg.Duration > 0 {
		var c context.CancelFunc
		sendCtx, c = context.WithTimeout(sendCtx, cfg.Duration)
		defer c()
	}
	f.sendCtx = sendCtx

	stopProgress := f.progressLoop()
	defer stopProgress()

	var ln net.Listener
	if cfg.OutbindListen != "" {
		ln, err = net.Listen("tcp", cfg.OutbindListen)
		if err != nil {
			return f.report(), fmt.Errorf("load: outbind_listen: %w", err)
		}
		defer ln.Close()
		if cfg.OutbindReady != nil {
			cfg.OutbindReady(ln.Addr().String())
		}
		go f.acceptOutbinds(ln)
	}

	// Dial and bind every member at once, then start their senders together.
	var wg sync.WaitGroup
	dialed := make([]*member, cfg.Binds)
	for i := range dialed {
		wg.Go(func() { dialed[i] = f.dial(ctx) })
	}
	wg.Wait()
	bound := 0
	for _, m := range dialed {
		if m != nil {
			bound++
			f.join(m)
		}
	}
	if bound == 0 && ln == nil {
		stopProgress()
		return f.report(), fmt.Errorf("%w: %s", ErrNoBind, firstOr(f.bindErrs, "no binds asked for"))
	}

	f.waitSending(ln != nil)
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.senders.Wait()
	f.waitInflight(ctx)
	f.waitReceipts(ctx)
	if ln != nil {
		ln.Close()
	}
	f.unbindAll(ctx)
	f.mu.Lock()
	for _, s := range f.waiting {
		if s.State() == session.StateOpen {
			s.Close()
		}
	}
	f.mu.Unlock()
	stopProgress()
	r := f.report()
	if r.Binds.Bound == 0 && r.Outbinds.Bound == 0 {
		return r, fmt.Errorf("%w: %s", ErrNoBind, firstOr(f.bindErrs, "no outbind came"))
	}
	return r, nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// newMember prepares a member's sender state: its random source and wires.
func (f *fleet) newMember() *member {
	m := &member{f: f}
	m.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	m.cur.ref = byte(m.rng.Uint32())
	for k := range f.tmpls {
		m.wires[k] = make([]wire, len(f.tmpls[k]))
		for i := range f.tmpls[k] {
			m.wires[k][i] = wire{t: &f.tmpls[k][i], cur: &m.cur, n: f.cfg.DestDigits}
		}
	}
	return m
}

func (f *fleet) sessionOptions(m *member) session.Options {
	return session.Options{Role: session.RoleESME, Handler: m, Config: f.cfg.Session, Logger: f.cfg.Logger}
}

func (f *fleet) bindParams() session.BindParams {
	return session.BindParams{SystemID: f.cfg.SystemID, Password: f.cfg.Password, SystemType: f.cfg.SystemType}
}

// dial connects and binds one member; nil when that failed (the error is kept for the report).
func (f *fleet) dial(ctx context.Context) *member {
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if f.cfg.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: f.cfg.TLS}
		conn, err = td.DialContext(ctx, "tcp", f.cfg.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", f.cfg.Addr)
	}
	if err != nil {
		f.bindFailed(fmt.Errorf("dial %s: %w", f.cfg.Addr, err))
		return nil
	}
	m := f.newMember()
	m.s = session.New(conn, f.sessionOptions(m))
	bctx, cancel := context.WithTimeout(ctx, f.cfg.Session.WithDefaults().ResponseTimeout)
	defer cancel()
	if _, err := m.s.Bind(bctx, f.cfg.BindType, f.bindParams()); err != nil {
		m.s.Abort()
		f.bindFailed(fmt.Errorf("bind %s as %q: %w", f.cfg.Addr, f.cfg.SystemID, err))
		return nil
	}
	return m
}

func (f *fleet) bindFailed(err error) {
	f.cfg.Logger.Warn().Err(err).Msg("bind failed")
	f.mu.Lock()
	f.bindErrs = append(f.bindErrs, err.Error())
	f.mu.Unlock()
}

// join adds a bound member to the fleet and starts its sender, unless sending is over or the bind
// cannot submit.
func (f *fleet) join(m *member) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = append(f.members, m)
	if f.closed || !m.s.BindType().CanSubmit() || f.sendCtx.Err() != nil {
		return
	}
	f.active.Add(1)
	f.senders.Go(func() {
		defer f.active.Add(-1)
		m.send()
	})
}

// waitSending returns when sending is over: every message claimed and no sender left, or no sender
// left at all and none can join, or the send context ended.
func (f *fleet) waitSending(canJoin bool) {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-f.sendCtx.Done():
			return
		case <-t.C:
		}
		if f.active.Load() > 0 {
			continue
		}
		if f.cfg.Messages > 0 && f.claimed.Load() >= int64(f.cfg.Messages) {
			return
		}
		f.mu.Lock()
		started := len(f.members) > 0
		f.mu.Unlock()
		// Senders that ran and stopped before the budget was spent: their sessions ended.
		if !canJoin && started && f.anySubmitter() {
			return
		}
	}
}

func (f *fleet) anySubmitter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		if m.s.BindType().CanSubmit() {
			return true
		}
	}
	return false
}

// waitInflight waits for the answers to what is in flight; the session's response timeout bounds it.
func (f *fleet) waitInflight(ctx context.Context) {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for {
		pending := false
		f.mu.Lock()
		for _, m := range f.members {
			if m.inflight.Load() > 0 {
				pending = true
			}
		}
		f.mu.Unlock()
		if !pending {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// waitReceipts waits up to WaitReceipts for one receipt per acknowledged submit_sm.
func (f *fleet) waitReceipts(ctx context.Context) {
	if f.cfg.WaitReceipts <= 0 {
		return
	}
	deadline := time.NewTimer(f.cfg.WaitReceipts)
	defer deadline.Stop()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for f.ctr.receipts.Load() < f.ctr.acked.Load() {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-t.C:
		}
	}
}

// unbindAll ends every member's session gracefully, all at once.
func (f *fleet) unbindAll(ctx context.Context) {
	f.mu.Lock()
	ms := append([]*member(nil), f.members...)
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*f.cfg.Session.WithDefaults().UnbindTimeout)
			defer cancel()
			if err := m.s.Unbind(uctx); err != nil && !errors.Is(err, session.ErrClosed) {
				f.cfg.Logger.Debug().Err(err).Msg("unbind")
			}
		})
	}
	wg.Wait()
}

// send is a member's sender: it claims messages from the fleet's budget and sends their parts, each
// waiting for the rate and a window slot, until the budget, the send context or the session ends.
func (m *member) send() {
	f := m.f
	ctx := f.sendCtx
	limit := int64(f.cfg.Messages)
	for ctx.Err() == nil {
		if limit > 0 && f.claimed.Add(1) > limit {
			return
		}
		k := f.pick[0]
		if len(f.pick) > 1 {
			k = f.pick[m.rng.IntN(len(f.pick))]
		}
		m.newDraw()
		ws := m.wires[k]
		for i := range ws {
			if f.lim != nil {
				if err := f.lim.Wait(ctx); err != nil {
					return
				}
			}
			m.inflight.Add(1)
			if err := m.s.SendAsync(ctx, &ws[i], nil); err != nil {
				m.inflight.Add(-1)
				if ctx.Err() == nil {
					f.ctr.sendErrs.Add(1)
					f.cfg.Logger.Debug().Err(err).Msg("send failed; the sender stops")
				}
				return
			}
			if i == 0 {
				f.ctr.messages.Add(1)
			}
			if f.ctr.sent.Add(1) == 1 {
				f.firstSend.CompareAndSwap(-1, int64(time.Since(f.start)))
			}
		}
	}
}

// newDraw picks the next message's destination digits and concatenation reference.
func (m *member) newDraw() {
	m.cur.ref++
	n := m.f.cfg.DestDigits
	for i := 0; i < n; {
		v := m.rng.Uint64()
		for j := 0; j < 19 && i < n; j++ {
			m.cur.digits[i] = byte('0' + v%10)
			v /= 10
			i++
		}
	}
}

// HandleResponse counts the answer to one of our submit_sm and its latency.
func (m *member) HandleResponse(_ *session.Session, req session.Request, resp session.Response) {
	now := time.Now()
	m.inflight.Add(-1)
	f := m.f
	f.lastResp.Store(int64(now.Sub(f.start)))
	f.lat.record(now.Sub(req.Sent))
	if resp.Status == pdu.ESME_ROK {
		f.ctr.acked.Add(1)
		return
	}
	f.ctr.refused(resp.Status)
}

// HandleResponseTimeout counts a submit_sm that got no answer in time.
func (m *member) HandleResponseTimeout(*session.Session, session.Request) {
	m.inflight.Add(-1)
	m.f.ctr.timeouts.Add(1)
}

// Terminate counts the submit_sm the session ended without an answer to.
func (m *member) Terminate(_ *session.Session, lost []session.Request) {
	m.inflight.Add(-int64(len(lost)))
	m.f.ctr.lost.Add(int64(len(lost)))
}

// HandleClosed is quiet: closing is the normal end of a member.
func (m *member) HandleClosed(s *session.Session, reason error) {
	s.Logger().Debug().AnErr("reason", reason).Msg("session closed")
}

// HandleRequest answers receipts (and MO) with ESME_ROK, counting them; an outbind is bound back.
func (m *member) HandleRequest(s *session.Session, req session.Request) {
	switch b := req.Body.(type) {
	case *pdu.DeliverSM:
		m.receipt(b)
		_ = s.Respond(req, pdu.ESME_ROK, nil)
	case *pdu.Outbind:
		m.f.outbinds.Add(1)
		// Bind waits for its answer, which this reader reads: it cannot run here.
		go m.bindBack(s)
	default:
		m.BaseHandler.HandleRequest(s, req)
	}
}

func (m *member) receipt(d *pdu.DeliverSM) {
	c := &m.f.ctr
	if !dlr.IsReceipt(d.EsmClass) {
		c.otherDeliver.Add(1)
		return
	}
	c.receipts.Add(1)
	// The state's TLV is read first: it costs no parsing of the text.
	st, ok := d.Options.MessageState()
	if !ok || st == 0 {
		info, err := dlr.FromDeliverSM(d)
		if err != nil {
			c.receiptsBad.Add(1)
		}
		st = info.State
	}
	if int(st) >= len(c.byState) {
		st = 0
	}
	c.byState[st].Add(1)
}

// acceptOutbinds serves the outbind listener until it is closed: each connection is a session that
// waits (up to its bind timeout) for an outbind.
func (f *fleet) acceptOutbinds(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		m := f.newMember()
		m.outbind = true
		// m.s is set by bindBack, from the session the outbind came on: the reader may run first.
		s := session.New(conn, f.sessionOptions(m))
		f.mu.Lock()
		f.waiting = append(f.waiting, s)
		f.mu.Unlock()
	}
}

// bindBack answers an outbind with a bind on the same connection and joins the fleet.
func (m *member) bindBack(s *session.Session) {
	f := m.f
	m.s = s
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.Session.WithDefaults().ResponseTimeout)
	defer cancel()
	if _, err := m.s.Bind(ctx, f.cfg.BindType, f.bindParams()); err != nil {
		m.s.Abort()
		f.bindFailed(fmt.Errorf("bind back after outbind from %s: %w", m.s.RemoteAddr(), err))
		return
	}
	f.outBound.Add(1)
	f.cfg.Logger.Info().Stringer("remote", m.s.RemoteAddr()).Msg("bound back after outbind")
	f.join(m)
}
