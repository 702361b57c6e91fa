package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// MessageHandler receives what bound ESMEs send: submit_sm, submit_multi, data_sm, query_sm,
// cancel_sm, replace_sm. It answers each through Inbound.Respond, at once or later (after a durable
// write, say); until answered a request counts against the session's inbound limit. It is called on
// the session's reader goroutine and must not block for long.
type MessageHandler interface {
	HandleMessage(m Inbound)
}

// BindObserver learns of each bind once it is complete (bind_resp written, the session bound): a
// Gateway's delivery loops start sending to a receiver then. It runs on the session's reader and
// must not block.
type BindObserver interface {
	HandleBound(s *session.Session, a *Account)
}

// Inbound is one request from a bound ESME.
type Inbound struct {
	Session *session.Session
	Account *Account // the account the session bound as
	Request session.Request
}

// Respond answers the request (see session.Session.Respond).
func (m Inbound) Respond(status pdu.CommandStatus, body pdu.Body) error {
	return m.Session.Respond(m.Request, status, body)
}

// Server is the SMSC role: it accepts connections on its listeners, authenticates binds, keeps a
// registry of sessions, and hands what ESMEs submit to its MessageHandler.
type Server struct {
	cfg      ServerConfig
	auth     Authenticator
	sink     MessageHandler
	observer BindObserver // nil: nobody is told of binds
	log      zerolog.Logger
	bindGate *bindGate
	ctx      context.Context // ends at Shutdown; bounds authentication and failure delays
	cancel   context.CancelFunc

	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	all       map[uint64]*session.Session // every connection, bound or not
	bound     map[string]map[uint64]*session.Session
	limits    *accountLimits // the accounts' throughput, shared with the Gateway's API when there is one
	accepting sync.WaitGroup
}

// NewServer checks cfg and returns a server that authenticates with auth and hands messages to sink.
// Call Start to open cfg.Listeners, or Serve with listeners of your own.
func NewServer(cfg ServerConfig, auth Authenticator, sink MessageHandler, log zerolog.Logger) (*Server, error) {
	return newServer(cfg, auth, sink, nil, newAccountLimits(), log)
}

// newServer is NewServer that also tells observer (when not nil) of each completed bind, and caps
// the accounts' throughput with limits (which the API may share).
func newServer(cfg ServerConfig, auth Authenticator, sink MessageHandler, observer BindObserver, limits *accountLimits, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if auth == nil || sink == nil {
		return nil, errors.New("gateway: NewServer needs an Authenticator and a MessageHandler")
	}
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg: cfg, auth: auth, sink: sink, observer: observer, log: log.With().Str("component", "smpp-server").Logger(),
		bindGate: newBindGate(cfg),
		ctx:      ctx, cancel: cancel,
		all: make(map[uint64]*session.Session), bound: make(map[string]map[uint64]*session.Session), limits: limits,
	}, nil
}

// Start opens every configured listener and serves them in the background; once it returns, Addrs
// lists them.
func (srv *Server) Start() error {
	var opened []net.Listener
	for i, lc := range srv.cfg.Listeners {
		l, err := listen(lc)
		if err != nil {
			for _, o := range opened {
				o.Close()
			}
			return fmt.Errorf("gateway: listeners[%d]: %w", i, err)
		}
		opened = append(opened, l)
	}
	// Registered here, not in the goroutines, so that Addrs lists them all once Start returns.
	for _, l := range opened {
		if !srv.track(l) {
			continue
		}
		go func() {
			if err := srv.accept(l); err != nil {
				srv.log.Error().Err(err).Str("listener", l.Addr().String()).Msg("listener stopped")
			}
		}()
	}
	return nil
}

func listen(lc ListenerConfig) (net.Listener, error) {
	if lc.TLS == nil {
		return net.Listen("tcp", lc.Address)
	}
	tc, err := lc.TLS.build()
	if err != nil {
		return nil, err
	}
	return tls.Listen("tcp", lc.Address, tc)
}

// Serve accepts connections on l until Shutdown (then it returns nil) or a permanent accept error.
func (srv *Server) Serve(l net.Listener) error {
	if !srv.track(l) {
		return nil
	}
	return srv.accept(l)
}

// track registers l with the server, for Addrs and Shutdown, before anything is accepted on it; it
// closes l and returns false once the server is shut down. Each true is followed by one accept.
func (srv *Server) track(l net.Listener) bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		l.Close()
		return false
	}
	srv.listeners = append(srv.listeners, l)
	srv.accepting.Add(1)
	return true
}

// accept serves a tracked listener until Shutdown or a permanent accept error.
func (srv *Server) accept(l net.Listener) error {
	defer srv.accepting.Done()
	srv.log.Info().Str("listener", l.Addr().String()).Msg("accepting binds")
	var pause time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			srv.mu.Lock()
			closed := srv.closed
			srv.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				srv.log.Warn().Err(err).Dur("pause", pause).Msg("accept failed; pausing")
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		srv.serveConn(c)
	}
}

// Addrs returns the addresses of the listeners being served.
func (srv *Server) Addrs() []net.Addr {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]net.Addr, len(srv.listeners))
	for i, l := range srv.listeners {
		out[i] = l.Addr()
	}
	return out
}

func (srv *Server) serveConn(c net.Conn) *session.Session {
	h := &serverSession{srv: srv}
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		c.Close()
		return nil
	}
	s := session.New(c, session.Options{Role: session.RoleSMSC, Handler: h, Config: srv.cfg.Session, Logger: srv.log, SystemID: srv.cfg.SystemID})
	srv.all[s.ID()] = s
	srv.mu.Unlock()
	return s
}

// Session returns the session with the given id, bound or not.
func (srv *Server) Session(id uint64) (*session.Session, bool) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	s, ok := srv.all[id]
	return s, ok
}

// sessionsFor returns the bound sessions of an account (not those still binding or unbinding).
func (srv *Server) sessionsFor(systemID string) []*session.Session {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	out := make([]*session.Session, 0, len(srv.bound[systemID]))
	for _, s := range srv.bound[systemID] {
		if s.State() == session.StateBound {
			out = append(out, s)
		}
	}
	return out
}

// Sessions returns a snapshot of every connection.
func (srv *Server) Sessions() []session.Info {
	srv.mu.Lock()
	ss := make([]*session.Session, 0, len(srv.all))
	for _, s := range srv.all {
		ss = append(ss, s)
	}
	srv.mu.Unlock()
	out := make([]session.Info, len(ss))
	for i, s := range ss {
		out[i] = s.Info()
	}
	return out
}

// Unbind unbinds one session gracefully (see session.Session.Unbind).
func (srv *Server) Unbind(ctx context.Context, id uint64) error {
	s, ok := srv.Session(id)
	if !ok {
		return fmt.Errorf("gateway: no session %d", id)
	}
	return s.Unbind(ctx)
}

// Outbind connects to an ESME, sends outbind, and serves the bind that follows on that connection
// like any accepted one. It returns the session, still unbound.
func (srv *Server) Outbind(ctx context.Context, oc OutbindConfig) (*session.Session, error) {
	if err := oc.Validate(); err != nil {
		return nil, fmt.Errorf("gateway: outbind: %w", err)
	}
	oc = oc.withDefaults(srv.cfg.SystemID)
	c, err := dial(ctx, oc.Address, oc.TLS, oc.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("gateway: outbind to %s: %w", oc.Address, err)
	}
	s := srv.serveConn(c)
	if s == nil {
		return nil, session.ErrClosed
	}
	if err := s.Outbind(oc.SystemID, oc.Password); err != nil {
		s.Close()
		return nil, err
	}
	s.Logger().Info().Str("address", oc.Address).Msg("outbind sent")
	return s, nil
}

func dial(ctx context.Context, address string, tc *ClientTLSConfig, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	if tc == nil {
		return d.DialContext(ctx, "tcp", address)
	}
	cfg, err := tc.build(address)
	if err != nil {
		return nil, err
	}
	td := &tls.Dialer{NetDialer: d, Config: cfg}
	return td.DialContext(ctx, "tcp", address)
}

// Shutdown stops accepting, unbinds every session (each bounded by its UnbindTimeout and ctx), logs
// their lost PDUs, and returns once all sessions have ended. If ctx ends first, the
// remaining sessions are closed without waiting and ctx.Err() is returned.
func (srv *Server) Shutdown(ctx context.Context) error {
	srv.mu.Lock()
	srv.closed = true
	ls := srv.listeners
	ss := make([]*session.Session, 0, len(srv.all))
	for _, s := range srv.all {
		ss = append(ss, s)
	}
	srv.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	srv.cancel()
	for _, s := range ss {
		go s.Unbind(ctx)
	}
	var err error
	for _, s := range ss {
		select {
		case <-s.Done():
		case <-ctx.Done():
			err = ctx.Err()
			for _, s := range ss {
				s.Abort()
			}
		}
	}
	srv.accepting.Wait()
	srv.log.Info().Int("sessions", len(ss)).Msg("server shut down")
	return err
}

func (srv *Server) forget(s *session.Session, systemID string) {
	srv.mu.Lock()
	delete(srv.all, s.ID())
	if m := srv.bound[systemID]; m != nil {
		delete(m, s.ID())
		if len(m) == 0 {
			delete(srv.bound, systemID)
		}
	}
	srv.mu.Unlock()
}

// register records a bind, unless the account has reached MaxBinds.
// boundCount counts the sessions still bound. A session the peer has unbound leaves StateBound before
// its unbind_resp is written, so an ESME that unbinds and binds again at once is not refused
// ESME_RALYBND by its own previous bind, which is forgotten only once its connection has ended.
func boundCount(m map[uint64]*session.Session) int {
	n := 0
	for _, s := range m {
		if s.State() == session.StateBound {
			n++
		}
	}
	return n
}

func (srv *Server) register(s *session.Session, a Account) (pdu.CommandStatus, limiter) {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closed {
		return pdu.ESME_RBINDFAIL, nil
	}
	m := srv.bound[a.SystemID]
	if a.MaxBinds > 0 && boundCount(m) >= a.MaxBinds {
		return pdu.ESME_RALYBND, nil
	}
	if m == nil {
		m = make(map[uint64]*session.Session)
		srv.bound[a.SystemID] = m
	}
	m[s.ID()] = s
	return pdu.ESME_ROK, srv.limits.bucket(a.SystemID, a.Throughput)
}
