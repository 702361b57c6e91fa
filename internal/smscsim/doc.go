// Package smscsim is an upstream SMSC simulator: it listens, accepts binds for the accounts it is
// given, answers submit_sm and data_sm with message ids of its own, records what it received, sends
// delivery receipts (after a delay, in a final state of choice) and MO on demand, and lets its caller
// inject faults: bind refusals, error statuses (permanent, temporary, ESME_RTHROTTLED), answers held
// back, links dropped.
//
// It is the upstream of the gateway's, api's and cmd's tests, and the core that cmd/smscsim and the
// quick start of `smppgw serve` build on; so it is production code, not a test helper, and it logs
// through zerolog. It is built on gateway/session (one session per accepted connection) and must not
// import gateway, whose own tests use it.
package smscsim
