// Package pdu is the SMPP 3.4 wire: the header and framing, every PDU with its mandatory fields and
// optional TLVs, command status codes, the message states, and the named values of the bit and code
// fields (esm_class, registered_delivery, TON, NPI). Long messages are here too: user data headers
// (ParseUDH, AppendConcatUDH), splitting a text or payload into parts (Split, SplitText), finding a
// part in a PDU (ReadPart) and putting parts back together (Reassembler); so are SMPP times
// (ParseTime, AppendAbsoluteTime, AppendRelativeTime).
//
// Encoding appends into a caller's buffer (Append, AppendBody) and allocates nothing; decoding reads
// one frame (Reader) and fills a typed body that aliases the frame's bytes (Decode), so a decoded
// submit_sm costs the frame it was read from and the struct that holds it.
//
// Text codecs live in pdu/text, delivery receipts in pdu/dlr. This package must not know about
// sessions, sockets beyond io.Reader, storage or routing.
package pdu
