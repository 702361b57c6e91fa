// Package session is the SMPP session actor: one connection, after SMPPEX.Session, in either role
// (RoleSMSC: the peer binds to us; RoleESME: we bind to the peer).
//
// A reader goroutine decodes PDUs (package pdu) and dispatches them; a writer goroutine writes
// whatever has been encoded since its last write in one call (senders encode straight into the shared
// outgoing buffer, so bursts coalesce). The writer runs only while there is something to write and
// the outgoing buffer is pooled, so an idle session holds one goroutine, its reader's small buffer
// and its timers. Our requests sit in a window of Config.Window slots keyed by
// sequence number; a sender waits, bounded by its context, while the window is full. All requests
// share one response timeout, so send order is expiry order and a single timer per session, armed for
// the oldest, expires them. A response after its timeout is counted and dropped. The peer may have at
// most Config.InboundLimit requests unanswered; beyond that the session stops reading, or answers
// ESME_RTHROTTLED. enquire_link goes out when nothing has been read for Config.EnquireLink and an
// unanswered one closes the session. Every PDU is checked against the bind state (submit_sm before a
// bind gets ESME_RINVBNDSTS); unknown command ids get generic_nack ESME_RINVCMDID, a bad
// command_length generic_nack ESME_RINVCMDLEN and a close, an undecodable body its response with the
// status the decoder names. Unbind drains gracefully: what is in flight both ways is answered first.
//
// A role plugs in through Handler (embed BaseHandler and override what you need): HandleBind,
// HandleRequest, HandleResponse, HandleResponseTimeout, HandleUnparsable, HandleClosed and Terminate
// with the lost PDUs; BoundHandler, optional, is told when a peer's bind has completed. Each request
// of ours has exactly one owner of its outcome: Send returns it, SendAsync with a done function calls
// that, SendAsync without one hands it to the Handler; a request whose session ends before its
// response is reported as ErrLost (or in Terminate's list), never dropped.
//
// Config carries yaml tags and documented zero values, so a daemon can load it from a file as it is.
//
// This package speaks the wire only through package pdu. It knows nothing of accounts, stores,
// routing or message ids: deciding a bind, and what a request means, is the Handler's (package
// gateway's Server and Client). It must not import package gateway, store or api.
package session
