// Package api serves smppgw to applications and operators: the gRPC services generated from
// proto/smppgw/v1 (MessageService, AdminService), their REST mapping through grpc-gateway, health,
// reflection and the OpenAPI document.
//
// # Transports
//
// NewServer builds one grpc.Server. REST requests go through grpc-gateway to that same server over
// an in-memory connection, so both transports pass the same interceptors and REST server streams
// (StreamReceipts, newline-delimited JSON) work. The HTTP listener also serves GET /healthz (the
// process is up), GET /readyz (the store answers Ping and the gateway is Ready; 503 otherwise) and
// /openapi.json. The gRPC listener also serves grpc.health.v1.Health, kept in step with readiness,
// and server reflection (grpcurl list / describe). Config.TLS puts both listeners on TLS.
//
// A StreamReceipts consumer that does not keep up is not waited for: once it is
// gateway.SubscriberBuffer receipts behind, the stream sends the receipts it holds and ends with
// ResourceExhausted (REST: an error line), rather than skipping receipts without saying so. The
// receipts are in the store (GetMessage, ListMessages); the client opens a new stream.
//
// # Authentication
//
// One interceptor authenticates every smppgw.v1 call from the `authorization` metadata (REST's
// Authorization header arrives as that metadata):
//   - `Bearer <secret>`: an API key. Secrets look like sgw_<key id>_<random>; the id finds the key in
//     the store, which keeps only the SHA-256 of the secret (compared in constant time). A key that
//     verified is remembered for a second (keyCacheTTL): a revocation or account change made through
//     this instance applies at the next call, one made through another instance sharing the store
//     within that second; expiry is checked at every call. The key's
//     scopes decide: Submit and SubmitBatch need send; GetMessage, ListMessages and StreamReceipts
//     need read; webhook creation and deletion need send, their reads send or read; AdminService
//     needs admin. admin implies every scope and lets a key act for any account through the
//     `account` fields; other keys act for their own account only, and other accounts' ids answer
//     NotFound.
//   - `Basic <user:password>` on AdminService only: the operators of Config.AdminUsers, whose
//     passwords are kept as bcrypt hashes. Operators are admins.
//
// Missing or unknown credentials give Unauthenticated (HTTP 401 with WWW-Authenticate: Bearer, and
// Basic too under /v1/admin); a missing scope gives PermissionDenied (403).
//
// # Errors
//
// Every error leaves through one mapping (toStatus): *gateway.ValidationError and this package's
// own field errors -> InvalidArgument naming the field (400), gateway.ErrNoRoute ->
// FailedPrecondition (400), gateway.ErrThrottled -> ResourceExhausted (429), unknown ids and names
// -> NotFound (404), store.ErrExists -> AlreadyExists (409), store.ErrUnavailable -> Unavailable
// (503); anything else is Internal (500), logged and not shown to the caller. Messages are written
// for API users where the error is made: "<field>: <what is wrong>", with the contract's field
// names and path ("messages[1].data_coding", "account.password"), never a Go package's text.
//
// # What is refused
//
// Requests are checked against the contract before they are read (check.go): over REST, a body
// key or query parameter the message does not define, a value of the wrong type, and an enum value
// other than its full name or number are refused naming the field, where grpc-gateway would
// discard them ("registeredDelivery":"FINAL" became NONE and the receipt was lost); over gRPC, an
// enum number the contract does not define is refused (proto3 enums are open). Enum names are
// taken only in full (REGISTERED_DELIVERY_FINAL), as the proto comments say. A REST call without
// an Authorization header is refused with 401 before its body is read, a body over 4 MiB (gRPC's
// message limit) with 413, and a method a path does not serve with 405 and Allow.
//
// The contract holds only what the gateway keeps: descriptions of accounts, routes and webhooks
// are stored; what it cannot do yet (several binds or a rate limit per upstream, a per-account
// window, disabled routes, a route for several accounts, udhi payloads) is not in the proto.
// Values it fixes are documented and other values refused: webhook max_retry_duration,
// GetStats' throughput_interval (1m).
//
// # Webhooks
//
// Webhook deliveries are durable. The gateway hands each receipt and MO to the dispatcher
// (gateway.EventSink) before it answers the upstream's deliver_sm, and the dispatcher writes one
// store delivery per matching webhook, on the queue "webhook-queue:<webhook id>", and one per
// receipt of a message submitted with a callback_url, on "callback-queue:all-accounts": account
// deliver_sm queues under names no system_id can have (16 octets and more), the entry's
// ShortMessage holding the WebhookDelivery JSON (a callback's URL in Destination.Addr, its account
// in Source.Addr). On every instance one loop per queue claims at most Config.Webhooks.Workers
// entries at a time (consumer "webhooks@<instance>"), POSTs them signed in the Smppgw-Signature
// header (see Sign), acknowledges a 2xx, and gives anything else back with exponential back-off and
// jitter, carrying the same event_id and the attempt number, until MaxRetryDuration after it was
// queued; then it is dropped and counted (smppgw_webhook_deliveries_total{outcome="expired"}). A
// restart hands the claimed entries out again; instances sharing a Redis share the queues. Delivery
// is at least once: a POST whose acknowledgement is lost is made again. Webhooks added, disabled
// or removed (through any instance) are followed within RefreshInterval; the entries of a webhook
// removed while this instance runs are dropped as they come due (those of one removed while no
// instance ran stay in the store). A callback is signed with the secret of the account's
// oldest enabled webhook, else with Config.Webhooks.CallbackSecret.
//
// This package calls into gateway and store; it holds no SMPP or storage logic of its own, and
// must not change api/gateway.go, the contract the running gateway implements.
package api
