// Package gateway holds SMPP sessions and the roles built on them: the Server (SMSC role) that
// carriers and ESMEs bind to, the Client (ESME role) that binds out to upstream SMSCs, the message
// path between them and the store, and Gateway, the running whole the daemon and the API use.
//
// # Sessions
//
// A session is one SMPP connection, the actor of package session (gateway/session): reader, writer,
// window, inbound limit, enquire_link, unbind, bind-state checks. The roles below plug into it through
// session.Handler; this package adds accounts, the store and routing on top, never the wire.
//
// # Roles
//
// Server accepts TCP and TLS listeners, authenticates binds through an Authenticator (a Gateway's
// reads store.Accounts at each bind; MemoryAuthenticator holds a fixed set), enforces max binds,
// IP allow-lists, bind types and a per-account throughput cap, slows down repeated failures of an
// address or system_id before any password is hashed, bounds the bcrypt comparisons running at once and
// caches verified credentials (bindGate), keeps a registry of sessions, can outbind to an ESME, and
// shuts down by unbinding everyone.
// What ESMEs submit goes to a MessageHandler (a Gateway's submitter), and a BindObserver learns of
// completed binds.
//
// Client keeps one bind to one upstream: a supervisor dials (TCP or TLS), binds, and pumps a Queue of
// jobs into the window; it reconnects with capped exponential back-off and full jitter, requeues lost
// PDUs and timeouts, pauses and retries on ESME_RTHROTTLED and ESME_RMSGQFUL, and can bind back on an
// outbind received on its own listener. Its queue (MemoryQueue, or a durable one behind the Queue
// interface) and counters survive reconnects.
//
// # Message path
//
// It follows DESIGN.md's message life with the store (package store) holding everything that must
// survive, one concept per file, each a type with one job that gateway.New wires to the next:
//
//   - routes.go, routeTable: the one route table. It seeds the configured routes into the store, loads
//     the store's routes, and is the only place that orders them (longest prefix, account routes
//     first, then priority) and looks a destination up; the admin API lists and tests routes through
//     it (Gateway.Routes, RouteMatches). A new message goes to the first bound and unpaused upstream
//     of the failover order, else the first; upstreamSet (upstreams.go) says which are.
//   - submit.go, submitter (with validate.go's rules and msgid.go's ids): a submit_sm (or an API
//     Submission, split into parts with pdu.SplitText) is validated, given a gateway message id,
//     routed and written with store.AcceptMessage, which queues its parts for the upstream, and only
//     then answered; a store error answers ESME_RSYSERR. It answers query_sm from the store.
//   - settle.go, settler: each Client reads its upstream's store queue through storeQueue
//     (storequeue.go), which reports every outcome to a settler: a submit_sm_resp writes the id map
//     and acknowledges the entry in one write (store.Settle); throttling gives it back after the
//     pause, a temporary error after ThrottleDelay; a timeout or a dropped bind records a lost PDU
//     (RequeueLost) and the part is sent again; a permanent refusal settles it REJECTED with a
//     failure receipt; a part sent MaxAttempts times fails UNDELIVERABLE, one older than MaxAge
//     EXPIRED, each with a failure receipt. A part holds one of its bind's MaxUnsettled slots
//     (default 512, at least the window) from its claim until its outcome is durable, so a crash
//     sends again at most those parts; the window itself frees at the answer, so it refills while
//     the answered parts' settles wait for their group commit.
//   - receipts.go, receipts: upstream receipts are recorded with AddReceipt (parked when they beat
//     their submit_sm_resp, and applied by Settle), published as Events, and queued for the account
//     as a deliver_sm carrying our message id when the message asked for one and came over SMPP (an
//     API message's only when its account sets api_receipts_over_smpp): per message or per part (the
//     account's receipts). A copy an upstream sends again goes nowhere, counted.
//   - accountopts.go: the accounts' message_ids (msgid.go), receipts, api_receipts_over_smpp and
//     long_mo (moparts.go), read from the store's account records through a one-second cache.
//   - mo.go, fromUpstream: the Clients' DeliverHandler. An MO is routed to an account by the MO
//     routes and queued (EnqueueDelivery) and published; a receipt goes to receipts. Either is
//     answered once durable.
//   - delivery.go, deliverer: one loop per account, while it has a receiver or transceiver bind on
//     this instance, sends what is queued for it. Delivery is at least once: a crash between a send
//     and its acknowledgement sends again.
//   - work.go, pool: the one way store writes made for a PDU run off the session readers, bounded;
//     with a store that writes asynchronously (store.AsyncWrites), an accept and a part's settle are
//     only queued from the reader, and answered from the write's completion once durable.
//
// Gateway builds the Server, the Clients and the message path on a store, seeds the configured accounts
// and routes into it, and offers Submit, sessions, upstreams (AddUpstream persists to the store),
// routes, stats and event subscriptions (the api.Gateway interface). A future
// schedule_delivery_time (or the API's schedule_time) is kept with the message and forwarded upstream
// as an absolute time. Known limit: receipts of API-submitted messages that asked for them are also queued for the account's SMPP binds (the store
// does not record which way a message came in).
//
// ServerConfig, ClientConfig, session.Config and Account carry yaml tags and documented zero values, so
// a daemon can load them from a file as they are.
//
// This package speaks the wire only through package pdu, and must not persist anything itself: durable
// queues, accounts and lost PDUs belong to package store, reached through store.Store. It must not
// import package api (api imports it).
package gateway
