// Package storetest is the conformance suite every store.Store implementation passes, in the
// manner of database/sql driver compliance tests, plus the benchmarks shared by all of them.
//
// An implementation's test calls Run with a Harness that opens fresh stores and restarts one
// abruptly; its benchmarks call BenchAccept and BenchClaimAck. The suite keeps time-outs short
// (see Options) so it runs in seconds, and only ever talks to the store it was handed.
package storetest
