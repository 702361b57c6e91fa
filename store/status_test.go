package store

import (
	"net/netip"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

func TestAggregate(t *testing.T) {
	const (
		A = pdu.ACCEPTED
		E = pdu.ENROUTE
		D = pdu.DELIVERED
		U = pdu.UNDELIVERABLE
		X = pdu.EXPIRED
		R = pdu.REJECTED
		K = pdu.UNKNOWN
		L = pdu.DELETED
	)
	tests := []struct {
		parts []pdu.MessageState
		want  pdu.MessageState
	}{
		{nil, K},
		{[]pdu.MessageState{A}, A},
		{[]pdu.MessageState{A, A, A}, A},
		{[]pdu.MessageState{E, A}, E},
		{[]pdu.MessageState{D, A}, E},
		{[]pdu.MessageState{D, E}, E},
		{[]pdu.MessageState{D, D}, D},
		{[]pdu.MessageState{D, U}, U},
		{[]pdu.MessageState{X, U, D}, U},
		{[]pdu.MessageState{X, R}, R},
		{[]pdu.MessageState{L, D}, L},
		{[]pdu.MessageState{X, L}, X},
		{[]pdu.MessageState{K}, K},
		{[]pdu.MessageState{K, D}, K},
		{[]pdu.MessageState{K, A}, E},
	}
	for _, tc := range tests {
		if got := Aggregate(tc.parts); got != tc.want {
			t.Errorf("Aggregate(%v) = %v, want %v", tc.parts, got, tc.want)
		}
	}
}

func TestApply(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Message{ID: "m", Upstream: "u", Parts: make([]Part, 2)}
	PrepareAccept(m, now)
	if m.Status != pdu.ACCEPTED || len(m.History) != 1 || m.Parts[1].Status != pdu.ACCEPTED {
		t.Fatalf("PrepareAccept: %+v", m)
	}
	ApplyPartUpdate(m, &PartUpdate{Part: 0, Upstream: "u", UpstreamID: "X", Status: pdu.ENROUTE, At: now.Add(time.Second)})
	ApplyReceipt(m, &Receipt{Part: 0, State: pdu.DELIVERED, Received: now.Add(2 * time.Second)})
	ApplyReceipt(m, &Receipt{Part: 0, State: pdu.ENROUTE, Received: now.Add(3 * time.Second)}) // late, ignored
	if m.Parts[0].Status != pdu.DELIVERED || m.Parts[0].UpstreamID != "X" || !m.Parts[0].SubmittedAt.Equal(now.Add(time.Second)) {
		t.Errorf("part 0: %+v", m.Parts[0])
	}
	ApplyPartUpdate(m, &PartUpdate{Part: 1, Status: pdu.REJECTED, Error: 0x45, At: now.Add(4 * time.Second)})
	if m.Status != pdu.REJECTED || m.Parts[1].Error != 0x45 {
		t.Errorf("after reject: %v %+v", m.Status, m.Parts[1])
	}
	want := []pdu.MessageState{pdu.ACCEPTED, pdu.ENROUTE, pdu.REJECTED}
	if len(m.History) != len(want) {
		t.Fatalf("history %+v", m.History)
	}
	for i, h := range m.History {
		if h.State != want[i] {
			t.Errorf("history[%d] = %v, want %v", i, h.State, want[i])
		}
	}
}

func TestFilterAndCursor(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Message{Account: "a", Status: pdu.DELIVERED, CreatedAt: base}
	tests := []struct {
		f    MessageFilter
		want bool
	}{
		{MessageFilter{}, true},
		{MessageFilter{Account: "a"}, true},
		{MessageFilter{Account: "b"}, false},
		{MessageFilter{Status: pdu.DELIVERED}, true},
		{MessageFilter{Status: pdu.ENROUTE}, false},
		{MessageFilter{From: base}, true},
		{MessageFilter{From: base.Add(1)}, false},
		{MessageFilter{To: base}, false},
		{MessageFilter{To: base.Add(1)}, true},
	}
	for _, tc := range tests {
		if got := tc.f.Match(m); got != tc.want {
			t.Errorf("%+v.Match = %v, want %v", tc.f, got, tc.want)
		}
	}
	for limit, want := range map[int]int{0: DefaultListLimit, -1: DefaultListLimit, 5: 5, MaxListLimit + 1: MaxListLimit} {
		f := MessageFilter{Limit: limit}
		if got := f.PageLimit(); got != want {
			t.Errorf("PageLimit(%d) = %d, want %d", limit, got, want)
		}
	}
	k := IndexKey(base, "id-1")
	if string(IndexKey(base.Add(-1), "zzz")) >= string(k) || string(IndexKey(base, "id-2")) <= string(k) {
		t.Errorf("IndexKey does not sort by time then id")
	}
	got, err := DecodeCursor(EncodeCursor(k))
	if err != nil || string(got) != string(k) {
		t.Errorf("cursor round trip: %q %v", got, err)
	}
	for _, bad := range []string{"", "!!", EncodeCursor([]byte{1, 2})} {
		if _, err := DecodeCursor(bad); err == nil {
			t.Errorf("DecodeCursor(%q) accepted", bad)
		}
	}
}

func TestAccountChecks(t *testing.T) {
	a := &Account{SystemID: "x", AllowIPs: []string{"10.0.0.0/8", "192.0.2.7", "junk"}, BindTypes: BindTransmitter | BindReceiver}
	for ip, want := range map[string]bool{"10.1.2.3": true, "192.0.2.7": true, "192.0.2.8": false, "::ffff:10.0.0.1": true, "2001:db8::1": false} {
		if got := a.AllowsIP(netip.MustParseAddr(ip)); got != want {
			t.Errorf("AllowsIP(%s) = %v, want %v", ip, got, want)
		}
	}
	if !a.AllowsBind(BindReceiver) || a.AllowsBind(BindTransceiver) {
		t.Errorf("AllowsBind wrong for %v", a.BindTypes)
	}
	if !(&Account{}).AllowsBind(BindTransceiver) || !(&Account{}).AllowsIP(netip.MustParseAddr("1.2.3.4")) {
		t.Errorf("zero account should allow any bind type and address")
	}
	if (&Account{}).CheckPassword("") {
		t.Errorf("account without a hash accepted a password")
	}
	if err := a.SetPassword("pw"); err != nil || !a.CheckPassword("pw") || a.CheckPassword("pw2") {
		t.Errorf("SetPassword/CheckPassword: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"queue kind", ValidateQueue(Queue{Kind: 0, Name: "a"})},
		{"queue name", ValidateQueue(Queue{Kind: SubmitQueue})},
		{"upstream id", ValidateUpstreamID("u", "")},
		{"upstream NUL", ValidateUpstreamID("u\x00", "x")},
		{"long id", ValidateMessage(&Message{ID: string(make([]byte, maxKey+1)), Upstream: "u", Parts: []Part{{}}})},
	}
	for _, tc := range tests {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	if err := ValidateQueue(Queue{Kind: DeliverQueue, Name: "acme"}); err != nil {
		t.Errorf("valid queue refused: %v", err)
	}
}
