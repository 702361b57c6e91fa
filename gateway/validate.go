package gateway

import (
	"bytes"
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

// validNPI holds the numbering plan indicators SMPP 3.4 section 5.2.6 defines.
var validNPI = [256]bool{0: true, 1: true, 3: true, 4: true, 6: true, 8: true, 9: true, 10: true, 14: true, 18: true}

// checkAddr validates one address triple; the statuses name which side is wrong.
func checkAddr(a store.Address, required bool, tonSt, npiSt, addrSt pdu.CommandStatus) (pdu.CommandStatus, string) {
	switch {
	case a.TON > 6:
		return tonSt, "type of number must be 0 to 6"
	case !validNPI[a.NPI]:
		return npiSt, "numbering plan indicator is not one SMPP defines"
	case required && a.Addr == "":
		return addrSt, "is required"
	case len(a.Addr) > maxAddrLen:
		return addrSt, "is longer than 20 octets"
	}
	return pdu.ESME_ROK, ""
}

// checkRegisteredDelivery refuses the values SMPP 3.4 section 5.2.17 reserves.
func checkRegisteredDelivery(rd uint8) bool { return rd&0x03 != 0x03 && rd&0xe0 == 0 }

// checkTimes checks a message's schedule and validity and returns the schedule to keep: zero for
// "now" (none, in the past, or within scheduleSkew). A later schedule is stored with the message and
// forwarded upstream as schedule_delivery_time, so the SMSC holds the message until then, as Kannel and
// Jasmin forward it; the gateway itself does not delay the submit_sm.
func checkTimes(schedule time.Time, validity time.Time, now time.Time) (time.Time, pdu.CommandStatus, string, string) {
	if !schedule.After(now.Add(scheduleSkew)) {
		schedule = time.Time{}
	}
	if !validity.IsZero() && !validity.After(now) {
		return time.Time{}, pdu.ESME_RINVEXPIRY, "validity", "is in the past"
	}
	if !validity.IsZero() && !schedule.IsZero() && !validity.After(schedule) {
		return time.Time{}, pdu.ESME_RINVEXPIRY, "validity", "ends before the scheduled delivery"
	}
	return schedule, pdu.ESME_ROK, "", ""
}

// fromSubmitSM validates a submit_sm from account and turns it into a store.Message of one part (a
// part of a long message, UDH or SAR, stays one part as received), routed. Nothing of b is aliased.
func (r *Router) fromSubmitSM(account string, b *pdu.SubmitSM, now time.Time) (*store.Message, pdu.CommandStatus) {
	src := store.Address{TON: b.SourceAddrTON, NPI: b.SourceAddrNPI, Addr: strings.Clone(b.SourceAddr)}
	dst := store.Address{TON: b.DestAddrTON, NPI: b.DestAddrNPI, Addr: strings.Clone(b.DestinationAddr)}
	if st, why := checkAddr(dst, true, pdu.ESME_RINVDSTTON, pdu.ESME_RINVDSTNPI, pdu.ESME_RINVDSTADR); st != pdu.ESME_ROK {
		r.log.Info().Str("account", account).Str("dest", dst.Addr).Str("reason", why).Msg("submit_sm refused: destination")
		return nil, st
	}
	if st, why := checkAddr(src, false, pdu.ESME_RINVSRCTON, pdu.ESME_RINVSRCNPI, pdu.ESME_RINVSRCADR); st != pdu.ESME_ROK {
		r.log.Info().Str("account", account).Str("src", src.Addr).Str("reason", why).Msg("submit_sm refused: source")
		return nil, st
	}
	if !checkRegisteredDelivery(b.RegisteredDelivery) {
		return nil, pdu.ESME_RINVREGDLVFLG
	}
	// Message type (bits 5-2): default, or the ESME's delivery / manual acknowledgement.
	if mt := b.EsmClass & pdu.EsmClassTypeMask; mt != 0 && mt != pdu.EsmClassSMEAck && mt != pdu.EsmClassUserAck {
		return nil, pdu.ESME_RINVESMCLASS
	}
	_, hasPayload := b.Options.MessagePayload()
	switch {
	case hasPayload && len(b.ShortMessage) > 0:
		return nil, pdu.ESME_RINVMSGLEN // SMPP 3.4 5.3.2.32: one or the other
	case b.EsmClass&pdu.EsmClassUDHI != 0 && (len(b.ShortMessage) == 0 || int(b.ShortMessage[0])+1 > len(b.ShortMessage)):
		return nil, pdu.ESME_RINVMSGLEN // UDHI set but no whole UDH
	case text.Coding(b.DataCoding) == text.UCS2 && b.EsmClass&pdu.EsmClassUDHI == 0 && len(b.ShortMessage)%2 != 0:
		return nil, pdu.ESME_RINVMSGLEN // UCS-2 comes in pairs of octets
	}
	schedule, err := pdu.ParseTime(b.ScheduleDeliveryTime, now)
	if err != nil {
		return nil, pdu.ESME_RINVSCHED
	}
	validity, err := pdu.ParseTime(b.ValidityPeriod, now)
	if err != nil {
		return nil, pdu.ESME_RINVEXPIRY
	}
	schedule, st, _, why := checkTimes(schedule, validity, now)
	if st != pdu.ESME_ROK {
		r.log.Info().Str("account", account).Str("reason", why).Stringer("status", st).Msg("submit_sm refused")
		return nil, st
	}
	up, ok := r.pickUpstream(account, dst.Addr)
	if !ok {
		// ESME_RINVDSTADR rather than ESME_RSUBMITFAIL: the gateway cannot reach this destination at all,
		// which is permanent for it, and ESMEs treat RINVDSTADR as "do not retry" while many retry the
		// generic RSUBMITFAIL for ever.
		r.log.Info().Str("account", account).Str("dest", dst.Addr).Msg("submit_sm refused: no route")
		return nil, pdu.ESME_RINVDSTADR
	}
	return &store.Message{
		Account: account, ServiceType: strings.Clone(b.ServiceType), Source: src, Destination: dst,
		ESMClass: b.EsmClass, ProtocolID: b.ProtocolID, PriorityFlag: b.PriorityFlag,
		RegisteredDelivery: b.RegisteredDelivery, DataCoding: b.DataCoding, Validity: validity, Schedule: schedule, Upstream: up,
		Parts: []store.Part{{ESMClass: b.EsmClass, ShortMessage: bytes.Clone(b.ShortMessage), TLVs: bytes.Clone(b.Options)}},
	}, pdu.ESME_ROK
}

// defaultAddr fills the TON/NPI of an address given as a bare string: "+" and digits is
// international E.164, digits alone unknown/E.164, anything else alphanumeric.
func defaultAddr(a store.Address) store.Address {
	if a.TON != 0 || a.NPI != 0 || a.Addr == "" {
		return a
	}
	digits := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
		return s != ""
	}
	switch {
	case strings.HasPrefix(a.Addr, "+") && digits(a.Addr[1:]):
		return store.Address{TON: 1, NPI: 1, Addr: a.Addr[1:]}
	case digits(a.Addr):
		return store.Address{TON: 0, NPI: 1, Addr: a.Addr}
	}
	return store.Address{TON: 5, NPI: 0, Addr: a.Addr}
}

// fromSubmission validates an API submission and turns it into a store.Message, split into parts and
// routed. Errors are *ValidationError or ErrNoRoute.
func (r *Router) fromSubmission(s Submission, now time.Time) (*store.Message, error) {
	bad := func(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }
	if s.Account == "" {
		return nil, bad("account", "is required")
	}
	src, dst := defaultAddr(s.Source), defaultAddr(s.Destination)
	if st, why := checkAddr(dst, true, pdu.ESME_RINVDSTTON, pdu.ESME_RINVDSTNPI, pdu.ESME_RINVDSTADR); st != pdu.ESME_ROK {
		return nil, bad("destination", why)
	}
	if st, why := checkAddr(src, false, pdu.ESME_RINVSRCTON, pdu.ESME_RINVSRCNPI, pdu.ESME_RINVSRCADR); st != pdu.ESME_ROK {
		return nil, bad("source", why)
	}
	if (s.Text == "") == (len(s.Binary) == 0) {
		return nil, bad("text", "exactly one of text and binary is required")
	}
	if !checkRegisteredDelivery(s.RegisteredDelivery) {
		return nil, bad("registered_delivery", "uses reserved bits")
	}
	if s.Priority > 3 {
		return nil, bad("priority", "must be 0 to 3")
	}
	schedule, st, field, why := checkTimes(s.Schedule, s.Validity, now)
	if st != pdu.ESME_ROK {
		return nil, bad(field, why)
	}
	up, ok := r.pickUpstream(s.Account, dst.Addr)
	if !ok {
		return nil, ErrNoRoute
	}
	tmpl := &pdu.SubmitSM{
		SourceAddrTON: src.TON, SourceAddrNPI: src.NPI, SourceAddr: src.Addr,
		DestAddrTON: dst.TON, DestAddrNPI: dst.NPI, DestinationAddr: dst.Addr,
		PriorityFlag: s.Priority, RegisteredDelivery: s.RegisteredDelivery,
	}
	if s.DataCoding != nil {
		tmpl.DataCoding = *s.DataCoding
	}
	ref := uint16(r.nextRef.Add(1))
	var parts []*pdu.SubmitSM
	var err error
	if s.Text != "" {
		parts, err = pdu.SplitText(tmpl, r.split, s.Text, ref)
	} else {
		if s.DataCoding == nil {
			tmpl.DataCoding = uint8(text.Binary)
		}
		parts, err = pdu.Split(tmpl, r.split, s.Binary, ref)
	}
	if err != nil {
		field := "text"
		if s.Text == "" {
			field = "binary"
		}
		// Too many parts (*pdu.FieldError) or text the coding cannot carry (text.ErrUnencodable, ...).
		return nil, bad(field, err.Error())
	}
	m := &store.Message{
		Account: s.Account, Source: src, Destination: dst, PriorityFlag: s.Priority,
		RegisteredDelivery: s.RegisteredDelivery, DataCoding: parts[0].DataCoding, Validity: s.Validity,
		Schedule: schedule, ClientRef: s.ClientRef, Upstream: up, Parts: make([]store.Part, len(parts)),
	}
	for i, p := range parts {
		m.Parts[i] = store.Part{ESMClass: p.EsmClass, ShortMessage: bytes.Clone(p.ShortMessage), TLVs: bytes.Clone(p.Options)}
	}
	return m, nil
}

// submitSMOf builds the submit_sm of a claimed part.
func submitSMOf(t *store.PartTask) *pdu.SubmitSM {
	sm := &pdu.SubmitSM{
		ServiceType:   t.ServiceType,
		SourceAddrTON: t.Source.TON, SourceAddrNPI: t.Source.NPI, SourceAddr: t.Source.Addr,
		DestAddrTON: t.Destination.TON, DestAddrNPI: t.Destination.NPI, DestinationAddr: t.Destination.Addr,
		EsmClass: t.ESMClass, ProtocolID: t.ProtocolID, PriorityFlag: t.PriorityFlag,
		RegisteredDelivery: t.RegisteredDelivery, DataCoding: t.DataCoding,
		ShortMessage: t.ShortMessage, Options: pdu.Options(t.TLVs),
	}
	// Absolute times in UTC ("...00+"): unambiguous whatever zone the store decoded them in.
	if !t.Validity.IsZero() {
		sm.ValidityPeriod = string(pdu.AppendAbsoluteTime(nil, t.Validity.UTC()))
	}
	if !t.Schedule.IsZero() {
		sm.ScheduleDeliveryTime = string(pdu.AppendAbsoluteTime(nil, t.Schedule.UTC()))
	}
	return sm
}
