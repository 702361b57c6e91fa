package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/smppgw/smppgw/internal/redistest"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/storetest"
)

// TestDecodeValue: a value's events are applied in order with the store's rules, as the
// embedded store applies each write: the message read back is the one ApplyPartUpdate,
// ApplyReceipt and ApplyReplace make of the record.
func TestDecodeValue(t *testing.T) {
	m := storetest.NewMessage("v1", "a", "up", 2)
	store.PrepareAccept(m, time.Unix(0, 100).UTC())
	at := func(n int64) time.Time { return time.Unix(0, n).UTC() }
	updates := []store.PartUpdate{
		{Part: 0, Upstream: "up", UpstreamID: "X0", Status: pdu.ENROUTE, At: at(200)},
		{Part: 1, Upstream: "up2", Status: pdu.REJECTED, Error: 8, At: at(300)},
		{Part: 7, Upstream: "up", UpstreamID: "junk", Status: pdu.DELIVERED, At: at(350)}, // no such part: skipped
	}
	v := appendValue(nil, m)
	want := *m
	want.Parts = append([]store.Part(nil), m.Parts...)
	want.History = append([]store.StatusChange(nil), m.History...)
	for i := range updates {
		v = appendUpdate(v, &updates[i])
		if updates[i].Part < len(want.Parts) {
			store.ApplyPartUpdate(&want, &updates[i])
		}
	}
	v = appendState(v, 0, pdu.DELIVERED, 0, at(400))
	store.ApplyReceipt(&want, &store.Receipt{Part: 0, State: pdu.DELIVERED, Received: at(400)})
	v = appendState(v, 0, pdu.EXPIRED, 0, at(500)) // a final state is never left
	store.ApplyReceipt(&want, &store.Receipt{Part: 0, State: pdu.EXPIRED, Received: at(500)})
	r := &store.Replacement{ShortMessage: []byte("new text"), RegisteredDelivery: 1, Validity: at(900)}
	v = appendReplace(v, r, at(600))
	store.ApplyReplace(&want, r, at(600))

	got, err := decodeValue("v1", string(v))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", *got, want)
	}
	// Both parts final, one REJECTED: the message is REJECTED, after ACCEPTED and ENROUTE.
	if got.Status != pdu.REJECTED || got.Parts[0].Status != pdu.DELIVERED || got.Parts[1].Status != pdu.REJECTED || got.Parts[0].UpstreamID != "X0" ||
		string(got.Parts[0].ShortMessage) != "new text" || len(got.History) != 3 || got.History[2].At != at(400) || !got.UpdatedAt.Equal(at(600)) {
		t.Errorf("decoded status %v parts %v %v history %v updated %v", got.Status, got.Parts[0].Status, got.Parts[1].Status, got.History, got.UpdatedAt)
	}

	for name, bad := range map[string]string{
		"a bare event":     string(appendState(nil, 0, pdu.DELIVERED, 0, at(1))),
		"empty":            "",
		"cut record":       string(v[:20]),
		"unknown event":    string(append(appendValue(nil, m), 'z', 0)),
		"cut event":        string(v[:len(v)-1]),
		"wrong part count": "M\x05" + string(v[2:]),
	} {
		_, err := decodeValue("v1", bad)
		if err == nil || !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrNotFound or ErrCorrupt", name, err)
		}
	}
	if _, err := decodeValue("v1", string(appendState(nil, 0, pdu.DELIVERED, 0, at(1)))); !errors.Is(err, errNoMessage) {
		t.Errorf("an event alone: %v, want errNoMessage", err)
	}
}

// FuzzDecodeValue feeds message values as read back from Redis.
func FuzzDecodeValue(f *testing.F) {
	m := storetest.NewMessage("f1", "a", "up", 2)
	store.PrepareAccept(m, time.Unix(0, 100).UTC())
	v := appendValue(nil, m)
	f.Add(string(appendState(appendUpdate(v, &store.PartUpdate{Part: 1, UpstreamID: "X", Status: pdu.ENROUTE}), 1, pdu.DELIVERED, 3, time.Unix(0, 5))))
	f.Add(string(v))
	f.Add("M")
	f.Fuzz(func(t *testing.T, v string) {
		m, err := decodeValue("f1", v)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
	})
}

// TestMigrateMessages: message hashes as the release before wrote them (the record, its status
// fields, a settle's upstream fields and outcome not yet folded in, one with a time to live)
// are converted into values when a store opens: read back the same, their time to live kept,
// and written to after as any other.
func TestMigrateMessages(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	s := openStore(t, srv, Config{Shards: 4})
	<-s.lateFirst // its look for hashes written since (convertLate) is done: the hashes below come after
	ctx := context.Background()
	created := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sent := created.Add(time.Second)
	type old struct {
		id     string
		fields []any
		ttl    time.Duration
	}
	var olds []old
	for i := range 30 {
		m := storetest.NewMessage(fmt.Sprintf("mig%02d", i), "acme", "up", 1)
		store.PrepareAccept(m, created)
		c := strconv.FormatInt(created.UnixNano(), 10)
		f := []any{"b", store.AppendMessage(nil, m), "n", 1, "s", 6, "hist", "6:" + c + ";", "u", c, "ps0", 6}
		if i%2 == 1 { // settled: upstream fields and an ENROUTE outcome
			f = append(f, "pu0", "up", "pi0", fmt.Sprintf("U%d", i), "pq0", sent.UnixNano(), "so0", fmt.Sprintf("1:0:%d", sent.UnixNano()))
		}
		o := old{id: m.ID, fields: f}
		if i%3 == 0 {
			o.ttl = time.Hour
		}
		olds = append(olds, o)
		if err := s.c.HSet(ctx, s.kMsg(m.ID), f...).Err(); err != nil {
			t.Fatal(err)
		}
		if o.ttl > 0 {
			if err := s.c.PExpire(ctx, s.kMsg(m.ID), o.ttl).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.GetMessage(ctx, olds[0].id); err == nil {
		t.Fatal("a hash read as a value before the conversion")
	}
	// The data of the release before has no layout key: s's Open wrote it, on no data.
	if got := s.c.Get(ctx, s.kLayout()).Val(); got != valuesLayout {
		t.Fatalf("layout key %q after an Open, want %q", got, valuesLayout)
	}
	if err := s.c.Del(ctx, s.kLayout()).Err(); err != nil {
		t.Fatal(err)
	}
	s2 := openStore(t, srv, Config{Shards: 4})
	<-s2.lateFirst
	for i, o := range olds {
		if typ := s2.c.Type(ctx, s2.kMsg(o.id)).Val(); typ != "string" {
			t.Fatalf("%s is a %s after the conversion", o.id, typ)
		}
		ttl := s2.c.PTTL(ctx, s2.kMsg(o.id)).Val()
		if o.ttl > 0 && (ttl <= 0 || ttl > o.ttl) || o.ttl == 0 && ttl != -1 {
			t.Errorf("%s: time to live %v, want %v", o.id, ttl, o.ttl)
		}
		m, err := s2.GetMessage(ctx, o.id)
		if err != nil {
			t.Fatal(err)
		}
		want := []store.StatusChange{{State: pdu.ACCEPTED, At: created}}
		st, uid := pdu.ACCEPTED, ""
		if i%2 == 1 {
			want, st, uid = append(want, store.StatusChange{State: pdu.ENROUTE, At: sent}), pdu.ENROUTE, fmt.Sprintf("U%d", i)
		}
		if m.Status != st || m.Parts[0].Status != st || m.Parts[0].UpstreamID != uid || fmt.Sprint(m.History) != fmt.Sprint(want) {
			t.Errorf("%s: status %v part %v upstream id %q history %v, want %v %v %q %v", o.id, m.Status, m.Parts[0].Status, m.Parts[0].UpstreamID, m.History, st, st, uid, want)
		}
	}
	// Written to after: an update and a receipt of a converted message.
	id := olds[2].id
	if _, _, err := s2.UpdatePart(ctx, store.PartUpdate{MessageID: id, Part: 0, Upstream: "up", UpstreamID: "NEW", Status: pdu.ENROUTE}); err != nil {
		t.Fatal(err)
	}
	m, parked, err := s2.AddReceipt(ctx, &store.Receipt{Upstream: "up", UpstreamID: "NEW", State: pdu.DELIVERED})
	if err != nil || parked || m.ID != id || m.Status != pdu.DELIVERED {
		t.Fatalf("receipt of a converted message: %v parked %v %+v", err, parked, m)
	}
	// Once done, Open does not scan again (migrateMessages), but an instance of the release before
	// still running writes a hash after it (a rolling upgrade): the next start converts it in the
	// background (convertLate), within upgradeWindow of the conversion, and not after.
	if err := s2.c.HSet(ctx, s2.kMsg("late"), olds[0].fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s2.migrateMessages(ctx); err != nil {
		t.Fatal(err)
	}
	if typ := s2.c.Type(ctx, s2.kMsg("late")).Val(); typ != "hash" {
		t.Errorf("a hash written after the conversion is a %s after migrateMessages, want hash (Open does not scan twice)", typ)
	}
	s3 := openStore(t, srv, Config{Shards: 4})
	<-s3.lateFirst
	if late, err := s3.GetMessage(ctx, "late"); err != nil || late.ID != olds[0].id { // the record of olds[0] under another key
		t.Errorf("a hash written by the release before after the conversion, after the next start: %v %v, want it converted", late, err)
	}
	if got, err := s3.GetMessage(ctx, id); err != nil || got.Status != pdu.DELIVERED {
		t.Errorf("after a second conversion: %v %v", got, err)
	}
	// Past the upgrade window nobody looks any more.
	longAgo := nowUTC().Add(-upgradeWindow - time.Hour).Unix()
	if err := s3.c.Set(ctx, s3.kLayoutAt(), longAgo, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s3.c.HSet(ctx, s3.kMsg("later"), olds[0].fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s3.convertLate(ctx); err != nil {
		t.Fatal(err)
	}
	if typ := s3.c.Type(ctx, s3.kMsg("later")).Val(); typ != "hash" {
		t.Errorf("a hash written %v after the conversion is a %s after convertLate, want hash (past the window)", upgradeWindow, typ)
	}
}
