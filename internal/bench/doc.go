// Package bench is smppbench: one invocation that measures, side by side, what smppgw's SMSC
// ingress and full message path sustain against the ceiling of the wire, and prints one table.
//
// The rows (see Row): (1) smppload against a bare stdlib responder, the ceiling; (2) smppgw with
// the embedded store and with Redis (appendfsync everysec and always), the simulator upstream, at
// each window; (3) the npm smpp server answering smppload; (4) the npm smpp client, fiorix/go-smpp's
// Transmitter and smppload sending to smppgw; (5) app -> gRPC Submit -> upstream -> receipt ->
// StreamReceipts, at full load and then paced at half that rate for its latency; (6) 10,000 idle
// binds kept by enquire_link; (7) minutes of one bind at W=256 on smppgw's default settings, with
// what it accepted, what the upstream received and its queue depth read from its /metrics every few
// seconds, and a verdict on the queue: flat or growing (sustain.go).
//
// Every system under test runs as a process of its own (the bare responder is this executable
// started again, see Child), so that its CPU seconds and peak RSS are its own, read from /proc at the
// end of the row. smppgw rows run a fresh `smppgw serve` with a generated configuration and a fresh
// store each. End to end is what the upstream simulator received over the time from the first
// submit_sm to the last arrival; intake (submit_sm_resp per second) is reported beside it.
//
// This package measures smppgw from the outside: it must not import package gateway, store or api
// (the API's generated client stubs, api/gen, are its contract and fine), and all its traffic goes to
// 127.0.0.1. It is Linux only (/proc).
package bench
