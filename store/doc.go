// Package store defines what smppgw persists (messages, the upstream id map, receipts, work queues,
// lost PDUs, accounts and routes) behind one Store interface, implemented by store/redis and
// store/embedded and checked by the shared conformance suite in store/storetest.
//
// It must not know about sessions or the wire beyond the encoded bytes it is handed.
package store
