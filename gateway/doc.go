// Package gateway holds SMPP sessions and the roles built on them: the Server (SMSC role) that
// carriers and ESMEs bind to, the Client (ESME role) that binds out to upstream SMSCs, and the Router
// between them.
//
// # Sessions
//
// A Session is one connection, an actor after SMPPEX.Session: a reader goroutine decodes PDUs (package
// pdu) and dispatches them; a writer goroutine writes whatever has been encoded since its last write in
// one call (senders encode straight into the shared outgoing buffer, so bursts coalesce). Our requests
// sit in a window of SessionConfig.Window slots keyed by sequence number; a sender waits, bounded by its
// context, while the window is full. All requests share one response timeout, so send order is expiry
// order and a single timer per session, armed for the oldest, expires them. A response after its
// timeout is counted and dropped. The peer may have at most SessionConfig.InboundLimit requests
// unanswered; beyond that the session stops reading, or answers ESME_RTHROTTLED. enquire_link goes out
// when nothing has been read for SessionConfig.EnquireLink and an unanswered one closes the session.
// Every PDU is checked against the bind state (submit_sm before a bind gets ESME_RINVBNDSTS); unknown
// command ids get generic_nack ESME_RINVCMDID, a bad command_length generic_nack ESME_RINVCMDLEN and a
// close, an undecodable body its response with the status the decoder names.
//
// A role plugs in through Handler (embed BaseHandler and override what you need): HandleBind,
// HandleRequest, HandleResponse, HandleResponseTimeout, HandleUnparsable, HandleClosed and Terminate
// with the lost PDUs. Each request of ours has exactly one owner of its outcome: Send returns it,
// SendAsync with a done function calls that, SendAsync without one hands it to the Handler; a request
// whose session ends before its response is reported as ErrLost (or in Terminate's list), never dropped.
//
// # Roles
//
// Server accepts TCP and TLS listeners, authenticates binds through an Authenticator
// (MemoryAuthenticator holds bcrypt hashes; the store will provide another), enforces max binds,
// IP allow-lists, bind types and a per-account throughput cap, slows down repeated failures from one
// address, keeps a registry of sessions, can outbind to an ESME, and shuts down by unbinding everyone.
// What ESMEs submit goes to a MessageHandler (AcceptSink is the trivial one; Router the real one).
//
// Client keeps one bind to one upstream: a supervisor dials (TCP or TLS), binds, and pumps a Queue of
// jobs into the window; it reconnects with capped exponential back-off and full jitter, requeues lost
// PDUs and timeouts, pauses and retries on ESME_RTHROTTLED and ESME_RMSGQFUL, and can bind back on an
// outbind received on its own listener. Its queue (MemoryQueue, or a durable one behind the Queue
// interface) and counters survive reconnects.
//
// ServerConfig, ClientConfig, SessionConfig and Account carry yaml tags and documented zero values, so
// a daemon can load them from a file as they are.
//
// This package speaks the wire only through package pdu, and must not persist anything itself: durable
// queues, accounts and lost PDUs belong to package store, reached through the interfaces above.
package gateway
