package gateway

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// The client's side of its sessions: what its upstream sends (DeliverHandler) and outbinds.

// DeliverHandler receives what the upstream sends us (deliver_sm with receipts or MO, data_sm,
// alert_notification). It runs on the session's reader and must not block: it answers through respond,
// at once or later (after a durable write, say), exactly once. AlertNotification has no answer;
// respond is then a no-op.
type DeliverHandler interface {
	HandleDeliver(upstream string, req session.Request, respond func(pdu.CommandStatus))
}

// deliverFunc adapts a function that answers at once to DeliverHandler.
type deliverFunc func(upstream string, req session.Request) pdu.CommandStatus

// HandleDeliver implements DeliverHandler.
func (f deliverFunc) HandleDeliver(upstream string, req session.Request, respond func(pdu.CommandStatus)) {
	respond(f(upstream, req))
}

// ErrNoSubmit: Client.Submit on a client whose queue is fed another way (a Gateway's store queue).
var ErrNoSubmit = errors.New("gateway: this client's queue is not fed by Submit")

// acceptOutbinds serves the outbind listener: each connection waits (BindTimeout) for an outbind.
func (c *Client) acceptOutbinds(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Error().Err(err).Msg("outbind listener stopped")
			}
			return
		}
		session.New(conn, session.Options{Role: session.RoleESME, Handler: &clientSession{c: c, outbind: true}, Config: c.cfg.Session, Logger: c.log})
	}
}

// bindBack binds on a connection the upstream opened with outbind, and hands the session to the
// supervisor of a bind slot that has no bind.
func (c *Client) bindBack(s *session.Session) {
	if c.allBound() {
		s.Logger().Info().Msg("outbind while bound; closing the extra connection")
		s.Close()
		return
	}
	if !c.holdsLease() {
		s.Logger().Info().Msg("outbind while another instance holds the bind (or none does yet); closing it")
		s.Close()
		return
	}
	if _, err := s.Bind(c.ctx, c.cfg.BindType, c.bindParams()); err != nil {
		c.bindErrors.Add(1)
		s.Logger().Warn().Err(err).Msg("bind after outbind failed")
		s.Close()
		return
	}
	t := time.NewTimer(c.cfg.DialTimeout)
	defer t.Stop()
	select {
	case c.outbinds <- s:
	case <-t.C:
		s.Unbind(context.Background())
	case <-c.ctx.Done():
		s.Unbind(context.Background())
	}
}

// clientSession is the Handler of a client's sessions.
type clientSession struct {
	session.BaseHandler
	c       *Client
	outbind bool // accepted on the outbind listener
}

func (h *clientSession) HandleRequest(s *session.Session, req session.Request) {
	if ob, ok := req.Body.(*pdu.Outbind); ok {
		if !h.outbind {
			s.Logger().Warn().Msg("outbind on a dialed connection ignored")
			return
		}
		if h.c.cfg.OutbindPassword != "" && ob.Password != h.c.cfg.OutbindPassword {
			s.Logger().Warn().Str("system_id", ob.SystemID).Msg("outbind with a wrong password; closing")
			s.Close()
			return
		}
		s.Logger().Info().Str("system_id", ob.SystemID).Msg("outbind received; binding back")
		go h.c.bindBack(s)
		return
	}
	if h.c.deliver == nil {
		if req.Body.CommandID() != pdu.AlertNotificationID {
			s.Logger().Warn().Stringer("command", req.Body.CommandID()).Msg("no deliver handler; asking the upstream to retry later")
			_ = s.Respond(req, pdu.ESME_RX_T_APPN, nil)
		}
		return
	}
	respond := func(st pdu.CommandStatus) { _ = s.Respond(req, st, nil) }
	if req.Body.CommandID() == pdu.AlertNotificationID {
		respond = func(pdu.CommandStatus) {} // no response exists
	}
	h.c.deliver.HandleDeliver(h.c.cfg.Name, req, respond)
}
