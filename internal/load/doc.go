// Package load is smppload's fleet: simulated ESMEs that bind to an SMSC (the gateway), submit a
// bounded number of messages within a window per bind and an optional global rate, answer the
// delivery receipts that come back, and report what happened: sent, acknowledged, errors by status,
// receipts by state, throughput and submit-to-response latency.
//
// It is a measuring tool first, so the send path is kept light: every submit_sm body is encoded once
// (per text kind and part) and copied into the session's outgoing buffer on each send, with only the
// destination's random digits and the concatenation reference patched in place; each bind has one
// sender goroutine that keeps exactly Config.Window requests in flight (session.SendAsync blocks on
// the window); outcomes arrive on the session's reader through the Handler, never on a goroutine per
// PDU; counters are atomics and latency goes to a fixed-size log-linear histogram.
//
// Members of the fleet can also be born from an outbind (Config.OutbindListen): the SMSC connects to
// us, sends outbind, and we bind back on that connection.
//
// This package speaks SMPP only through gateway/session and pdu. It must not import package gateway,
// store or api: it measures them from the outside.
package load
