// Package store defines what smppgw persists (messages, the upstream id map, receipts, work queues,
// lost PDUs, accounts and routes) behind one Store interface, implemented by store/redis and
// store/embedded and checked by the shared conformance suite in store/storetest.
//
// The interface is split at its callers' seams: Messages for the SMPP server and the API
// (accept, read, list), the upstream client (Settle, UpdatePart) and receipt handling (AddReceipt);
// Queues for the upstream client and the receiver binds (claim, acknowledge, give back, lost
// PDUs); Accounts, Upstreams, Routes, APIKeys and Webhooks for the admin and API layers.
// Callers branch on ErrNotFound and ErrUnavailable (never acknowledge what the store did not
// take) with errors.Is. Record encodings and the status rules shared by the implementations
// live here too.
//
// It must not know about sessions or the wire beyond the encoded bytes it is handed.
package store
