package session_test

import (
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
)

// TestConfigDefaults: every zero value becomes its documented default in WithDefaults, and nothing else
// changes a value.
func TestConfigDefaults(t *testing.T) {
	want := session.Config{Window: 10, ResponseTimeout: 10 * time.Second, EnquireLink: 30 * time.Second, InboundLimit: 256,
		UnbindTimeout: 5 * time.Second, BindTimeout: 30 * time.Second, WriteTimeout: 10 * time.Second, MaxPDULength: pdu.DefaultMaxLength}
	if got := (session.Config{}).WithDefaults(); got != want {
		t.Errorf("Config{}.WithDefaults() = %+v, want %+v", got, want)
	}
	set := session.Config{Window: 3, ResponseTimeout: time.Second, EnquireLink: -1, InboundLimit: 4, UnbindTimeout: 2 * time.Second,
		BindTimeout: 3 * time.Second, WriteTimeout: 4 * time.Second, MaxPDULength: 4096}
	if got := set.WithDefaults(); got != set {
		t.Errorf("WithDefaults changed set values: %+v, want %+v", got, set)
	}
}

// TestConfigNegatives: a negative value disables where its field says so (EnquireLink), and is refused
// by Validate, naming the field, everywhere else; WithDefaults leaves it as it is.
func TestConfigNegatives(t *testing.T) {
	for _, tc := range []struct {
		cfg  session.Config
		want string // "" means valid
	}{
		{session.Config{EnquireLink: -1}, ""},
		{session.Config{Window: -1}, "session.window: -1, must not be negative"},
		{session.Config{ResponseTimeout: -time.Second}, "session.response_timeout: -1s, must not be negative"},
		{session.Config{InboundLimit: -1}, "session.inbound_limit: -1, must not be negative"},
		{session.Config{UnbindTimeout: -time.Second}, "session.unbind_timeout: -1s, must not be negative"},
		{session.Config{BindTimeout: -time.Second}, "session.bind_timeout: -1s, must not be negative"},
		{session.Config{WriteTimeout: -time.Second}, "session.write_timeout: -1s, must not be negative"},
		{session.Config{MaxPDULength: -1}, "session.max_pdu_length: -1, must not be negative"},
	} {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: Validate() = %v, want nil", tc.cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: Validate() = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if got := (session.Config{EnquireLink: -1, ResponseTimeout: -1}).WithDefaults(); got.EnquireLink != -1 || got.ResponseTimeout != -1 {
		t.Errorf("WithDefaults turned negatives into defaults: %+v", got)
	}
}
