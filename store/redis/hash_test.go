package redis

import (
	"errors"
	"reflect"
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
	if _, err := hashReply("h1", []any{"b"}); !errors.Is(err, store.ErrCorrupt) {
		t.Errorf("odd reply: %v", err)
	}
}

// TestDecodeView reads the same hash as an HMGET reply (hashFields' order, empty for a
// missing field) and as an HGETALL map, and refuses an HMGET read for another part count.
func TestDecodeView(t *testing.T) {
	m := storetest.NewMessage("h2", "a", "up", 2)
	store.PrepareAccept(m, m.Validity)
	rec := string(store.AppendMessage(nil, m))
	h := map[string]string{
		"b": rec, "s": "1", "hist": "6:100;1:200;", "u": "200", "n": "2",
		"ps0": "1", "pu0": "up", "pi0": "X9", "pq0": "120", "ps1": "1", "pe1": "7",
		"sf0": "2:0:300", "so1": "1:0:250",
	}
	fields := func(parts int) []string {
		v := make([]string, fieldsOf(parts))
		for i := range v {
			v[i] = h[hashFields[i].(string)]
		}
		return v
	}
	want, err := decodeHash("h2", h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeView("h2", hashView{v: fields(2)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != want.Status || !got.UpdatedAt.Equal(want.UpdatedAt) || len(got.History) != len(want.History) ||
		!reflect.DeepEqual(got.Parts, want.Parts) {
		t.Errorf("from HMGET %+v, from HGETALL %+v", got, want)
	}
	if got.Parts[0].Status != pdu.DELIVERED || got.Parts[0].UpstreamID != "X9" || got.Parts[1].Error != 7 || got.Status != pdu.ENROUTE {
		t.Errorf("decoded %+v", got)
	}
	for _, parts := range []int{1, 3} {
		if _, err := decodeView("h2", hashView{v: fields(parts)}); err != errPartsRead {
			t.Errorf("HMGET for %d parts of a 2-part message: %v, want errPartsRead", parts, err)
		}
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
