package gateway

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
)

// scheduleSkew is how far in the future a schedule_delivery_time may be and still count as "now":
// ESME clocks drift, and forwarding a schedule of a few seconds only adds work upstream.
const scheduleSkew = 5 * time.Second

// maxAddrLen is the longest source_addr or destination_addr of a submit_sm (21 octets with the NUL).
const maxAddrLen = 20

// maxE164 is the longest international number (ITU-T E.164: country code and national number).
const maxE164 = 15

// maxAlphanumeric is the longest alphanumeric sender: 11 GSM 7-bit characters fit the 10 octets of
// TP-Originating-Address (3GPP TS 23.040 9.1.2.5), and SMSCs cut or refuse longer ones.
const maxAlphanumeric = 11

// validNPI holds the numbering plan indicators SMPP 3.4 section 5.2.6 defines.
var validNPI = [256]bool{
	pdu.NPIUnknown: true, pdu.NPIISDN: true, pdu.NPIData: true, pdu.NPITelex: true, pdu.NPILandMobile: true,
	pdu.NPINational: true, pdu.NPIPrivate: true, pdu.NPIERMES: true, pdu.NPIInternet: true, pdu.NPIWAPClientID: true,
}

// The rules below are the one validation of a message, whichever way it came: a submit_sm from an
// ESME (fromSubmitSM) or a Submission from the API (fromSubmission). They name the field in the
// submitter's terms and carry the command status a submit_sm is refused with; the API answers the
// same *ValidationError with InvalidArgument (HTTP 400). Both paths finish with checkUpstream: what is
// accepted is only what the upstream submit_sm built from it can carry.

func refuse(field string, st pdu.CommandStatus, reason string) *ValidationError {
	return &ValidationError{Field: field, Reason: reason, Status: st}
}

// number returns the digits of a numeric address (an optional leading '+' is allowed, as ESMEs send
// it with TON international) and whether a is one.
func number(a string) (string, bool) {
	d := strings.TrimPrefix(a, "+")
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return d, false
		}
	}
	return d, d != ""
}

// checkTONNPI refuses the type of number and numbering plan values SMPP 3.4 does not define.
func checkTONNPI(field string, a store.Address, tonSt, npiSt pdu.CommandStatus) *ValidationError {
	switch {
	case a.TON > pdu.TONAbbreviated:
		return refuse(field, tonSt, "type of number "+strconv.Itoa(int(a.TON))+" is not one SMPP defines (0 to 6)")
	case !validNPI[a.NPI]:
		return refuse(field, npiSt, "numbering plan indicator "+strconv.Itoa(int(a.NPI))+" is not one SMPP defines")
	}
	return nil
}

// checkDestination: a destination is a number, digits only (after an optional '+'), at most 15 of
// them in an international number (E.164) and 20 otherwise (the field's size). Alphanumeric
// destinations (TON 5) are refused: no mobile network delivers to one, and the gateway allows letters
// only in a sender.
func checkDestination(a store.Address) *ValidationError {
	const f = "destination"
	if ve := checkTONNPI(f, a, pdu.ESME_RINVDSTTON, pdu.ESME_RINVDSTNPI); ve != nil {
		return ve
	}
	if a.Addr == "" {
		return refuse(f, pdu.ESME_RINVDSTADR, "is required")
	}
	if len(a.Addr) > maxAddrLen {
		return refuse(f, pdu.ESME_RINVDSTADR, strconv.Itoa(len(a.Addr))+" characters, at most "+strconv.Itoa(maxAddrLen))
	}
	d, ok := number(a.Addr)
	switch {
	case !ok || a.TON == pdu.TONAlphanumeric:
		return refuse(f, pdu.ESME_RINVDSTADR, "not a number: digits only, optionally after '+'")
	case a.TON == pdu.TONInternational && len(d) > maxE164:
		return refuse(f, pdu.ESME_RINVDSTADR, strconv.Itoa(len(d))+" digits, at most "+strconv.Itoa(maxE164)+" in an international number")
	}
	return nil
}

// checkSource: a sender is a number (as a destination, any TON but 5), or alphanumeric: printable
// ASCII, at most 11 characters, with TON 5 or 0 (unknown: many ESMEs send their sender name so, and
// SMSCs take it). It is required: an empty source_addr would leave under whatever sender the upstream
// gives the gateway's own bind, not one the account chose (possibly another account's), so the
// gateway refuses it rather than guess.
func checkSource(a store.Address) *ValidationError {
	const f = "source"
	if ve := checkTONNPI(f, a, pdu.ESME_RINVSRCTON, pdu.ESME_RINVSRCNPI); ve != nil {
		return ve
	}
	if a.Addr == "" {
		return refuse(f, pdu.ESME_RINVSRCADR, "is required")
	}
	if len(a.Addr) > maxAddrLen {
		return refuse(f, pdu.ESME_RINVSRCADR, strconv.Itoa(len(a.Addr))+" characters, at most "+strconv.Itoa(maxAddrLen))
	}
	if d, ok := number(a.Addr); ok && a.TON != pdu.TONAlphanumeric {
		if a.TON == pdu.TONInternational && len(d) > maxE164 {
			return refuse(f, pdu.ESME_RINVSRCADR, strconv.Itoa(len(d))+" digits, at most "+strconv.Itoa(maxE164)+" in an international number")
		}
		return nil
	}
	if a.TON != pdu.TONAlphanumeric && a.TON != pdu.TONUnknown {
		return refuse(f, pdu.ESME_RINVSRCADR, "not a number, and an alphanumeric sender needs type of number 5 (or 0)")
	}
	if len(a.Addr) > maxAlphanumeric {
		return refuse(f, pdu.ESME_RINVSRCADR, strconv.Itoa(len(a.Addr))+" characters, at most "+strconv.Itoa(maxAlphanumeric)+" in an alphanumeric sender")
	}
	for i := 0; i < len(a.Addr); i++ {
		if c := a.Addr[i]; c < 0x20 || c > 0x7e {
			return refuse(f, pdu.ESME_RINVSRCADR, "an alphanumeric sender is printable ASCII only")
		}
	}
	return nil
}

// checkRegisteredDelivery refuses the values SMPP 3.4 section 5.2.17 reserves.
func checkRegisteredDelivery(rd uint8) *ValidationError {
	if rd&pdu.RegisteredDeliveryReceiptMask == pdu.RegisteredDeliveryReceiptMask || rd&pdu.RegisteredDeliveryReservedMask != 0 {
		return refuse("registered_delivery", pdu.ESME_RINVREGDLVFLG, "uses reserved bits")
	}
	return nil
}

// checkPriority refuses priority_flag values above 3 (SMPP 3.4 section 5.2.14 reserves them).
func checkPriority(field string, p uint8) *ValidationError {
	if p > 3 {
		return refuse(field, pdu.ESME_RINVPRTFLG, "must be 0 to 3, is "+strconv.Itoa(int(p)))
	}
	return nil
}

// checkTimes checks a message's schedule and validity and returns the schedule to keep: zero for
// "now" (none, in the past, or within scheduleSkew). A later schedule is stored with the message and
// forwarded upstream as schedule_delivery_time, so the SMSC holds the message until then, as Kannel and
// Jasmin forward it; the gateway itself does not delay the submit_sm.
func checkTimes(schedule time.Time, validity time.Time, now time.Time) (time.Time, *ValidationError) {
	if !schedule.After(now.Add(scheduleSkew)) {
		schedule = time.Time{}
	}
	if !validity.IsZero() && !validity.After(now) {
		return time.Time{}, refuse("validity_period", pdu.ESME_RINVEXPIRY, "is in the past")
	}
	if !validity.IsZero() && !schedule.IsZero() && !validity.After(schedule) {
		return time.Time{}, refuse("validity_period", pdu.ESME_RINVEXPIRY, "ends before the scheduled delivery")
	}
	return schedule, nil
}

// checkShortMessage checks the content of a submit_sm. An empty message (no short_message and no
// message_payload) is refused with ESME_RINVMSGLEN: SMPP allows it, but it reaches the handset as an
// empty SMS the account pays for, which no ESME means to send (the API refuses empty text the same
// way). Two empty messages do mean something and pass: a Type 0 "ping" (protocol_id 0x40, which
// handsets acknowledge and do not show) and a message waiting indication (ms_msg_wait_facilities).
func checkShortMessage(b *pdu.SubmitSM) *ValidationError {
	_, hasPayload := b.Options.MessagePayload()
	udhi := b.EsmClass&pdu.EsmClassUDHI != 0
	switch {
	case hasPayload && len(b.ShortMessage) > 0:
		// SMPP 3.4 5.3.2.32: one or the other.
		return refuse("short_message", pdu.ESME_RINVMSGLEN, "must be empty when message_payload is given")
	case !hasPayload && len(b.ShortMessage) == 0 && !udhi:
		if _, mwi := b.Options.MsMsgWaitFacilities(); mwi || b.ProtocolID == 0x40 {
			return nil
		}
		return refuse("short_message", pdu.ESME_RINVMSGLEN, "is empty")
	case udhi && !hasPayload && (len(b.ShortMessage) == 0 || int(b.ShortMessage[0])+1 > len(b.ShortMessage)):
		return refuse("short_message", pdu.ESME_RINVMSGLEN, "esm_class says it starts with a user data header, and it holds no whole one")
	case text.Coding(b.DataCoding) == text.UCS2 && !udhi && len(b.ShortMessage)%2 != 0:
		return refuse("short_message", pdu.ESME_RINVMSGLEN, strconv.Itoa(len(b.ShortMessage))+" octets: UCS-2 comes in pairs of octets")
	}
	return nil
}

// checkUpstream refuses a message the upstream submit_sm of one of its parts could not carry, before
// it is acknowledged: once acknowledged it could only fail for good later. It runs the encoder's own
// checks (pdu's Check) on the submit_sm the client will build (fillSubmitSMTimes) without encoding it. The
// absolute times it adds are always 16 characters and are left out here.
func checkUpstream(m *store.Message) *ValidationError {
	for i := range m.Parts {
		p := &m.Parts[i]
		t := store.PartTask{
			ServiceType: m.ServiceType, Source: m.Source, Destination: m.Destination, ESMClass: p.ESMClass,
			ProtocolID: m.ProtocolID, PriorityFlag: m.PriorityFlag, RegisteredDelivery: m.RegisteredDelivery,
			DataCoding: m.DataCoding, ShortMessage: p.ShortMessage, TLVs: p.TLVs,
		}
		var sm pdu.SubmitSM
		fillSubmitSM(&sm, &t)
		if err := sm.Check(); err != nil {
			return fromFieldError(err)
		}
	}
	return nil
}

// fromFieldError says a pdu.FieldError in the user's terms: its field and reason, without the
// package and PDU the log keeps.
func fromFieldError(err error) *ValidationError {
	var fe *pdu.FieldError
	if errors.As(err, &fe) {
		f := fe.Field
		switch f {
		case "source_addr":
			f = "source"
		case "destination_addr":
			f = "destination"
		}
		return refuse(f, fe.Status, fe.Reason)
	}
	return refuse("message", pdu.ESME_RSYSERR, reasonOf(err))
}

// reasonOf says err without the package prefixes the log keeps: "pdu: submit_sm: short_message: text:
// character not encodable: ..." reads "character not encodable: ...".
func reasonOf(err error) string {
	for strings.HasPrefix(err.Error(), "pdu: ") && errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return strings.TrimPrefix(err.Error(), "text: ")
}
