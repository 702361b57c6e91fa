package ctl

import (
	"bytes"
	"strings"
	"testing"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
)

// TestWriteAccountAPIReceiptsOverSMPP: accounts show shows whether an account's API messages'
// receipts also go to its binds.
func TestWriteAccountAPIReceiptsOverSMPP(t *testing.T) {
	for _, c := range []struct {
		on   bool
		want string
	}{{false, "no"}, {true, "yes"}} {
		var b bytes.Buffer
		if err := WriteAccount(&b, &smppgwv1.Account{SystemId: "acme", ApiReceiptsOverSmpp: c.on}); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, line := range strings.Split(b.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "API receipts over SMPP:"); ok {
				got = append(got, strings.TrimSpace(rest))
			}
		}
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("api_receipts_over_smpp %v shown as %q, want one line %q:\n%s", c.on, got, c.want, b.String())
		}
	}
}
