package session

import (
	"github.com/smppgw/smppgw/pdu"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
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

// Session is one SMPP connection: a reader goroutine that decodes and dispatches, a writer goroutine
// that flushes coalesced writes while there are any, a window of our pending requests with one expiry
// timer, a limit on the peer's unanswered requests, enquire_link when idle, and a bind state checked
// on every PDU.
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
	// The submit_sm body the reader decodes into, reused, when the Handler borrows them
	// (SubmitSMBorrower); made at the first submit_sm, so an idle session holds none.
	borrowSubmit bool
	submitBody   *pdu.SubmitSM
	// The submit_sm_resp body the reader decodes into, reused when the request's Completion
	// borrows it (ResponseBorrower) and copied for any other; made at the first one.
	respBody *pdu.SubmitSMResp

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
	if b, ok := h.(SubmitSMBorrower); ok {
		s.borrowSubmit = b.BorrowsSubmitSM()
	}
	s.out.init(conn, s.started, cfg.WriteTimeout, s.writeFailed)
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
