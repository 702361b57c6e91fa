package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// ErrClientStopped: the client has been unbound (stopped) and binds no more.
var ErrClientStopped = errors.New("gateway: client stopped")

// ErrAttemptsExhausted: a job was sent ClientConfig.MaxAttempts times and never accepted or refused
// for good (temporary errors, lost PDUs). A Done error wraps it with the last attempt's error.
var ErrAttemptsExhausted = errors.New("gateway: attempts exhausted")

// ErrExpired: a job was accepted longer than ClientConfig.MaxAge ago (Job.Accepted), or its validity
// period ended (Job.Validity) while it was queued; it was not sent (again).
var ErrExpired = errors.New("gateway: expired in the queue")

// ClientState is where a client's supervisor is.
type ClientState uint8

// Client states.
const (
	ClientIdle       ClientState = iota // not started
	ClientConnecting                    // dialing and binding
	ClientWaiting                       // waiting for an outbind (no address to dial)
	ClientBound
	ClientBackingOff // waiting before the next attempt
	ClientStopped
	ClientStandby // another instance holds the bind (ownership.go)
)

var clientStateNames = [...]string{"idle", "connecting", "waiting for outbind", "bound", "backing off", "stopped", "standby"}

func (s ClientState) String() string {
	if int(s) < len(clientStateNames) {
		return clientStateNames[s]
	}
	return "unknown"
}

// ClientStatus is a snapshot of a client. The counters cover its whole life, across reconnects.
type ClientStatus struct {
	Name        string
	State       ClientState
	Since       time.Time     // when State was entered
	LastError   string        // why the last bind failed or ended; empty once bound again
	NextAttempt time.Time     // when backing off
	Session     *session.Info // the bound session, if any
	Queued      int
	BindsUp     int          // binds up now, of ClientConfig.Binds
	Slots       []BindStatus // each bind, by index
	// OutbindAddr is where the outbind listener (ClientConfig.OutbindListen) listens, with the port
	// it was given when the configured one is 0; empty when there is none.
	OutbindAddr string

	Binds      uint64 // successful binds
	BindErrors uint64 // failed dials or binds
	Submitted  uint64 // jobs queued
	Sent       uint64 // attempts written (retries included)
	Accepted   uint64 // jobs the upstream accepted
	Rejected   uint64 // jobs the upstream refused for good
	Throttled  uint64 // ESME_RTHROTTLED / ESME_RMSGQFUL answers, retried
	Requeued   uint64 // lost PDUs and timeouts put back in the queue
}

// BindStatus is one bind slot of an upstream.
type BindStatus struct {
	Index       int
	State       ClientState
	Since       time.Time
	LastError   string
	NextAttempt time.Time
	Session     uint64 // the bound session's id; 0 when not bound
}

// Client is the ESME role for one upstream: ClientConfig.Binds supervisors (bind slots 0..Binds-1),
// each of which dials, binds, pumps the shared queue into its own window, and reconnects with capped
// exponential back-off and full jitter when its bind fails or drops. The binds share the queue, the
// MaxTPS token bucket and the throttle pause (they belong to the upstream, not to a bind); each has its
// own window. The queue and counters survive reconnects; requests lost with a session go back to the
// queue.
type Client struct {
	cfg     ClientConfig
	log     zerolog.Logger
	queue   Queue
	mem     *MemoryQueue // queue, when Submit may feed it
	deliver DeliverHandler

	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	outbinds chan *session.Session
	started  atomic.Bool

	mu       sync.Mutex
	slots    []*bindSlot   // one per configured bind, by index
	up       int           // slots bound now
	boundCh  chan struct{} // closed while at least one slot is bound; replaced when none is
	outbindL net.Listener

	// tps is the upstream's MaxTPS as a token bucket, nil when uncapped. It belongs to the upstream,
	// not to a session: every bind of the upstream takes its tokens from it, across reconnects.
	tps *rate.Limiter

	// rewrite, when set, rewrites a request's addresses just before it is sent (the upstream's number
	// normalisation); it returns the body to send, never changing the one it is given.
	rewrite atomic.Pointer[func(pdu.Body) pdu.Body]

	throttleCur   atomic.Int64 // current throttle pause (ns); 0 when the upstream is not refusing
	throttleUntil atomic.Int64 // unix ns until which nothing new is sent

	binds, bindErrors, submitted, sent, accepted, rejected, throttled, requeued atomic.Uint64
}

// bindSlot is one of an upstream's binds: its supervisor's state, guarded by Client.mu. Slot i logs
// as bind=i; a consumer or lease name for it is "<instance>/<upstream>/<i>".
type bindSlot struct {
	i           int
	state       ClientState
	since       time.Time
	lastErr     error
	nextAttempt time.Time
	sess        *session.Session
	lease       *bindLease // this slot's lease among instances sharing the store; nil: always held
}

// NewClient checks cfg and returns a client; Start runs it. deliver may be nil for a transmitter (what
// the upstream delivers is then answered ESME_RX_T_APPN, so it retries later); queue nil means a
// MemoryQueue of cfg.QueueSize. Submit feeds a MemoryQueue only.
func NewClient(cfg ClientConfig, deliver DeliverHandler, queue Queue, log zerolog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if queue == nil {
		queue = NewMemoryQueue(cfg.QueueSize)
	}
	mem, _ := queue.(*MemoryQueue)
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg: cfg, log: log.With().Str("upstream", cfg.Name).Logger(), queue: queue, mem: mem, deliver: deliver,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), outbinds: make(chan *session.Session),
		boundCh: make(chan struct{}), tps: newTPSLimiter(cfg.MaxTPS),
	}
	now := time.Now()
	for i := range cfg.Binds {
		c.slots = append(c.slots, &bindSlot{i: i, state: ClientIdle, since: now})
	}
	return c, nil
}

// SetRewrite sets the hook that rewrites each request just before it is sent (number
// normalisation); it must return a new body rather than change the one it is given. nil removes it.
func (c *Client) SetRewrite(f func(pdu.Body) pdu.Body) {
	if f == nil {
		c.rewrite.Store(nil)
		return
	}
	c.rewrite.Store(&f)
}

// Name is the upstream's name (ClientConfig.Name).
func (c *Client) Name() string { return c.cfg.Name }

// Queue is the client's queue of pending jobs.
func (c *Client) Queue() Queue { return c.queue }

// Start opens the outbind listener, if configured, and starts the supervisor.
func (c *Client) Start() error {
	if !c.started.CompareAndSwap(false, true) {
		return errors.New("gateway: client already started")
	}
	if c.cfg.OutbindListen != "" {
		l, err := net.Listen("tcp", c.cfg.OutbindListen)
		if err != nil {
			return fmt.Errorf("gateway: outbind_listen: %w", err)
		}
		c.mu.Lock()
		c.outbindL = l
		c.mu.Unlock()
		go c.acceptOutbinds(l)
	}
	go c.run()
	return nil
}

// Bound reports whether at least one bind is up now.
func (c *Client) Bound() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up > 0
}

// allBound reports whether every bind slot is bound.
func (c *Client) allBound() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.up >= len(c.slots)
}

// Session is a bound session (the lowest bound slot's), or nil.
func (c *Client) Session() *session.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, sl := range c.slots {
		if sl.sess != nil {
			return sl.sess
		}
	}
	return nil
}

// Sessions are the bound sessions, by slot.
func (c *Client) Sessions() []*session.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*session.Session
	for _, sl := range c.slots {
		if sl.sess != nil {
			out = append(out, sl.sess)
		}
	}
	return out
}

// awaitBound waits until the client is bound, ctx ends, or the client stops.
func (c *Client) awaitBound(ctx context.Context) error {
	c.mu.Lock()
	ch, bound := c.boundCh, c.up > 0
	c.mu.Unlock()
	if bound {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClientStopped
	}
}

// Status returns a snapshot of the client. With several binds, State is the most advanced of theirs
// (bound when any is), LastError and NextAttempt those of the lowest slot not bound, Session the lowest
// bound slot's; Slots has each bind's own.
func (c *Client) Status() ClientStatus {
	c.mu.Lock()
	st := ClientStatus{Name: c.cfg.Name, BindsUp: c.up, Slots: make([]BindStatus, len(c.slots))}
	var s *session.Session
	best := -1
	for i, sl := range c.slots {
		bs := BindStatus{Index: sl.i, State: sl.state, Since: sl.since, NextAttempt: sl.nextAttempt}
		if sl.lastErr != nil {
			bs.LastError = sl.lastErr.Error()
		}
		if sl.sess != nil {
			bs.Session = sl.sess.ID()
			if s == nil {
				s = sl.sess
			}
		}
		st.Slots[i] = bs
		if best < 0 || stateRank(sl.state) > stateRank(c.slots[best].state) {
			best = i
		}
	}
	if best >= 0 {
		b := st.Slots[best]
		st.State, st.Since = b.State, b.Since
	}
	for _, b := range st.Slots {
		if b.State != ClientBound {
			st.LastError, st.NextAttempt = b.LastError, b.NextAttempt
			break
		}
	}
	if c.outbindL != nil {
		st.OutbindAddr = c.outbindL.Addr().String()
	}
	c.mu.Unlock()
	if s != nil {
		in := s.Info()
		st.Session = &in
	}
	st.Queued = c.queue.Len()
	st.Binds, st.BindErrors = c.binds.Load(), c.bindErrors.Load()
	st.Submitted, st.Sent, st.Accepted = c.submitted.Load(), c.sent.Load(), c.accepted.Load()
	st.Rejected, st.Throttled, st.Requeued = c.rejected.Load(), c.throttled.Load(), c.requeued.Load()
	return st
}

// stateRank orders states for Status: bound first, stopped last.
func stateRank(s ClientState) int {
	switch s {
	case ClientBound:
		return 5
	case ClientConnecting:
		return 4
	case ClientWaiting:
		return 3
	case ClientBackingOff:
		return 2
	case ClientIdle, ClientStandby:
		return 1
	}
	return 0
}

// Submit queues a request for the upstream (submit_sm, data_sm, submit_multi, query_sm, cancel_sm,
// replace_sm). done is called once when the upstream accepted or refused it for good, or the client
// gave up on it (ErrAttemptsExhausted, ErrExpired); throttling, temporary errors, timeouts and lost
// PDUs are retried up to MaxAttempts, so a job waits in the queue (bounded by QueueSize) rather than
// fail while the upstream is away.
func (c *Client) Submit(ctx context.Context, body pdu.Body, done func(session.Response, error)) error {
	if body == nil || body.CommandID().IsResponse() {
		return session.ErrInvalidResponse
	}
	switch body.CommandID() {
	case pdu.SubmitSMID, pdu.DataSMID, pdu.SubmitMultiID, pdu.QuerySMID, pdu.CancelSMID, pdu.ReplaceSMID:
	default:
		return fmt.Errorf("gateway: %v is not for an upstream queue", body.CommandID())
	}
	if !c.cfg.BindType.CanSubmit() {
		return fmt.Errorf("gateway: upstream %s binds as %v and cannot submit", c.cfg.Name, c.cfg.BindType)
	}
	select {
	case <-c.done:
		return ErrClientStopped
	default:
	}
	if c.mem == nil {
		return ErrNoSubmit
	}
	now := time.Now()
	j := &Job{Body: body, Done: done, Accepted: now}
	if sm, ok := body.(*pdu.SubmitSM); ok {
		// An unparsable validity_period is the upstream's to refuse, as before.
		j.Validity, _ = pdu.ParseTime(sm.ValidityPeriod, now)
	}
	if err := c.mem.Push(ctx, j); err != nil {
		return err
	}
	c.submitted.Add(1)
	return nil
}

// Unbind stops the client: no new attempts, the bound session (if any) is unbound gracefully, the
// outbind listener closes. Jobs still queued stay in the queue. It returns when the supervisor has
// stopped or ctx ends.
func (c *Client) Unbind(ctx context.Context) error {
	ss := c.Sessions()
	c.mu.Lock()
	l := c.outbindL
	c.mu.Unlock()
	c.cancel()
	if l != nil {
		l.Close()
	}
	errs := make([]error, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Go(func() { errs[i] = s.Unbind(ctx) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if !c.started.Load() {
		for _, sl := range c.slots {
			c.setState(sl, ClientStopped, nil)
		}
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

func (c *Client) setState(sl *bindSlot, st ClientState, err error) {
	c.mu.Lock()
	sl.state, sl.since = st, time.Now()
	if err != nil {
		sl.lastErr = err
	}
	c.mu.Unlock()
}

// backoff is the wait before attempt n (1-based) after failures: ReconnectMin doubled per failure,
// capped at ReconnectMax, with full jitter.
func (c *Client) backoff(n int) time.Duration {
	d := c.cfg.ReconnectMin
	for i := 1; i < n && d < c.cfg.ReconnectMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.ReconnectMax)
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// run starts one supervisor per bind slot and closes done when all have stopped.
func (c *Client) run() {
	var wg sync.WaitGroup
	for _, sl := range c.slots {
		wg.Go(func() { c.supervise(sl) })
	}
	wg.Wait()
	close(c.done)
}

// supervise keeps bind slot sl bound until the client stops.
func (c *Client) supervise(sl *bindSlot) {
	log := c.log.With().Int("bind", sl.i).Logger()
	defer c.setState(sl, ClientStopped, nil)
	defer c.disown(sl)
	failures := 0
	var pending *session.Session // bound through an outbind while we were waiting
	for c.ctx.Err() == nil {
		if !c.own(sl) { // waits while another instance holds this bind slot
			return
		}
		s, err := pending, error(nil)
		pending = nil
		switch {
		case s != nil:
		case c.cfg.Address != "":
			c.setState(sl, ClientConnecting, nil)
			s, err = c.connect()
		default:
			c.setState(sl, ClientWaiting, nil)
			select {
			case s = <-c.outbinds:
			case <-c.ctx.Done():
				return
			}
		}
		if err == nil {
			failures = 0
			c.serve(sl, s, log)
			err = s.Err()
			if c.ctx.Err() != nil {
				return
			}
			log.Warn().AnErr("reason", err).Msg("upstream bind ended")
		} else {
			c.bindErrors.Add(1)
			log.Warn().Err(err).Msg("upstream bind failed")
		}
		c.disown(sl) // another instance may bind this slot while this one backs off
		failures++
		d := c.backoff(failures)
		c.mu.Lock()
		sl.state, sl.since, sl.lastErr, sl.nextAttempt = ClientBackingOff, time.Now(), err, time.Now().Add(d)
		c.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case pending = <-c.outbinds:
		case <-c.ctx.Done():
		}
		t.Stop()
	}
}

// connect dials and binds.
func (c *Client) connect() (*session.Session, error) {
	conn, err := dial(c.ctx, c.cfg.Address, c.cfg.TLS, c.cfg.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", c.cfg.Address, err)
	}
	s := session.New(conn, session.Options{Role: session.RoleESME, Handler: &clientSession{c: c}, Config: c.cfg.Session, Logger: c.log})
	if _, err := s.Bind(c.ctx, c.cfg.BindType, c.bindParams()); err != nil {
		s.Close()
		<-s.Done()
		return nil, fmt.Errorf("bind: %w", err)
	}
	return s, nil
}

func (c *Client) bindParams() session.BindParams {
	return session.BindParams{SystemID: c.cfg.SystemID, Password: c.cfg.Password, SystemType: c.cfg.SystemType, AddressRange: c.cfg.AddressRange}
}

// serve runs one bound session of slot sl until it ends: the pump feeds it from the queue.
func (c *Client) serve(sl *bindSlot, s *session.Session, log zerolog.Logger) {
	c.binds.Add(1)
	c.mu.Lock()
	sl.sess = s
	// A bind that holds again clears why the previous one failed or ended.
	sl.state, sl.since, sl.nextAttempt, sl.lastErr = ClientBound, time.Now(), time.Time{}, nil
	c.up++
	if c.up == 1 {
		close(c.boundCh)
	}
	c.mu.Unlock()
	log.Info().Uint64("session", s.ID()).Msg("upstream bound")

	if c.cfg.BindType.CanSubmit() {
		ctx, cancel := context.WithCancel(c.ctx)
		go func() {
			select {
			case <-s.Done():
			case <-ctx.Done():
			}
			cancel()
		}()
		c.pump(ctx, s)
		cancel()
	}
	select {
	case <-s.Done():
	case <-c.ctx.Done():
		// Stopping: Unbind may have run before this session was bound, so unbind it here too (a
		// second Unbind just waits for the first).
		s.Unbind(context.Background())
	}
	<-s.Done()

	c.mu.Lock()
	sl.sess = nil
	c.up--
	if c.up == 0 {
		c.boundCh = make(chan struct{})
	}
	c.mu.Unlock()
}

// pump moves jobs from the queue into the session's window until ctx ends (the session ended or the
// client is stopping). SendAsyncTo waits while the window is full, which is the back-pressure.
func (c *Client) pump(ctx context.Context, s *session.Session) {
	sid := strconv.FormatUint(s.ID(), 10)
	for {
		j, err := c.queue.Pop(ctx)
		if err != nil {
			return
		}
		if err := c.expired(j, time.Now()); err != nil {
			c.rejected.Add(1)
			j.end(session.Response{}, err)
			continue
		}
		// The pause is checked after Pop: a throttled job is requeued while we wait in Pop.
		if !c.throttlePause(ctx) || !c.waitTPS(ctx) {
			c.queue.Requeue(j, RequeueUnsent, 0)
			return
		}
		j.Attempts++
		j.Session = sid
		c.sent.Add(1)
		body := j.Body
		if rw := c.rewrite.Load(); rw != nil {
			body = (*rw)(body)
		}
		j.client = c
		// A job its queue reuses once it ended is pinned while the session reads it: the response
		// (or the session's end) may complete it before SendAsyncTo returns, and a failed send
		// still uses it below.
		pin, _ := j.ender.(jobPinner)
		if pin != nil {
			pin.pin()
		}
		stop := false
		if err := s.SendAsyncTo(ctx, body, (*sentJob)(j)); err != nil {
			stop = c.unsent(ctx, j, err)
		}
		if pin != nil {
			pin.unpin()
		}
		if stop {
			return
		}
	}
}

// unsent handles a job SendAsyncTo refused with err, and reports whether the pump must stop: the
// session or the client ended, and the job goes back to the queue; or it can never be encoded, and
// is rejected.
func (c *Client) unsent(ctx context.Context, j *Job, err error) bool {
	j.Attempts--
	c.sent.Add(^uint64(0))
	if ctx.Err() != nil || errors.Is(err, session.ErrClosed) || errors.Is(err, session.ErrNotBound) {
		c.queue.Requeue(j, RequeueUnsent, 0)
		return true
	}
	c.log.Warn().Err(err).Msg("job cannot be encoded; rejected")
	c.rejected.Add(1)
	j.end(session.Response{}, err)
	return false
}

// expired says why j is not to be sent any more: older than MaxAge, or past its validity period.
func (c *Client) expired(j *Job, now time.Time) error {
	if !j.Validity.IsZero() && !now.Before(j.Validity) {
		return fmt.Errorf("%w: validity period ended %v ago", ErrExpired, now.Sub(j.Validity).Round(time.Millisecond))
	}
	if age := now.Sub(j.Accepted); c.cfg.MaxAge > 0 && !j.Accepted.IsZero() && age > c.cfg.MaxAge {
		return fmt.Errorf("%w: accepted %v ago", ErrExpired, age.Round(time.Second))
	}
	return nil
}
