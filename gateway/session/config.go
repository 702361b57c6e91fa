package session

import (
	"fmt"
	"strings"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// BindType is how a session is bound: transmitter, receiver or transceiver. The zero value BindNone is
// an unbound session.
type BindType uint8

// Bind types of SMPP 3.4 section 2.2.
const (
	BindNone BindType = iota
	BindTransmitter
	BindReceiver
	BindTransceiver
)

var bindTypeNames = [...]string{BindNone: "none", BindTransmitter: "transmitter", BindReceiver: "receiver", BindTransceiver: "transceiver"}

func (b BindType) String() string {
	if int(b) < len(bindTypeNames) {
		return bindTypeNames[b]
	}
	return fmt.Sprintf("BindType(%d)", uint8(b))
}

// MarshalText writes the lower-case name ("transceiver"), as configuration files spell it.
func (b BindType) MarshalText() ([]byte, error) {
	if int(b) >= len(bindTypeNames) {
		return nil, fmt.Errorf("bind_type: %d, want transmitter, receiver or transceiver", uint8(b))
	}
	return []byte(bindTypeNames[b]), nil
}

// UnmarshalText reads "transmitter", "receiver" or "transceiver" (also "tx", "rx", "trx"), any case.
func (b *BindType) UnmarshalText(text []byte) error {
	switch strings.ToLower(strings.TrimSpace(string(text))) {
	case "transmitter", "tx":
		*b = BindTransmitter
	case "receiver", "rx":
		*b = BindReceiver
	case "transceiver", "trx":
		*b = BindTransceiver
	case "", "none":
		*b = BindNone
	default:
		return fmt.Errorf("bind_type: %q, want transmitter, receiver or transceiver", text)
	}
	return nil
}

// CanSubmit reports whether the ESME side of a bind of this type may send submit_sm and friends.
func (b BindType) CanSubmit() bool { return b == BindTransmitter || b == BindTransceiver }

// CanReceive reports whether the ESME side of a bind of this type may be sent deliver_sm.
func (b BindType) CanReceive() bool { return b == BindReceiver || b == BindTransceiver }

// Config tunes one session. Every zero value means the documented default, so an empty
// Config is a working one; WithDefaults is the one place the defaults are applied. A negative value
// disables what its field bounds where the field says so (EnquireLink); any other negative value is
// refused by Validate, with the field's name.
type Config struct {
	// Window is how many of our requests may await a response at once; a sender waits when it is full.
	// 0 means 10.
	Window int `yaml:"window"`
	// ResponseTimeout is how long a request of ours may wait for its response. 0 means 10s.
	ResponseTimeout time.Duration `yaml:"response_timeout"`
	// EnquireLink is how long the link may stay idle (nothing received) before we send enquire_link;
	// the session closes when that goes unanswered for ResponseTimeout. 0 means 30s; negative disables.
	EnquireLink time.Duration `yaml:"enquire_link"`
	// InboundLimit is how many of the peer's requests may be unanswered at once. 0 means
	// DefaultInboundLimit.
	InboundLimit int `yaml:"inbound_limit"`
	// ThrottleInbound answers requests beyond InboundLimit with ESME_RTHROTTLED instead of the default,
	// which stops reading until some are answered (TCP back-pressure).
	ThrottleInbound bool `yaml:"throttle_inbound"`
	// UnbindTimeout bounds a graceful unbind: the wait for in-flight requests (ours and the peer's) to
	// be answered, and then the wait for unbind_resp and the answers to what the peer sent meanwhile.
	// 0 means 5s.
	UnbindTimeout time.Duration `yaml:"unbind_timeout"`
	// BindTimeout is how long a connection may stay unbound before it is closed (a server waiting for
	// the bind, an ESME waiting after outbind). 0 means 30s.
	BindTimeout time.Duration `yaml:"bind_timeout"`
	// WriteTimeout bounds one write to the socket, so a peer that stops reading is detected rather than
	// waited on forever. 0 means 10s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxPDULength is the largest command_length accepted from the peer. 0 means pdu.DefaultMaxLength.
	MaxPDULength int `yaml:"max_pdu_length"`
	// Meter, when set, sums the session's PDU counts with those of the other sessions given the
	// same meter, for metrics (the daemon sets it; it is not read from a file). Nil counts the
	// session on its own only (Info).
	Meter *Meter `yaml:"-"`
}

// DefaultInboundLimit is Config.InboundLimit's default: an ESME keeping a window of 256 submit_sm
// (a common setting for bulk senders) is read without pause. It is also the only brake on intake
// when forwarding falls behind, so it was measured with the upstream window (gateway's
// DefaultUpstreamWindow), row 7 of smppbench (one bind at W=256 for 2 minutes,
// `--sustain-inbound-limit N --sustain-upstream-window M`, 2026-11-28): 256 with window 256 forwarded
// 86.8k and 86.6k msgs/s, then 78.0k and 64.1k as the defaults (the box varies that much), queue
// flat in all four; 256 with window 128 took in 79.4k
// and forwarded 78.8k, falling behind after a minute (queue 115k, RSS 1.25 GB); 100 with window 128
// forwarded 75.5k-77.1k, flat. Over 30 s the window-128 case looked flat too: judge a default on
// the full 2 minutes.
const DefaultInboundLimit = 256

// WithDefaults returns c with every zero value replaced by its documented default, as a session uses it.
// Negative values are left as they are: EnquireLink's disables, the others Validate refuses.
func (c Config) WithDefaults() Config {
	if c.Window == 0 {
		c.Window = 10
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = 10 * time.Second
	}
	if c.EnquireLink == 0 {
		c.EnquireLink = 30 * time.Second
	}
	if c.InboundLimit == 0 {
		c.InboundLimit = DefaultInboundLimit
	}
	if c.UnbindTimeout == 0 {
		c.UnbindTimeout = 5 * time.Second
	}
	if c.BindTimeout == 0 {
		c.BindTimeout = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxPDULength == 0 {
		c.MaxPDULength = pdu.DefaultMaxLength
	}
	return c
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Window > maxWindow:
		return fmt.Errorf("session.window: %d, at most %d", c.Window, maxWindow)
	case c.Window < 0:
		return fmt.Errorf("session.window: %d, must not be negative", c.Window)
	case c.InboundLimit < 0:
		return fmt.Errorf("session.inbound_limit: %d, must not be negative", c.InboundLimit)
	case c.MaxPDULength < 0:
		return fmt.Errorf("session.max_pdu_length: %d, must not be negative", c.MaxPDULength)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"response_timeout", c.ResponseTimeout},
		{"unbind_timeout", c.UnbindTimeout},
		{"bind_timeout", c.BindTimeout},
		{"write_timeout", c.WriteTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("session.%s: %v, must not be negative", d.name, d.v)
		}
	}
	return nil
}
