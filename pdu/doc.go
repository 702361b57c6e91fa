// Package pdu is the SMPP 3.4 wire: the header and framing, every PDU with its mandatory fields and
// optional TLVs, command status codes, and the message states.
//
// Encoding appends into a caller's buffer (Append, AppendBody) and allocates nothing; decoding reads
// one frame (Reader) and fills a typed body that aliases the frame's bytes (Decode), so a decoded
// submit_sm costs the frame it was read from and the struct that holds it.
//
// Text codecs live in pdu/text, delivery receipts in pdu/dlr. This package must not know about
// sessions, sockets beyond io.Reader, storage or routing.
package pdu
