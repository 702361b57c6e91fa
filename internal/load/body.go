package load

import (
	"errors"
	"fmt"
	"strings"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
)

// The texts of each kind. The long ones take exactly three parts with an 8-bit concatenation UDH
// (153 GSM septets or 67 UCS-2 characters a part).
var (
	textGSM      = "smppload: the quick brown fox jumps over the lazy dog 0123456789 {[€]}"
	textUCS2     = "smppload: Привет, 你好, γειά σου ✓"
	textLong     = strings.Repeat("smppload long message, GSM 03.38, part after part. ", 8)[:400]
	textLongUCS2 = strings.Repeat("Длинное сообщение ✓ ", 8)
)

func kindText(k Kind) (string, text.Coding) {
	switch k {
	case KindUCS2:
		return textUCS2, text.UCS2
	case KindLong:
		return textLong, text.Default
	case KindLongUCS2:
		return textLongUCS2, text.UCS2
	}
	return textGSM, text.Default
}

// template is one submit_sm, encoded once: the body octets with two holes a send fills in, the
// destination's random digits and the concatenation reference.
type template struct {
	b      []byte
	kind   Kind
	part   int // 1-based
	parts  int
	digits int // offset of the random digits of destination_addr in b
	ref    int // offset of the concatenation reference in b; -1 for a single SMS
}

// buildTemplates encodes every part of every kind once.
func buildTemplates(c *Config) ([numKinds][]template, error) {
	var out [numKinds][]template
	dest := c.Dest + strings.Repeat("0", c.DestDigits)
	for k := Kind(0); k < numKinds; k++ {
		s, coding := kindText(k)
		tmpl := &pdu.SubmitSM{
			SourceAddrTON: 5, SourceAddrNPI: 0, SourceAddr: c.Source,
			DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: dest,
			RegisteredDelivery: c.RegisteredDelivery, DataCoding: uint8(coding),
		}
		// Reference 0xA5 marks where the reference octet sits; it is found, not assumed.
		parts, err := pdu.SplitText(tmpl, pdu.SplitUDH8, s, 0xA5)
		if err != nil {
			return out, fmt.Errorf("load: %s text: %w", k, err)
		}
		if (k == KindLong || k == KindLongUCS2) != (len(parts) > 1) {
			return out, fmt.Errorf("load: %s text makes %d parts", k, len(parts))
		}
		// service_type, two octets of TON/NPI, source_addr, two more: then destination_addr.
		digits := len(tmpl.ServiceType) + 1 + 2 + len(c.Source) + 1 + 2 + len(c.Dest)
		for i, p := range parts {
			b, err := p.AppendBody(nil)
			if err != nil {
				return out, fmt.Errorf("load: %s text, part %d: %w", k, i+1, err)
			}
			if string(b[digits-len(c.Dest):digits+c.DestDigits]) != dest {
				return out, errors.New("load: destination_addr is not where the layout puts it")
			}
			t := template{b: b, kind: k, part: i + 1, parts: len(parts), digits: digits, ref: -1}
			if len(parts) > 1 {
				// The short_message ends the body (no TLVs) and starts with 05 00 03 ref total seq.
				sm := len(b) - len(p.ShortMessage)
				if sm < 0 || b[sm] != 5 || b[sm+1] != 0 || b[sm+2] != 3 || b[sm+3] != 0xA5 {
					return out, errors.New("load: concatenation UDH is not where it is expected")
				}
				t.ref = sm + 3
			}
			out[k] = append(out[k], t)
		}
	}
	return out, nil
}

// draw is the message a bind's sender is sending now: the destination digits and the reference of
// its parts. Only the sender writes it, and only AppendBody, on the same goroutine, reads it.
type draw struct {
	digits [20]byte
	ref    byte
}

// wire is a pre-encoded submit_sm body as a session sends it: AppendBody copies the template and
// fills in the holes from the sender's current draw. Each bind has its own wires (they point at its
// draw); the session keeps the pointer as the request's body, read only for its command id and kind.
type wire struct {
	t   *template
	cur *draw
	n   int // random digits
}

var errWriteOnly = errors.New("load: a pre-encoded submit_sm is write-only")

func (w *wire) CommandID() pdu.CommandID { return pdu.SubmitSMID }

func (w *wire) AppendBody(dst []byte) ([]byte, error) {
	at := len(dst)
	dst = append(dst, w.t.b...)
	copy(dst[at+w.t.digits:at+w.t.digits+w.n], w.cur.digits[:w.n])
	if w.t.ref >= 0 {
		dst[at+w.t.ref] = w.cur.ref
	}
	return dst, nil
}

func (w *wire) DecodeBody([]byte) error { return errWriteOnly }
