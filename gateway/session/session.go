package session

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/pdu"
)

// Role is which side of SMPP a session plays.
type Role uint8

const (
	// RoleSMSC is the server side: the peer binds to us and submits; we deliver.
	RoleSMSC Role = iota
	// RoleESME is the client side: we bind to the peer and submit; it delivers.
	RoleESME
)

func (r Role) String() string {
	if r == RoleSMSC {
		return "smsc"
	}
	return "esme"
}

// State is a session's place in its life: open (connected, not bound), bound, unbinding, closed.
type State uint32

// Session states.
const (
	StateOpen State = iota
	StateBound
	StateUnbinding
	StateClosed
)

var stateNames = [...]string{"open", "bound", "unbinding", "closed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Options are what New needs besides the connection.
type Options struct {
	Role    Role
	Handler Handler // nil means BaseHandler
	Config  Config
	Logger  zerolog.Logger
	// SystemID is ours, sent in bind_resp (SMSC role). Empty means "smppgw".
	SystemID string
}

// BindParams are the fields of a bind request we send.
type BindParams struct {
	SystemID     string
	Password     string
	SystemType   string
	AddrTON      uint8
	AddrNPI      uint8
	AddressRange string
}

// Info is a snapshot of a session, taken without stopping it.
type Info struct {
	ID             uint64
	Role           Role
	RemoteAddr     string
	LocalAddr      string
	SystemID       string // the account's system_id: the peer's (SMSC role) or ours (ESME role)
	PeerSystemID   string // the system_id the other side calls itself in bind_resp (ESME role)
	BindType       BindType
	State          State
	Started        time.Time
	PDUsIn         uint64
	PDUsOut        uint64
	WindowUsed     int // our requests awaiting a response
	WindowSize     int
	InboundPending int // the peer's requests we have not answered yet
	InboundLimit   int
	Timeouts       uint64 // our requests that got no response in time
	LateResponses  uint64 // responses that matched nothing pending (after a timeout, or bogus)
	Lost           uint64 // our requests still pending when the session ended
	CloseReason    string // set once closed

	// Counts by kind since the session began: "In" read from the peer, "Out" written to it.
	RequestsIn, RequestsOut             uint64
	ResponsesIn, ResponsesOut           uint64 // generic_nack included
	ResponseErrorsIn, ResponseErrorsOut uint64 // responses with a non-OK command_status
	SubmitSMIn, SubmitSMOut             uint64
	SubmitSMErrors                      uint64 // submit_sm_resp with an error status (ours or the peer's)
	DeliverSMIn, DeliverSMOut           uint64
	DeliverSMErrors                     uint64 // deliver_sm_resp with an error status (ours or the peer's)
	EnquireLinks                        uint64 // enquire_link requests, both ways
	Throttled                           uint64 // responses carrying ESME_RTHROTTLED, either way
	Unparsable                          uint64 // PDUs read that could not be decoded

	TLS              bool      // the connection is TLS
	BoundAt          time.Time // when the bind succeeded; zero before
	LastActivity     time.Time // when the last PDU was read; zero before any
	InterfaceVersion uint8     // the interface_version of the bind request (0x34 for SMPP 3.4); 0 before
}

var sessionIDs atomic.Uint64

// waiter carries one response to a goroutine blocked in Send; pooled, with a channel made once.
type waiter struct {
	ch   chan struct{}
	resp Response
	err  error
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan struct{}, 1)} }}

func getWaiter() *waiter { return waiterPool.Get().(*waiter) }

func putWaiter(w *waiter) {
	w.resp, w.err = Response{}, nil
	waiterPool.Put(w)
}

// Session is one SMPP connection: a reader goroutine that decodes and dispatches, a writer goroutine
// that flushes coalesced writes, a window of our pending requests with one expiry timer, a limit on the
// peer's unanswered requests, enquire_link when idle, and a bind state checked on every PDU.
// All methods are safe for concurrent use.
type Session struct {
	id      uint64
	role    Role
	conn    net.Conn
	h       Handler
	cfg     Config
	log     zerolog.Logger
	localID string
	started time.Time
	remote  string
	local   string

	state    atomic.Uint32 // State
	bindType atomic.Uint32 // BindType
	binding  atomic.Bool   // a Bind call is in progress

	// mu guards the window, the expiry timer's arming and the identity strings.
	mu          sync.Mutex
	win         window
	timerArmed  bool
	systemID    string
	peerID      string
	closeReason error

	sem     chan struct{} // window slots of user requests: a token per request in flight
	expiry  *time.Timer
	enquire *time.Timer
	bindTmr *time.Timer
	lastIn  atomic.Int64 // when the latest burst of PDUs was read: time since started (monotonic)
	enqBusy atomic.Bool  // an enquire_link of ours is pending

	out outbound // the write side: the outgoing buffer and the writer

	inPending atomic.Int32
	inWake    chan struct{}
	readAt    time.Time // when the current burst of PDUs was read; the reader's own

	// Our unbind (see Unbind): quiesce holds the peer's new requests until the unbind is written,
	// unbindOut is closed once it is, unbindAcked is set once the peer answered it, and inIdle tells
	// Unbind that the last of the peer's requests has been answered.
	quiesce     atomic.Bool
	unbindOut   chan struct{}
	unbindAcked atomic.Bool
	inIdle      chan struct{}

	pdusIn, timeouts, late, lost atomic.Uint64
	ctr                          sessionCounters

	closeOnce sync.Once
	closing   chan struct{}
	done      chan struct{}
}

// New starts a session on conn and returns it; it runs until the connection ends or it is
// unbound or closed. A server accepts a connection and calls New with RoleSMSC; a client dials,
// calls New with RoleESME and then Bind.
func New(conn net.Conn, o Options) *Session {
	cfg := o.Config.WithDefaults()
	h := o.Handler
	if h == nil {
		h = BaseHandler{}
	}
	id := sessionIDs.Add(1)
	s := &Session{
		id:      id,
		role:    o.Role,
		conn:    conn,
		h:       h,
		cfg:     cfg,
		localID: o.SystemID,
		started: time.Now(),
		remote:  addrString(conn.RemoteAddr()),
		local:   addrString(conn.LocalAddr()),
		win:     newWindow(cfg.Window),
		sem:     make(chan struct{}, cfg.Window),
		inWake:  make(chan struct{}, 1),
		inIdle:  make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.unbindOut = make(chan struct{})
	s.out.init(conn, s.started, cfg.WriteTimeout)
	if s.localID == "" {
		s.localID = "smppgw"
	}
	s.log = o.Logger.With().Uint64("session", id).Str("role", o.Role.String()).Str("remote", s.remote).Logger()
	s.expiry = time.AfterFunc(time.Hour, s.expire)
	s.expiry.Stop()
	s.bindTmr = time.AfterFunc(cfg.BindTimeout, func() {
		if s.State() == StateOpen {
			s.log.Info().Dur("bind_timeout", cfg.BindTimeout).Msg("closing unbound connection")
			s.shutdown(ErrBindTimeout, true)
		}
	})
	if cfg.EnquireLink > 0 {
		// Armed under mu so that idleCheck, which takes mu, sees the field set.
		s.enquire = time.AfterFunc(time.Hour, s.idleCheck)
		s.mu.Lock()
		s.enquire.Reset(cfg.EnquireLink)
		s.mu.Unlock()
	}
	if cfg.Meter != nil {
		cfg.Meter.start(s)
	}
	go s.out.loop(s.writeFailed)
	go s.readLoop()
	return s
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// ID is the session's process-unique id.
func (s *Session) ID() uint64 { return s.id }

// State is the session's current state.
func (s *Session) State() State { return State(s.state.Load()) }

// BindType is how the session is bound (BindNone before the bind).
func (s *Session) BindType() BindType { return BindType(s.bindType.Load()) }

// SystemID is the account's system_id once bound: the peer's in the SMSC role, ours in the ESME role.
func (s *Session) SystemID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.systemID
}

// RemoteAddr is the peer's address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Logger is the session's logger, carrying its id and remote address.
func (s *Session) Logger() *zerolog.Logger { return &s.log }

// Config is the session's configuration, defaults applied.
func (s *Session) Config() Config { return s.cfg }

// Started is when the session began (the connection was accepted or dialed).
func (s *Session) Started() time.Time { return s.started }

// PeerGone reports whether the peer has closed or reset the connection, without reading from it, so
// that a Handler deciding a bind on the reader can give up on a peer that left.
func (s *Session) PeerGone() bool { return peerGone(s.conn) }

// Closing is closed once the session starts to end (Close, Abort, an unbind, a socket error, the bind
// timeout), before Done: a Handler callback running on the reader can stop waiting then.
func (s *Session) Closing() <-chan struct{} { return s.closing }

// Done is closed once the session has ended and its Handler has been told (HandleClosed, Terminate).
func (s *Session) Done() <-chan struct{} { return s.done }

// Err is why the session ended (nil while it runs): see Handler.HandleClosed.
func (s *Session) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closeReason
}

// Info returns a snapshot of the session's identity and counters.
func (s *Session) Info() Info {
	s.mu.Lock()
	sys, peer, reason := s.systemID, s.peerID, s.closeReason
	s.mu.Unlock()
	in := Info{
		ID: s.id, Role: s.role, RemoteAddr: s.remote, LocalAddr: s.local,
		SystemID: sys, PeerSystemID: peer, BindType: s.BindType(), State: s.State(), Started: s.started,
		PDUsIn: s.pdusIn.Load(), PDUsOut: s.out.pdus.Load(),
		WindowUsed: len(s.sem), WindowSize: cap(s.sem),
		InboundPending: int(s.inPending.Load()), InboundLimit: s.cfg.InboundLimit,
		Timeouts: s.timeouts.Load(), LateResponses: s.late.Load(), Lost: s.lost.Load(),
	}
	if reason != nil && in.State == StateClosed {
		in.CloseReason = reason.Error()
	}
	s.ctr.fill(&in)
	in.TLS = isTLS(s.conn)
	return in
}

// Send sends a request and waits for its response, within the window: it waits for a free slot first
// (bounded by ctx). A response with a non-OK status is returned along with that status as the error.
// If ctx ends after the request went out, Send returns ctx.Err() and the outcome goes to the Handler
// (HandleResponse, HandleResponseTimeout or Terminate), so that it is never silently lost.
func (s *Session) Send(ctx context.Context, body pdu.Body) (Response, error) {
	if err := s.checkOutbound(body); err != nil {
		return Response{}, err
	}
	if err := s.acquire(ctx); err != nil {
		return Response{}, err
	}
	w := getWaiter()
	seq, err := s.enqueue(kindUser, body, w, nil)
	if err != nil {
		s.release()
		putWaiter(w)
		return Response{}, err
	}
	return s.wait(ctx, seq, w, false)
}

// SendAsync sends a request without waiting for the response: it returns once the request is queued
// for writing (waiting for a window slot first, bounded by ctx). done, if not nil, is called exactly
// once with the response or the error (ErrResponseTimeout, ErrLost) when SendAsync returned nil, and
// never when it returned an error. With a nil done, the Handler receives the outcome. done runs on
// the session's reader or timer goroutine: it must not block, nor send on this session.
func (s *Session) SendAsync(ctx context.Context, body pdu.Body, done func(Response, error)) error {
	if err := s.checkOutbound(body); err != nil {
		return err
	}
	if err := s.acquire(ctx); err != nil {
		return err
	}
	if _, err := s.enqueue(kindUser, body, nil, done); err != nil {
		s.release()
		return err
	}
	return nil
}

// Respond answers one of the peer's requests, as received by Handler.HandleRequest (or a Handler's
// bind). A nil body sends the empty response body for an OK status, and a header-only response for
// an error status, as SMPP 3.4 allows. Each request must be answered once.
func (s *Session) Respond(req Request, status pdu.CommandStatus, body pdu.Body) error {
	if req.Body == nil {
		return ErrInvalidResponse
	}
	id := req.Body.CommandID()
	if !hasResponse(id) {
		return ErrInvalidResponse
	}
	if body != nil && body.CommandID() != id.Response() {
		return ErrInvalidResponse
	}
	var err error
	switch {
	case body == nil && status != pdu.ESME_ROK:
		err = s.writeHeader(id.Response(), status, req.Sequence)
	case body == nil:
		err = s.write(req.Sequence, status, pdu.New(id.Response()))
	default:
		err = s.write(req.Sequence, status, body)
	}
	if req.inbound {
		// Answered once the answer is queued, not before: Unbind closes when nothing is unanswered.
		s.inboundDone()
	}
	return err
}

// Bind sends a bind request of type bt (ESME role) and waits for the answer; on ESME_ROK the session
// is bound. A refusal is returned as its status (errors.Is(err, pdu.ESME_RINVPASWD)).
func (s *Session) Bind(ctx context.Context, bt BindType, p BindParams) (Response, error) {
	if s.role != RoleESME {
		return Response{}, ErrNotBound
	}
	if s.State() != StateOpen {
		if s.State() == StateClosed {
			return Response{}, ErrClosed
		}
		return Response{}, ErrAlreadyBound
	}
	if !s.binding.CompareAndSwap(false, true) {
		return Response{}, ErrAlreadyBound
	}
	defer s.binding.Store(false)
	body := bindBody(bt, &pdu.BindTransceiver{SystemID: p.SystemID, Password: p.Password, SystemType: p.SystemType,
		InterfaceVersion: 0x34, AddrTON: p.AddrTON, AddrNPI: p.AddrNPI, AddressRange: p.AddressRange})
	if body == nil {
		return Response{}, errors.New("session: Bind needs a bind type")
	}
	resp, err := s.sendInternal(ctx, body)
	if err != nil {
		return resp, err
	}
	// The reader moved the session to bound before handing over the response (see boundBy).
	if s.State() != StateBound {
		return resp, ErrClosed
	}
	return resp, nil
}

// boundBy records a successful bind of ours. It runs on the reader before the next PDU is read, so a
// deliver_sm that follows the bind_resp at once finds the session bound.
func (s *Session) boundBy(req pdu.Body, resp pdu.Body) {
	bt, b, ok := BindOf(req)
	if !ok {
		return
	}
	sysID := b.SystemID
	s.mu.Lock()
	s.systemID = sysID
	s.peerID = respSystemID(resp)
	s.mu.Unlock()
	s.bindType.Store(uint32(bt))
	s.ctr.bound(b.InterfaceVersion)
	if s.state.CompareAndSwap(uint32(StateOpen), uint32(StateBound)) {
		s.bindTmr.Stop()
		s.log.Info().Str("system_id", sysID).Stringer("bind_type", bt).Msg("bound")
	}
}

func respSystemID(b pdu.Body) string {
	switch r := b.(type) {
	case *pdu.BindTransmitterResp:
		return r.SystemID
	case *pdu.BindReceiverResp:
		return r.SystemID
	case *pdu.BindTransceiverResp:
		return r.SystemID
	}
	return ""
}

// Outbind sends outbind (SMSC role, before any bind) asking the ESME to bind on this connection.
func (s *Session) Outbind(systemID, password string) error {
	if s.role != RoleSMSC || s.State() != StateOpen {
		return ErrNotBound
	}
	s.mu.Lock()
	seq := s.win.next
	s.win.next = nextSeq(seq)
	s.mu.Unlock()
	return s.write(seq, pdu.ESME_ROK, &pdu.Outbind{SystemID: systemID, Password: password})
}

// Unbind ends the session gracefully. Our new requests are refused at once; those in flight, and the
// peer's requests received so far, get up to UnbindTimeout (and ctx) to be answered, while the peer's
// requests are served as usual. Then unbind is sent, unbind_resp and the answers to what the peer
// sent meanwhile are awaited for up to UnbindTimeout again, and the connection is closed. Our
// requests still pending become lost PDUs. An unbound (open) session is just closed.
//
// What the peer sends once our unbind is on the wire is still served in the ESME role (receipts and
// MO from an upstream, which the store takes), and refused with drainStatus in the SMSC role (new
// submissions, which the ESME sends again on its next bind).
func (s *Session) Unbind(ctx context.Context) error {
	if !s.state.CompareAndSwap(uint32(StateBound), uint32(StateUnbinding)) {
		switch s.State() {
		case StateOpen:
			s.shutdown(ErrUnbound, true)
		case StateClosed:
			return ErrClosed
		}
		select {
		case <-s.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.UnbindTimeout)
	// Holding every window slot means nothing of ours is in flight.
drain:
	for i := 0; i < cap(s.sem); i++ {
		select {
		case s.sem <- struct{}{}:
		case <-dctx.Done():
			break drain
		case <-s.closing:
			break drain
		}
	}
	// Answer what the peer sent so far before our unbind goes out, and hold what it sends next (the
	// reader stops) until it has: some peers stop reading at an unbind (Kannel closes the connection
	// on reading one and sends again whatever it saw no answer to), so an answer behind the unbind
	// is not seen, and an ESME_ROK not seen is a duplicate.
	s.quiesce.Store(true)
	s.awaitInbound(dctx)
	cancel()
	uctx, cancel := context.WithTimeout(ctx, s.cfg.UnbindTimeout)
	w := getWaiter()
	seq, err := s.enqueue(kindInternal, &pdu.Unbind{}, w, nil)
	close(s.unbindOut)
	if err != nil {
		putWaiter(w)
	} else {
		_, err = s.wait(uctx, seq, w, true)
	}
	// What the peer sent after our unbind and before its unbind_resp is answered before we close.
	s.awaitInbound(uctx)
	cancel()
	s.shutdown(ErrUnbound, true)
	select {
	case <-s.done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// Close ends the session without unbinding: what is queued is flushed, the connection is closed, and
// pending requests become lost PDUs. It does not wait; see Done.
func (s *Session) Close() { s.shutdown(ErrClosed, true) }

// Abort ends the session at once: the connection is closed without flushing what is queued, and
// pending requests become lost PDUs. It does not wait; see Done.
func (s *Session) Abort() { s.shutdown(ErrClosed, false) }

// checkOutbound applies the bind-state rules to a request of ours.
func (s *Session) checkOutbound(body pdu.Body) error {
	if body == nil {
		return ErrInvalidResponse
	}
	id := body.CommandID()
	if id.IsResponse() {
		return ErrInvalidResponse
	}
	st := s.State()
	if st == StateClosed {
		return ErrClosed
	}
	if st != StateBound {
		return ErrNotBound
	}
	if !s.allowedOut(id) {
		return ErrNotBound
	}
	return nil
}

func (s *Session) allowedOut(id pdu.CommandID) bool {
	bt := s.BindType()
	switch id {
	case pdu.EnquireLinkID:
		return true
	case pdu.SubmitSMID, pdu.SubmitMultiID, pdu.QuerySMID, pdu.CancelSMID, pdu.ReplaceSMID:
		return s.role == RoleESME && bt.CanSubmit()
	case pdu.DataSMID:
		if s.role == RoleESME {
			return bt.CanSubmit()
		}
		return bt.CanReceive()
	case pdu.DeliverSMID, pdu.AlertNotificationID:
		return s.role == RoleSMSC && bt.CanReceive()
	}
	return false // binds, unbind and outbind have their own methods
}

// allowedIn applies the bind-state rules to a request of the peer's. While we unbind, the bind's
// requests are still taken (see Unbind and admitDraining).
func (s *Session) allowedIn(id pdu.CommandID) bool {
	if st := s.State(); st != StateBound && st != StateUnbinding {
		return false
	}
	bt := s.BindType()
	switch id {
	case pdu.SubmitSMID, pdu.SubmitMultiID, pdu.QuerySMID, pdu.CancelSMID, pdu.ReplaceSMID:
		return s.role == RoleSMSC && bt.CanSubmit()
	case pdu.DataSMID:
		if s.role == RoleSMSC {
			return bt.CanSubmit()
		}
		return bt.CanReceive()
	case pdu.DeliverSMID, pdu.AlertNotificationID:
		return s.role == RoleESME && bt.CanReceive()
	}
	return false
}

func (s *Session) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
}

func (s *Session) release() { <-s.sem }

// enqueue puts a request in the window and writes it. When it returns nil the request's outcome will
// be reported exactly once (to w, done, or the Handler).
func (s *Session) enqueue(kind pendingKind, body pdu.Body, w *waiter, done func(Response, error)) (uint32, error) {
	// The monotonic clock alone (time.Since) costs half of time.Now, and this runs per request.
	mono := time.Since(s.started)
	s.mu.Lock()
	if s.win.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	if kind == kindUser && s.State() != StateBound {
		s.mu.Unlock()
		return 0, ErrNotBound
	}
	i, ok := s.win.add(mono + s.cfg.ResponseTimeout)
	if !ok {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	p := &s.win.slots[i]
	p.kind, p.w, p.done = kind, w, done
	p.req = Request{Sequence: p.seq, Body: body, Sent: s.started.Add(mono)}
	seq := p.seq
	if !s.timerArmed {
		s.timerArmed = true
		s.expiry.Reset(s.cfg.ResponseTimeout)
	}
	s.mu.Unlock()
	if err := s.write(seq, pdu.ESME_ROK, body); err != nil {
		s.mu.Lock()
		if i := s.win.lookup(seq); i >= 0 {
			s.win.take(i)
			s.mu.Unlock()
			return 0, err
		}
		// Already drained by the ending session, which reports it as lost.
		s.mu.Unlock()
	}
	return seq, nil
}

// wait blocks for the outcome of the request seq carried by w.
func (s *Session) wait(ctx context.Context, seq uint32, w *waiter, internal bool) (Response, error) {
	select {
	case <-w.ch:
	case <-ctx.Done():
		s.mu.Lock()
		if i := s.win.lookup(seq); i >= 0 && s.win.slots[i].w == w {
			if internal {
				s.win.take(i)
			} else {
				s.win.slots[i].w = nil // the Handler owns the outcome from now on
			}
			s.mu.Unlock()
			putWaiter(w)
			return Response{}, ctx.Err()
		}
		s.mu.Unlock()
		<-w.ch // being completed right now
	}
	resp, err := w.resp, w.err
	putWaiter(w)
	return resp, err
}

func (s *Session) sendInternal(ctx context.Context, body pdu.Body) (Response, error) {
	w := getWaiter()
	seq, err := s.enqueue(kindInternal, body, w, nil)
	if err != nil {
		putWaiter(w)
		return Response{}, err
	}
	return s.wait(ctx, seq, w, true)
}

// complete reports the outcome of one of our requests to whoever owns it.
func (s *Session) complete(p *pending, resp Response, err error) {
	if p.kind == kindUser {
		s.release()
	}
	switch {
	case p.w != nil:
		p.w.resp, p.w.err = resp, err
		p.w.ch <- struct{}{}
	case p.done != nil:
		p.done(resp, err)
	case p.kind == kindEnquire:
		s.enquireDone(err)
	case p.kind == kindInternal:
		// An abandoned bind or unbind: nobody waits for it any more.
	case errors.Is(err, ErrResponseTimeout):
		s.h.HandleResponseTimeout(s, p.req)
	default:
		s.h.HandleResponse(s, p.req, resp)
	}
}

// expire runs on the session's one expiry timer: it fails every request whose deadline has passed
// (the oldest first) and re-arms the timer for the new oldest.
func (s *Session) expire() {
	now := time.Since(s.started)
	var expired []pending
	s.mu.Lock()
	for s.win.head >= 0 {
		p := &s.win.slots[s.win.head]
		if p.deadline > now {
			break
		}
		expired = append(expired, s.win.take(s.win.head))
	}
	if s.win.head >= 0 && !s.win.closed {
		s.expiry.Reset(s.win.slots[s.win.head].deadline - now)
	} else {
		s.timerArmed = false
	}
	s.mu.Unlock()
	for i := range expired {
		s.timeouts.Add(1)
		s.complete(&expired[i], Response{Sequence: expired[i].seq}, ErrResponseTimeout)
	}
}

// idleCheck runs on the enquire_link timer: once nothing has been read for a whole interval, it
// sends enquire_link; if that goes unanswered, enquireDone closes the session. The timer is re-armed
// for the end of the interval that started with the last PDU read, so the link is probed one interval
// after it fell silent (not one to two intervals, as a fixed tick comparing counters would).
func (s *Session) idleCheck() {
	select {
	case <-s.closing:
		return
	default:
	}
	next := s.cfg.EnquireLink
	if idle := time.Since(s.started) - time.Duration(s.lastIn.Load()); idle < s.cfg.EnquireLink {
		next -= idle
	} else if s.State() == StateBound && s.enqBusy.CompareAndSwap(false, true) {
		if _, err := s.enqueue(kindEnquire, &pdu.EnquireLink{}, nil, nil); err != nil {
			s.enqBusy.Store(false)
		}
	}
	s.mu.Lock()
	s.enquire.Reset(next)
	s.mu.Unlock()
}

func (s *Session) enquireDone(err error) {
	s.enqBusy.Store(false)
	if errors.Is(err, ErrResponseTimeout) {
		s.log.Warn().Msg("enquire_link unanswered; closing")
		s.shutdown(ErrEnquireLinkTimeout, false)
	}
}

func (s *Session) inboundDone() {
	for {
		n := s.inPending.Load()
		if n <= 0 {
			return
		}
		if s.inPending.CompareAndSwap(n, n-1) {
			if int(n) >= s.cfg.InboundLimit {
				select {
				case s.inWake <- struct{}{}:
				default:
				}
			}
			if n == 1 && s.State() != StateBound {
				select {
				case s.inIdle <- struct{}{}:
				default:
				}
			}
			return
		}
	}
}

// awaitInbound waits until every request of the peer's has been answered, ctx ends or the session
// closes. Only Unbind waits, after moving the session out of StateBound, which makes inboundDone
// signal inIdle.
func (s *Session) awaitInbound(ctx context.Context) {
	for s.inPending.Load() > 0 {
		select {
		case <-s.inIdle:
		case <-ctx.Done():
			return
		case <-s.closing:
			return
		}
	}
}

// drainStatus answers what an ESME submits to us (SMSC role) once our unbind is on the wire: the
// session takes nothing more, and the ESME should send it again on its next bind, to this instance
// or another. ESME_RTHROTTLED, because it is the one status the common ESMEs all re-queue:
//   - Kannel 1.4.5, gw/smsc/smsc_smpp.c: smpp_status_to_smscconn_failure_reason maps ESME_RMSGQFUL,
//     ESME_RTHROTTLED, ESME_RX_T_APPN and ESME_RSYSERR to SMSCCONN_FAILED_TEMPORARILY, which
//     bb_smscconn_send_failed re-queues (bounded only by sms-resend-retry, unlimited by default);
//     every other status, ESME_RINVBNDSTS included, is SMSCCONN_FAILED_REJECTED and the message is
//     dropped. ESME_RTHROTTLED also pauses its sending for SMPP_THROTTLING_SLEEP_TIME, which suits a
//     bind about to close. Older releases map only ESME_RMSGQFUL and ESME_RTHROTTLED to temporary.
//   - Jasmin, sm-listener submit_error_retrial (jasmin/managers/configs.py): by default ESME_RTHROTTLED
//     is retried 20 times every 30s, ESME_RSYSERR and ESME_RMSGQFUL only twice, and any status not in
//     the table (ESME_RINVBNDSTS) is not retried at all.
//   - node smpp (npm "smpp", lib/smpp.js) has no retry policy of its own: it hands command_status to
//     the application's callback, also after an unbind, until the socket closes; 0x58 is the status
//     applications treat as "slow down and retry", ESME_RSYSERR may mean the message was processed.
//
// Our own Client treats ESME_RTHROTTLED as throttling as well (pause, then retry the part).
const drainStatus = pdu.ESME_RTHROTTLED

// admitDraining decides a request of the peer's that came while we unbind, already counted as
// unanswered; false means it was answered (or the session is ending) and goes no further. Until our
// unbind is written it is served as usual, except that once Unbind waits for the answers so far, the
// reader holds it (not counted, so that the wait ends) until the unbind is out. After that, what
// the store can take is still served in the ESME role (receipts and MO from an upstream), and a new
// submission is refused with drainStatus in the SMSC role.
func (s *Session) admitDraining(h pdu.Header) bool {
	select {
	case <-s.unbindOut:
	default:
		if !s.quiesce.Load() {
			return true
		}
		s.inboundDone()
		select {
		case <-s.unbindOut:
		case <-s.closing:
			return false
		}
		s.inPending.Add(1)
	}
	if s.role == RoleSMSC {
		s.refuse(h, drainStatus)
		s.inboundDone()
		return false
	}
	return true
}

// write encodes one PDU straight into the outgoing buffer and wakes the writer if it was idle.
func (s *Session) write(seq uint32, status pdu.CommandStatus, body pdu.Body) error {
	if err := s.out.append(seq, status, body); err != nil {
		return err
	}
	s.ctr.wrote(body.CommandID(), status)
	return nil
}

// writeHeader writes a header-only PDU: generic_nack, or a response with an error status.
func (s *Session) writeHeader(id pdu.CommandID, status pdu.CommandStatus, seq uint32) error {
	if err := s.out.appendHeader(id, status, seq); err != nil {
		return err
	}
	s.ctr.wrote(id, status)
	return nil
}

// writeFailed ends the session after a failed write; the writer closes the connection.
func (s *Session) writeFailed(err error) { s.shutdown(err, false) }

// shutdown starts the end of the session once: with flush, what is queued is written before the
// connection closes; without, the connection closes now. The reader then finishes the session.
func (s *Session) shutdown(reason error, flush bool) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closeReason = reason
		s.mu.Unlock()
		close(s.closing)
		s.out.stop(!flush)
		if !flush {
			s.conn.Close()
		}
		s.out.wake()
	})
}

// readLoop owns the socket's read side and the session's end.
func (s *Session) readLoop() {
	defer s.finish()
	r := pdu.NewReader(s.conn, s.cfg.MaxPDULength)
	for {
		if !s.cfg.ThrottleInbound {
			for int(s.inPending.Load()) >= s.cfg.InboundLimit {
				select {
				case <-s.inWake:
				case <-s.closing:
					return
				}
			}
		}
		// A peer that sends without reading our answers would make them pile up: stop reading
		// while more than maxQueuedOut octets wait for the writer.
		for s.out.queued.Load() > maxQueuedOut {
			select {
			case <-s.out.space:
			case <-s.closing:
				return
			}
		}
		fresh := r.Buffered() == 0
		h, body, err := r.Read()
		if fresh {
			// One clock read per burst of PDUs, not per PDU.
			mono := time.Since(s.started)
			s.readAt = s.started.Add(mono)
			s.lastIn.Store(int64(mono))
		}
		if err != nil {
			var fe *pdu.FieldError
			if !errors.As(err, &fe) {
				if s.unbindAcked.Load() {
					// The peer closed after answering our unbind, as it may.
					err = ErrUnbound
				}
				s.shutdown(err, false)
				return
			}
			s.pdusIn.Add(1)
			s.ctr.unreadable(s.readAt)
			if s.unparsable(h, err) {
				s.shutdown(err, true)
				return
			}
			continue
		}
		s.pdusIn.Add(1)
		s.ctr.read(h, s.readAt)
		if !s.dispatch(h, body) {
			return
		}
	}
}

// unparsable answers a PDU that could not be decoded and reports whether the stream is beyond
// trusting (a bad command_length).
func (s *Session) unparsable(h pdu.Header, err error) (fatal bool) {
	switch {
	case errors.Is(err, pdu.ErrLength):
		_ = s.writeHeader(pdu.GenericNackID, pdu.ESME_RINVCMDLEN, h.Sequence)
		fatal = true
	case errors.Is(err, pdu.ErrUnknownCommand):
		_ = s.writeHeader(pdu.GenericNackID, pdu.ESME_RINVCMDID, h.Sequence)
	case h.ID.IsResponse():
		// A response we cannot read still answers the request: complete it with the decode error.
		s.mu.Lock()
		i := s.win.lookup(h.Sequence)
		var p pending
		if i >= 0 {
			p = s.win.take(i)
		}
		s.mu.Unlock()
		if i >= 0 {
			s.complete(&p, Response{Sequence: h.Sequence, Status: h.Status}, err)
		}
	default:
		s.refuse(h, pdu.StatusOf(err))
	}
	s.log.Warn().Stringer("command", h.ID).Uint32("seq", h.Sequence).Err(err).Msg("unparsable PDU")
	s.h.HandleUnparsable(s, h, err)
	return fatal
}

// dispatch handles one decoded PDU; false means the reader must stop.
func (s *Session) dispatch(h pdu.Header, body pdu.Body) bool {
	if h.ID.IsResponse() {
		s.response(h, body)
		return true
	}
	switch h.ID {
	case pdu.EnquireLinkID:
		_ = s.write(h.Sequence, pdu.ESME_ROK, &pdu.EnquireLinkResp{})
	case pdu.UnbindID:
		if s.State() != StateBound {
			_ = s.writeHeader(pdu.UnbindRespID, pdu.ESME_RINVBNDSTS, h.Sequence)
			return true
		}
		s.state.Store(uint32(StateUnbinding))
		_ = s.write(h.Sequence, pdu.ESME_ROK, &pdu.UnbindResp{})
		s.shutdown(ErrPeerUnbound, true)
		return false
	case pdu.BindTransmitterID, pdu.BindReceiverID, pdu.BindTransceiverID:
		s.bind(h, body)
	case pdu.OutbindID:
		if s.role == RoleESME && s.State() == StateOpen {
			s.h.HandleRequest(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt})
		} else {
			s.log.Warn().Stringer("state", s.State()).Msg("outbind in the wrong role or state refused")
			s.refuse(h, pdu.ESME_RINVBNDSTS)
		}
	default:
		if !s.allowedIn(h.ID) {
			s.refuse(h, pdu.ESME_RINVBNDSTS)
			return true
		}
		if h.ID == pdu.AlertNotificationID {
			// Nothing answers an alert_notification, so it does not count as unanswered.
			s.h.HandleRequest(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt})
			return true
		}
		if s.cfg.ThrottleInbound && int(s.inPending.Load()) >= s.cfg.InboundLimit {
			_ = s.writeHeader(h.ID.Response(), pdu.ESME_RTHROTTLED, h.Sequence)
			return true
		}
		// Counted before the state is read: Unbind moves the state first and reads the count later,
		// so either this request is seen as unbinding or Unbind sees it counted.
		s.inPending.Add(1)
		if s.State() != StateBound && !s.admitDraining(h) {
			return true
		}
		s.h.HandleRequest(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt, inbound: true})
	}
	return true
}

// hasResponse reports whether SMPP 3.4 defines a response to the request id: every request has one
// but outbind (section 4.1.7: the ESME answers with a bind) and alert_notification (sections 2.1 and
// 4.12: no response).
func hasResponse(id pdu.CommandID) bool {
	return !id.IsResponse() && id != pdu.OutbindID && id != pdu.AlertNotificationID
}

// refuse answers a request of the peer's that the session does not take with status, in the
// request's own response, header only. Outbind and alert_notification have none: their response
// ids (0x8000000B, 0x80000102) exist nowhere in the specification (section 5.1.2), so a peer would
// read an unknown command. They get generic_nack instead, the one negative answer that needs no
// response id of the request's (section 4.3 uses it where a PDU cannot be answered by its own
// response: a bad header, an unknown command); table 2-1 (section 2.3) allows neither in the wrong
// role or state, hence ESME_RINVBNDSTS there, and a body that does not decode gets its decode
// status. Ignoring them would be allowed too, but the peer would not learn why nothing happened.
func (s *Session) refuse(h pdu.Header, status pdu.CommandStatus) {
	id := pdu.GenericNackID
	if hasResponse(h.ID) {
		id = h.ID.Response()
	}
	_ = s.writeHeader(id, status, h.Sequence)
}

// response matches a response to our pending request and completes it; one that matches nothing
// (it came after the timeout, or is bogus) is counted, logged and dropped.
func (s *Session) response(h pdu.Header, body pdu.Body) {
	s.mu.Lock()
	i := s.win.lookup(h.Sequence)
	if i < 0 {
		s.mu.Unlock()
		s.late.Add(1)
		s.log.Debug().Stringer("command", h.ID).Uint32("seq", h.Sequence).Msg("response matches no pending request; dropped")
		return
	}
	p := s.win.take(i)
	s.mu.Unlock()
	if h.ID == pdu.UnbindRespID && p.kind == kindInternal {
		// Our unbind is answered: the end is ours, whatever the peer does with the socket next.
		// Requests of the peer's still being served keep it open until answered (Unbind bounds that).
		s.unbindAcked.Store(true)
		if s.inPending.Load() == 0 {
			s.shutdown(ErrUnbound, true)
		}
	}
	if p.kind == kindUser {
		s.ctr.pdus.observe(s.readAt.Sub(p.req.Sent))
	}
	resp := Response{Sequence: h.Sequence, Status: h.Status, Body: body}
	var err error
	switch {
	case h.ID == pdu.GenericNackID:
		err = h.Status
		if h.Status == pdu.ESME_ROK {
			err = pdu.ESME_RUNKNOWNERR
		}
	case h.ID != p.req.Body.CommandID().Response():
		err = ErrUnexpectedResponse
	case h.Status != pdu.ESME_ROK:
		err = h.Status
	case p.kind == kindInternal:
		s.boundBy(p.req.Body, body)
	}
	s.complete(&p, resp, err)
}

// bind handles a bind request: the SMSC role asks its Handler; anything else refuses.
func (s *Session) bind(h pdu.Header, body pdu.Body) {
	resp := h.ID.Response()
	if s.role != RoleSMSC {
		_ = s.writeHeader(resp, pdu.ESME_RINVBNDSTS, h.Sequence)
		return
	}
	if s.State() != StateOpen {
		_ = s.writeHeader(resp, pdu.ESME_RALYBND, h.Sequence)
		return
	}
	var sysID string
	var version uint8
	bt, b, ok := BindOf(body)
	if ok {
		sysID, version = b.SystemID, b.InterfaceVersion
	}
	st := s.h.HandleBind(s, Request{Sequence: h.Sequence, Body: body, Sent: s.readAt})
	if st != pdu.ESME_ROK {
		_ = s.writeHeader(resp, st, h.Sequence)
		return
	}
	s.mu.Lock()
	s.systemID = sysID
	s.peerID = s.localID
	s.mu.Unlock()
	s.bindType.Store(uint32(bt))
	s.ctr.bound(version)
	var rb pdu.Body
	switch bt {
	case BindTransmitter:
		rb = &pdu.BindTransmitterResp{SystemID: s.localID}
	case BindReceiver:
		rb = &pdu.BindReceiverResp{SystemID: s.localID}
	default:
		rb = &pdu.BindTransceiverResp{SystemID: s.localID}
	}
	// bind_resp goes out before the session counts as bound, so that nothing we send (a deliver_sm
	// from another goroutine) can overtake it.
	_ = s.write(h.Sequence, pdu.ESME_ROK, rb)
	if !s.state.CompareAndSwap(uint32(StateOpen), uint32(StateBound)) {
		return
	}
	s.bindTmr.Stop()
	s.log.Info().Str("system_id", sysID).Stringer("bind_type", bt).Msg("bound")
	if n, ok := s.h.(BoundHandler); ok {
		n.HandleBound(s)
	}
}

// finish ends the session once the reader has stopped: it waits for the writer, fails every pending
// request (lost), and tells the Handler.
func (s *Session) finish() {
	s.shutdown(io.EOF, false)
	<-s.out.done
	s.expiry.Stop()
	s.bindTmr.Stop()
	if s.enquire != nil {
		s.enquire.Stop()
	}
	s.mu.Lock()
	s.win.closed = true
	var pend []pending
	for s.win.head >= 0 {
		pend = append(pend, s.win.take(s.win.head))
	}
	reason := s.closeReason
	s.mu.Unlock()
	s.state.Store(uint32(StateClosed))
	var lost []Request
	for i := range pend {
		p := &pend[i]
		s.lost.Add(1)
		if p.w == nil && p.done == nil && p.kind == kindUser {
			lost = append(lost, p.req)
			s.release()
			continue
		}
		s.complete(p, Response{Sequence: p.seq}, ErrLost)
	}
	s.log.Debug().AnErr("reason", reason).Int("lost", len(pend)).Msg("session ended")
	if s.cfg.Meter != nil {
		s.cfg.Meter.end(s)
	}
	s.h.HandleClosed(s, reason)
	s.h.Terminate(s, lost)
	close(s.done)
}
