package redis

import (
	"errors"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

func TestDecodeHash(t *testing.T) {
	m := storetest.NewMessage("h1", "a", "up", 2)
	store.PrepareAccept(m, m.Validity)
	rec := string(store.AppendMessage(nil, m))
	h := map[string]string{
		"b": rec, "s": "1", "hist": "6:100;1:200;", "u": "200", "n": "2",
		"ps0": "2", "pe0": "0", "pu0": "up", "pi0": "X9", "pt0": "150", "pq0": "120", "ps1": "1",
	}
	got, err := decodeHash("h1", h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != pdu.ENROUTE || len(got.History) != 2 || got.History[1].At.UnixNano() != 200 ||
		got.Parts[0].Status != pdu.DELIVERED || got.Parts[0].UpstreamID != "X9" || got.Parts[0].SubmittedAt.UnixNano() != 120 ||
		got.Parts[1].Status != pdu.ENROUTE || got.UpdatedAt.UnixNano() != 200 {
		t.Errorf("decodeHash: %+v", got)
	}
	for name, bad := range map[string]map[string]string{
		"no record":   {"s": "1"},
		"bad status":  {"b": rec, "s": "x"},
		"bad history": {"b": rec, "hist": "6-100;"},
		"bad part":    {"b": rec, "pe1": "-1"},
		"bad record":  {"b": rec[:10]},
	} {
		if _, err := decodeHash("h1", bad); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestDecodeHashOutcomes: the settle outcomes a hash holds are applied, oldest first, with the
// store's rules.
func TestDecodeHashOutcomes(t *testing.T) {
	m := storetest.NewMessage("h2", "a", "up", 2)
	store.PrepareAccept(m, m.Validity)
	rec := string(store.AppendMessage(nil, m))
	h := map[string]string{
		"b": rec, "s": "1", "hist": "6:100;1:200;", "u": "200", "n": "2",
		"ps0": "1", "pu0": "up", "pi0": "X9", "pq0": "120", "ps1": "1", "pe1": "7",
		"sf0": "2:0:300", "so1": "1:0:250",
	}
	got, err := decodeHash("h2", h)
	if err != nil {
		t.Fatal(err)
	}
	if got.Parts[0].Status != pdu.DELIVERED || got.Parts[0].UpstreamID != "X9" || got.Parts[1].Error != 7 || got.Status != pdu.ENROUTE ||
		got.UpdatedAt.UnixNano() != 300 || len(got.History) != 2 {
		t.Errorf("decoded %+v", got)
	}
}

// FuzzDecodeHash feeds message hashes as read back from Redis: fields as "name=value" lines.
func FuzzDecodeHash(f *testing.F) {
	m := storetest.NewMessage("h1", "a", "up", 2)
	store.PrepareAccept(m, m.Validity)
	rec := string(store.AppendMessage(nil, m))
	f.Add(rec, "s=1\nhist=6:100;1:200;\nps0=2\npi0=X\npt1=5\npe1=9")
	f.Add(rec, "")
	f.Add("", "s=2")
	f.Fuzz(func(t *testing.T, rec, fields string) {
		h := map[string]string{"b": rec}
		for _, line := range strings.Split(fields, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				h[k] = v
			}
		}
		m, err := decodeHash("id", h)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}
