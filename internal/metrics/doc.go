// Package metrics exposes a running gateway to Prometheus: a Collector that reads the gateway's
// snapshots at scrape time (sessions, PDU counts and latency from session meters, upstreams, queues,
// message counts), and a store decorator that times every store operation and counts receipts by
// state.
//
// Nothing here runs on the message path but the store decorator's clock reads and histogram
// observations (lock-free atomics in client_golang); everything else is read when Prometheus
// scrapes. It must not change what the gateway does, only observe it.
package metrics
