package dlr

import (
	"fmt"
	"strings"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
)

// maxShortMessage is the most short_message can carry (SMPP 3.4 section 5.2.22); a longer receipt
// goes in message_payload.
const maxShortMessage = 254

// maxReceiptedID is the longest receipted_message_id: a C-Octet String of at most 65 octets with its
// NUL (SMPP 3.4 section 5.3.2.12).
const maxReceiptedID = 64

// Info is what a receipt deliver_sm says, from its TLVs and its text together. Where both speak, the
// TLVs win: they are binary, typed and standard, while the text's format is only an appendix's
// example and SMSCs write it in their own ways (a decimal id in the text and a hex one in the TLV is
// common).
type Info struct {
	MessageID       string               // receipted_message_id when present, else the text's id
	State           pdu.MessageState     // message_state when present and non-zero, else Receipt.State()
	NetworkError    pdu.NetworkErrorCode // network_error_code, when HasNetworkError
	HasNetworkError bool
	Intermediate    bool    // an intermediate delivery notification rather than a delivery receipt
	Receipt         Receipt // the text; absent values where it said nothing or could not be read

	// TextErr is why the text could not be read (wrapping ErrNotReceipt or ErrMalformed), when the
	// TLVs carried the id and the state anyway. Many SMSCs send receipts with an empty short_message
	// and only TLVs; this is for logging, not a failure.
	TextErr error
}

// FromDeliverSM reads the receipt a deliver_sm carries. The text is taken from short_message, or from
// message_payload when short_message is empty, after a user data header when esm_class has UDHI;
// UCS-2 and Latin-1 data codings are decoded, any other is taken as ASCII. That includes the default
// alphabet (0), which the rest of smppgw reads as GSM 03.38: SMSCs write receipts in ASCII under it,
// and a GSM reading would turn the "_" of "submit_date" into "§".
//
// The error wraps ErrNotReceipt when esm_class is not a receipt's (see IsReceipt), and ErrMalformed
// when neither the TLVs nor the text give the message id, or the state. Otherwise a text that could
// not be read is reported in Info.TextErr. Info's strings do not alias d.
func FromDeliverSM(d *pdu.DeliverSM) (Info, error) {
	if d == nil {
		return Info{}, fmt.Errorf("%w: no deliver_sm", ErrNotReceipt)
	}
	if !IsReceipt(d.EsmClass) {
		return Info{}, fmt.Errorf("%w: esm_class 0x%02X", ErrNotReceipt, d.EsmClass)
	}
	var info Info
	info.Intermediate = d.EsmClass&pdu.EsmClassTypeMask == pdu.EsmClassIntermediate
	info.Receipt, info.TextErr = Parse(receiptText(d))

	info.MessageID = info.Receipt.ID
	if id, ok := d.Options.ReceiptedMessageID(); ok && id != "" {
		// The accessor's string may alias the frame; the Info outlives it.
		info.MessageID = strings.Clone(id)
	}
	if st, ok := d.Options.MessageState(); ok && st != 0 {
		info.State = st
	} else if info.Receipt.Stat != "" {
		info.State = info.Receipt.State()
	}
	info.NetworkError, info.HasNetworkError = d.Options.NetworkErrorCode()

	if info.MessageID == "" {
		return info, &FieldError{Field: "receipted_message_id", Reason: "missing, and the text has no id: " + errText(info.TextErr), Err: ErrMalformed}
	}
	if info.State == 0 {
		return info, &FieldError{Field: "message_state", Reason: "missing, and the text has no stat: " + errText(info.TextErr), Err: ErrMalformed}
	}
	return info, nil
}

func errText(err error) string {
	if err == nil {
		return "(no error)"
	}
	return err.Error()
}

// receiptText returns the receipt text of d as a new string.
func receiptText(d *pdu.DeliverSM) string {
	b := d.ShortMessage
	if len(b) == 0 {
		if p, ok := d.Options.MessagePayload(); ok {
			b = p
		}
	}
	if d.EsmClass&pdu.EsmClassUDHI != 0 && len(b) > 0 {
		b = b[min(1+int(b[0]), len(b)):]
	}
	switch c := text.Coding(d.DataCoding); c {
	case text.UCS2, text.Latin1:
		// A broken character must not cost the receipt its keys.
		return text.DecodeLossy(c, b)
	}
	return string(b)
}

// ToDeliverSM fills d as an SMSC sends a receipt, for smppgw's own SMSC role: esm_class 0x04 (0x20
// when Intermediate), registered_delivery 0, the Appendix B text of i.Receipt as short_message, and
// the receipted_message_id, message_state and network_error_code TLVs (the last only when
// HasNetworkError; other TLVs of d are kept). Addresses and service_type are the caller's: a receipt
// goes from the original destination to the original source.
//
// Empty parts are filled from each other: MessageID from Receipt.ID and back, State from Receipt.Stat
// (UNKNOWN when that is empty too) and Stat from State. The data_coding is the first that carries the
// text unchanged: 0, as SMSCs send receipts, when the text reads the same in ASCII and GSM 03.38
// (every receipt whose text: has no @ $ _ ` [ \ ] ^ { | } ~); IA5 (0x01) for other ASCII; UCS-2
// (0x08) for the rest. A text longer than short_message's 254 octets goes in message_payload.
//
// The error wraps ErrMalformed when there is no message id, or it does not fit receipted_message_id
// (more than 64 octets, or a NUL in it). d.ShortMessage is newly allocated, never written into, as it
// may alias a decoded frame.
func (i Info) ToDeliverSM(d *pdu.DeliverSM) error {
	r := i.Receipt
	id := i.MessageID
	if id == "" {
		id = r.ID
	}
	if id == "" {
		return &FieldError{Field: "receipted_message_id", Reason: "missing", Err: ErrMalformed}
	}
	if len(id) > maxReceiptedID {
		return &FieldError{Field: "receipted_message_id", Value: id, Reason: "longer than 64 octets", Err: ErrMalformed}
	}
	if strings.IndexByte(id, 0) >= 0 {
		return &FieldError{Field: "receipted_message_id", Value: id, Reason: "holds a NUL", Err: ErrMalformed}
	}
	if r.ID == "" {
		r.ID = id
	}
	state := i.State
	if state == 0 {
		state = r.State()
	}
	if r.Stat == "" {
		r.Stat = StatFor(state)
	}

	d.EsmClass = pdu.EsmClassReceipt
	if i.Intermediate {
		d.EsmClass = pdu.EsmClassIntermediate
	}
	d.RegisteredDelivery = 0 // a receipt must not ask for a receipt

	body := r.Append(make([]byte, 0, 96+len(r.ID)+len(r.Stat)+len(r.Err)+len(r.Text)))
	switch {
	case sameInGSM(body):
		d.DataCoding = uint8(text.Default)
	case isASCII(body):
		d.DataCoding = uint8(text.IA5)
	default:
		d.DataCoding = uint8(text.UCS2)
		// Receipt fields parsed from a peer may hold invalid UTF-8; it goes out as U+FFFD.
		body, _ = text.AppendEncode(make([]byte, 0, 2*len(body)), text.UCS2, strings.ToValidUTF8(string(body), "\uFFFD"))
	}
	if len(body) <= maxShortMessage {
		d.ShortMessage = body
		d.Options.Delete(pdu.TagMessagePayload)
	} else {
		d.ShortMessage = nil
		d.Options.SetMessagePayload(body)
	}

	d.Options.SetReceiptedMessageID(id)
	d.Options.SetMessageState(state)
	if i.HasNetworkError {
		d.Options.SetNetworkErrorCode(i.NetworkError)
	} else {
		d.Options.Delete(pdu.TagNetworkErrorCode)
	}
	return nil
}

// sameInGSM reports whether b reads the same as ASCII and as the GSM 03.38 default alphabet
// (unpacked): letters, digits, space, CR, LF and the punctuation both tables put at the same code.
// The gateway reads data_coding 0 as GSM, most SMSCs and ESMEs as ASCII; a receipt in this subset is
// right under either reading.
func sameInGSM(b []byte) bool {
	for _, c := range b {
		switch {
		case c == '\n' || c == '\r':
		case c < 0x20 || c > 0x7E:
			return false
		case c == '@' || c == '$' || c == '_' || c == '`':
			return false
		case c >= '[' && c <= '^', c >= '{':
			return false
		}
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
