// Package dlr reads and writes SMPP 3.4 delivery receipts: the Appendix B text an SMSC puts in the
// short_message of a deliver_sm,
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text:...
//
// and the receipt TLVs (receipted_message_id, message_state, network_error_code) that SMPP 3.4 added
// next to it.
//
// Parse is tolerant, because SMSCs are not uniform: keys in any case, "submit_date"/"done_date"
// spellings, extra spaces, fields in any order, missing sub, dlvrd, dates or text, 10-, 12- or
// 14-digit dates, unknown key:value tokens (skipped), and a text: field that runs to the end of the
// message whatever it contains. Append writes one canonical form, the one Appendix B shows, so the
// receipts smppgw emits in its SMSC role are what strict ESME parsers expect.
//
// FromDeliverSM combines the TLVs with the text (the TLVs win); Info.ToDeliverSM fills a deliver_sm
// as an SMSC sends one.
//
// This package must not know about sessions, storage or routing: correlating a receipt with the
// message it reports on is the gateway's business.
package dlr
