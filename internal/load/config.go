package load

import (
	"crypto/tls"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
)

// Config is one run of the fleet. The zero value of every field is documented; Addr (or
// OutbindListen) is the only one that must be set.
type Config struct {
	// Addr is the SMSC to dial, host:port. Empty means no dialed binds: OutbindListen must be set.
	Addr string
	// TLS, when not nil, dials Addr with TLS using this configuration (ServerName defaults to Addr's
	// host). Outbind connections are plain TCP.
	TLS *tls.Config

	// SystemID, Password and SystemType are sent in every bind (also when binding back after an
	// outbind). Empty SystemID means "smppload".
	SystemID, Password, SystemType string
	// BindType of every bind. Zero (session.BindNone) means transceiver, which both submits and
	// receives receipts; a receiver only listens, a transmitter only sends.
	BindType session.BindType
	// Binds is how many connections are dialed to Addr. 0 means 1 when Addr is set; negative means none.
	Binds int

	// Messages is the total over all binds; a long message counts once here and once per part in
	// Report.Sent. 0 means no bound by count: Duration or the context ends the run.
	Messages int
	// Window is how many submit_sm each bind keeps in flight. 0 means 10.
	Window int
	// Rate caps submit_sm per second over the whole fleet (a long message's parts count one each).
	// 0 means no cap.
	Rate float64
	// Duration bounds the sending in time; what is in flight when it ends is still awaited. 0 means
	// no bound in time.
	Duration time.Duration

	// Mix is how messages are drawn from the text kinds. Empty means all GSM.
	Mix TextMix
	// Source is the source_addr. Empty means "smppload".
	Source string
	// Dest is the destination prefix; DestDigits random digits follow it. Empty means "4670".
	Dest string
	// DestDigits is how many random digits follow Dest. 0 means 8; negative means none.
	DestDigits int
	// RegisteredDelivery is the registered_delivery of every submit_sm: 1 asks for a final receipt.
	RegisteredDelivery uint8
	// WaitReceipts is how long to wait after the last response for receipts still to come (one per
	// acknowledged part when RegisteredDelivery asks for them). 0 means no wait.
	WaitReceipts time.Duration

	// OutbindListen, when set, is a host:port where the fleet waits for outbinds: each connection that
	// sends outbind is bound back (same credentials and BindType) and joins the fleet.
	OutbindListen string
	// OutbindReady, when not nil, is called once the outbind listener listens, with its address
	// (the port chosen when OutbindListen's is 0).
	OutbindReady func(addr string)

	// Session tunes each session; its Window is replaced by Window. The zero value is the session
	// package's defaults, with enquire_link left at its 30s.
	Session session.Config
	// Logger receives connection events. The zero value logs nothing.
	Logger zerolog.Logger

	// Progress, when not nil, is called every ProgressInterval while the run lasts, and once at its end.
	Progress func(Progress)
	// ProgressInterval is how often Progress is called. 0 means 200ms.
	ProgressInterval time.Duration
}

// withDefaults returns c with the documented defaults applied.
func (c Config) withDefaults() Config {
	if c.SystemID == "" {
		c.SystemID = "smppload"
	}
	if c.BindType == session.BindNone {
		c.BindType = session.BindTransceiver
	}
	if c.Binds == 0 && c.Addr != "" {
		c.Binds = 1
	}
	if c.Binds < 0 || c.Addr == "" {
		c.Binds = 0
	}
	if c.Window <= 0 {
		c.Window = 10
	}
	if len(c.Mix) == 0 {
		c.Mix = TextMix{{Kind: KindGSM, Weight: 1}}
	}
	if c.Source == "" {
		c.Source = "smppload"
	}
	if c.Dest == "" {
		c.Dest = "4670"
	}
	if c.DestDigits == 0 {
		c.DestDigits = 8
	}
	if c.DestDigits < 0 {
		c.DestDigits = 0
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = 200 * time.Millisecond
	}
	c.Session.Window = c.Window
	return c
}

// ErrConfig is wrapped by the error Run returns for a configuration that cannot work.
var ErrConfig = errors.New("load: config")

// validate reports the first field that cannot work, by name.
func (c Config) validate() error {
	switch {
	case c.Addr == "" && c.OutbindListen == "":
		return fmt.Errorf("%w: addr: empty, and no outbind_listen either: nothing to bind to", ErrConfig)
	case c.Messages < 0:
		return fmt.Errorf("%w: messages: %d, must not be negative", ErrConfig, c.Messages)
	case c.Rate < 0:
		return fmt.Errorf("%w: rate: %g, must not be negative", ErrConfig, c.Rate)
	case c.Duration < 0:
		return fmt.Errorf("%w: duration: %s, must not be negative", ErrConfig, c.Duration)
	case c.WaitReceipts < 0:
		return fmt.Errorf("%w: wait_receipts: %s, must not be negative", ErrConfig, c.WaitReceipts)
	case len(c.Dest)+c.DestDigits > 20:
		return fmt.Errorf("%w: dest: %q and %d digits make more than destination_addr's 20 octets", ErrConfig, c.Dest, c.DestDigits)
	case len(c.Source) > 20:
		return fmt.Errorf("%w: source: %q, longer than source_addr's 20 octets", ErrConfig, c.Source)
	}
	for _, p := range c.Mix {
		if p.Weight < 0 || p.Kind >= numKinds {
			return fmt.Errorf("%w: text_mix: %s=%d, want a known kind and a weight of 0 or more", ErrConfig, p.Kind, p.Weight)
		}
	}
	if c.Mix.total() == 0 {
		return fmt.Errorf("%w: text_mix: every weight is 0", ErrConfig)
	}
	if err := c.Session.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Kind is a kind of text a message carries.
type Kind uint8

// The text kinds of a mix.
const (
	KindGSM      Kind = iota // one SMS in the GSM 03.38 default alphabet
	KindUCS2                 // one SMS in UCS-2
	KindLong                 // a long GSM message: three parts with an 8-bit concatenation UDH
	KindLongUCS2             // a long UCS-2 message: three parts with an 8-bit concatenation UDH
	numKinds
)

var kindNames = [numKinds]string{KindGSM: "gsm", KindUCS2: "ucs2", KindLong: "long", KindLongUCS2: "long-ucs2"}

func (k Kind) String() string {
	if k < numKinds {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// MixPart is one kind of text and its weight in a TextMix.
type MixPart struct {
	Kind   Kind
	Weight int
}

// TextMix says how often each kind of text is drawn: a message is of kind k with probability
// weight(k) / sum of weights.
type TextMix []MixPart

func (m TextMix) total() int {
	n := 0
	for _, p := range m {
		n += p.Weight
	}
	return n
}

// String writes the mix as ParseTextMix reads it.
func (m TextMix) String() string {
	parts := make([]string, len(m))
	for i, p := range m {
		parts[i] = p.Kind.String() + "=" + strconv.Itoa(p.Weight)
	}
	return strings.Join(parts, ",")
}

// ParseTextMix reads "gsm=80,ucs2=15,long=5": kinds gsm, ucs2, long (GSM, three parts) and
// long-ucs2, each with a non-negative weight; weights need not add up to 100.
func ParseTextMix(s string) (TextMix, error) {
	var m TextMix
	seen := map[Kind]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, w, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("text mix: %q: want kind=weight", item)
		}
		k, ok := kindByName(strings.TrimSpace(name))
		if !ok {
			return nil, fmt.Errorf("text mix: %q: unknown kind, want one of %s", name, strings.Join(kindNames[:], ", "))
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("text mix: %q: weight must be a whole number, 0 or more", item)
		}
		if seen[k] {
			return nil, fmt.Errorf("text mix: %s given twice", k)
		}
		seen[k] = true
		m = append(m, MixPart{Kind: k, Weight: n})
	}
	if m.total() == 0 {
		return nil, fmt.Errorf("text mix: %q: no kind has a weight above 0", s)
	}
	sort.SliceStable(m, func(i, j int) bool { return m[i].Kind < m[j].Kind })
	return m, nil
}

func kindByName(s string) (Kind, bool) {
	for k, n := range kindNames {
		if strings.EqualFold(s, n) {
			return Kind(k), true
		}
	}
	return 0, false
}
