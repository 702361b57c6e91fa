// Package smscsim is an upstream SMSC simulator: it listens, accepts binds for the accounts it is
// given, answers submit_sm and data_sm with message ids of its own, records what it received, sends
// delivery receipts (after a delay, in a fixed final state or a weighted mix of them drawn from a
// seedable RNG, or on demand for a given id) and MO (on a timer or on demand, a long one as parts with
// a UDH or SAR TLVs), and lets its caller inject faults: bind refusals, error statuses (permanent,
// temporary, ESME_RTHROTTLED) for a number of submissions, answers held back, links dropped; and
// standing ones: answers delayed (on one timer per link, not a goroutine per answer), a link dropped
// every N submissions, ESME_RTHROTTLED above a rate. It can also connect to an ESME that waits for
// outbinds and send one (Outbind). Each bound link has an id (its session's).
// Stats is a snapshot of what it received and sent; Handler serves all of this as a JSON HTTP API.
//
// It is the upstream of the gateway's, api's and cmd's tests, and the core that cmd/smscsim and the
// quick start of `smppgw serve` build on; so it is production code, not a test helper, and it logs
// through zerolog. It is built on gateway/session (one session per accepted connection) and must not
// import gateway, whose own tests use it.
package smscsim
