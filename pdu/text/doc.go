// Package text holds the SMS text codecs of smppgw: the data_coding octet (Coding) and its
// classification into an Alphabet, the GSM 03.38 default alphabet with its extension table (unpacked,
// as SMPP peers send it in short_message, and packed, as on the air interface), IA5, Latin-1 and
// UCS-2 (carried as UTF-16BE), and the arithmetic of long messages: how many units a text costs
// (Units), how many SMS parts it takes (Parts), and where encoded text is cut (Split).
//
// Encoders append into a caller's buffer and allocate nothing when it has room; decoders accept any
// bytes from the network and report malformed input as errors wrapping ErrMalformed, never panicking.
//
// Capacity of one SMS. The TP user data of one SMS is 140 octets. A user data header (UDH) of n octets,
// counted with its UDHL octet, is taken from those 140 octets; GSM 7-bit text then starts at the next
// septet boundary, so the septets left are floor((140-n)*8/7):
//
//	UDH octets                      GSM 7-bit  8-bit  UCS-2
//	0 (single SMS, or SAR TLVs)     160        140    70
//	6 (concatenation, 8-bit ref)    153        134    67
//	7 (concatenation, 16-bit ref)   152        133    66
//
// With SAR TLVs (sar_msg_ref_num and friends) the parts carry no UDH and keep the full 160/140/70.
//
// This package must not import package pdu (pdu imports it), and knows nothing of UDH layout beyond its
// length: building and parsing concatenation headers belongs to the long-message code in pdu.
package text
