package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

var t0 = time.Date(2026, 11, 21, 10, 30, 0, 123456789, time.UTC)

func sampleMessage() *Message {
	return &Message{
		ID: "0af3c2", Account: "acme", ServiceType: "CMT",
		Source: Address{TON: 5, NPI: 0, Addr: "SHOP"}, Destination: Address{TON: 1, NPI: 1, Addr: "447700900123"},
		ESMClass: 0x40, ProtocolID: 0x7f, PriorityFlag: 2, RegisteredDelivery: 1, DataCoding: 8,
		Validity: t0.Add(time.Hour), Schedule: t0.Add(30 * time.Minute), ClientRef: "order-17", Upstream: "smsc1", Status: pdu.ENROUTE,
		History:   []StatusChange{{pdu.ACCEPTED, t0}, {pdu.ENROUTE, t0.Add(time.Second)}},
		CreatedAt: t0, UpdatedAt: t0.Add(time.Second),
		Parts: []Part{
			{ESMClass: 0x40, ShortMessage: []byte{5, 0, 3, 1, 2, 1, 'a'}, TLVs: []byte{2, 0x0c, 0, 2, 0, 1},
				Upstream: "smsc1", UpstreamID: "U-1", Status: pdu.ENROUTE, SubmittedAt: t0, UpdatedAt: t0},
			{ESMClass: 0x40, ShortMessage: []byte{5, 0, 3, 1, 2, 2, 'b'}, Status: pdu.ACCEPTED, Error: 0x58},
		},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range []*Message{sampleMessage(), {ID: "x", Upstream: "u", Parts: []Part{{}}}} {
		b := AppendMessage(nil, m)
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatalf("DecodeMessage: %v", err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
		}
		// Appending after existing bytes leaves them alone.
		pre := AppendMessage([]byte("xyz"), m)
		if !bytes.Equal(pre[:3], []byte("xyz")) || !bytes.Equal(pre[3:], b) {
			t.Errorf("AppendMessage does not append")
		}
	}
}

func TestRecordRoundTrips(t *testing.T) {
	r := &Receipt{MessageID: "m", Part: 3, Upstream: "u", UpstreamID: "X", State: pdu.DELIVERED, Error: 7,
		Submitted: t0, Done: t0.Add(time.Minute), Received: t0.Add(2 * time.Minute), Text: []byte("id:X stat:DELIVRD")}
	if got, err := DecodeReceipt(AppendReceipt(nil, r)); err != nil || !reflect.DeepEqual(got, r) {
		t.Errorf("receipt: %+v %v", got, err)
	}
	pt := NewPartTask(sampleMessage(), 1)
	if got, err := DecodePartTask(AppendPartTask(nil, pt)); err != nil || !reflect.DeepEqual(got, pt) {
		t.Errorf("part task:\n got %+v\nwant %+v (%v)", got, pt, err)
	}
	d := &Delivery{Account: "acme", Kind: DeliveryReceipt, MessageID: "m", Source: Address{1, 1, "44"},
		Destination: Address{5, 0, "SHOP"}, ESMClass: 4, ProtocolID: 1, DataCoding: 3, ShortMessage: []byte("hi"),
		TLVs: []byte{4, 0x27, 0, 1, 2}, CreatedAt: t0}
	if got, err := DecodeDelivery(AppendDelivery(nil, d)); err != nil || !reflect.DeepEqual(got, d) {
		t.Errorf("delivery: %+v %v", got, err)
	}
	l := &LostPDU{Lease: Lease{Queue: Queue{SubmitQueue, "up"}, Entry: "17-0"}, Session: "s1", CommandID: 4, SequenceNumber: 99, At: t0}
	if got, err := DecodeLostPDU(AppendLostPDU(nil, l)); err != nil || !reflect.DeepEqual(got, l) {
		t.Errorf("lost: %+v %v", got, err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	good := AppendMessage(nil, sampleMessage())
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"wrong tag", append([]byte{tagReceipt}, good[1:]...)},
		{"unknown version", append([]byte{tagMessage, 9}, good[2:]...)},
		{"truncated", good[:len(good)-3]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"huge length", []byte{tagMessage, codecV1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad varint", []byte{tagMessage, codecV1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}},
	}
	for _, tc := range tests {
		if _, err := DecodeMessage(tc.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}
	// A part task claiming part 5 of 2.
	pt := NewPartTask(sampleMessage(), 0)
	pt.Part, pt.Parts = 5, 2
	if _, err := DecodePartTask(AppendPartTask(nil, pt)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("part out of range: %v, want ErrCorrupt", err)
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(AppendMessage(nil, sampleMessage()))
	f.Add(AppendMessage(nil, &Message{ID: "x", Upstream: "u", Parts: []Part{{}}}))
	f.Add([]byte{tagMessage, codecV1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			return
		}
		// What decodes must encode back to the same bytes: the format has one spelling per version,
		// and an older version re-encodes as the current one holding the same record.
		again := AppendMessage(nil, m)
		if !sameRecord(b, again, func(b []byte) (any, error) { return DecodeMessage(b) }) {
			t.Errorf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(AppendReceipt(nil, &Receipt{MessageID: "m", Upstream: "u", UpstreamID: "x", State: pdu.DELIVERED, Received: t0}))
	f.Add(AppendPartTask(nil, NewPartTask(sampleMessage(), 1)))
	f.Add(AppendDelivery(nil, &Delivery{Account: "a", Kind: DeliveryMO, ShortMessage: []byte("hi"), CreatedAt: t0}))
	f.Add(AppendLostPDU(nil, &LostPDU{Lease: Lease{Queue: Queue{DeliverQueue, "a"}, Entry: "1"}, At: t0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := DecodeReceipt(b); err == nil && !bytes.Equal(AppendReceipt(nil, r), b) {
			t.Errorf("receipt re-encoding differs")
		}
		if p, err := DecodePartTask(b); err == nil && !sameRecord(b, AppendPartTask(nil, p), func(b []byte) (any, error) { return DecodePartTask(b) }) {
			t.Errorf("part task re-encoding differs")
		}
		if d, err := DecodeDelivery(b); err == nil && !bytes.Equal(AppendDelivery(nil, d), b) {
			t.Errorf("delivery re-encoding differs")
		}
		if l, err := DecodeLostPDU(b); err == nil && !bytes.Equal(AppendLostPDU(nil, l), b) {
			t.Errorf("lost PDU re-encoding differs")
		}
	})
}

func BenchmarkAppendMessage(b *testing.B) {
	m := sampleMessage()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], m)
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	one := sampleMessage()
	one.Parts = one.Parts[:1]
	for _, c := range []struct {
		name string
		m    *Message
	}{{"parts=2", sampleMessage()}, {"parts=1", one}} {
		b.Run(c.name, func(b *testing.B) {
			enc := AppendMessage(nil, c.m)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeMessage(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Records written before the schedule field (codec version 1) still decode, with no schedule, and
// part tasks written before the accept time (version 2) with none; the part task built from a
// message carries its schedule and accept time.
func TestCodecVersion1StillDecodes(t *testing.T) {
	m := sampleMessage()
	m.Schedule = time.Time{}
	v1 := func(v2 []byte) []byte {
		b := bytes.Clone(v2[:len(v2)-1]) // drop the zero schedule (one varint octet)
		b[1] = codecV1
		return b
	}
	got, err := DecodeMessage(v1(AppendMessage(nil, m)))
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("version 1 message: %v\n got %+v\nwant %+v", err, got, m)
	}
	task := NewPartTask(m, 0)
	if !task.Accepted.Equal(m.CreatedAt) {
		t.Fatalf("part task accepted %v, want the message's %v", task.Accepted, m.CreatedAt)
	}
	task.Accepted = time.Time{}
	v3 := AppendPartTask(nil, task)
	v2 := bytes.Clone(v3[:len(v3)-1]) // drop the zero accept time (one varint octet)
	v2[1] = codecV2
	gotTask, err := DecodePartTask(v2)
	if err != nil || !reflect.DeepEqual(gotTask, task) {
		t.Fatalf("version 2 part task: %v\n got %+v\nwant %+v", err, gotTask, task)
	}
	gotTask, err = DecodePartTask(v1(v2))
	if err != nil || !reflect.DeepEqual(gotTask, task) {
		t.Fatalf("version 1 part task: %v\n got %+v\nwant %+v", err, gotTask, task)
	}
	m.Schedule = t0.Add(time.Hour)
	task = NewPartTask(m, 1)
	if gotTask, err = DecodePartTask(AppendPartTask(nil, task)); err != nil || !gotTask.Schedule.Equal(m.Schedule) {
		t.Fatalf("part task schedule: %v %v, want %v", gotTask.Schedule, err, m.Schedule)
	}
	if _, err := DecodeMessage(append([]byte{tagMessage, 3}, AppendMessage(nil, m)[2:]...)); err == nil {
		t.Fatal("version 3 decoded")
	}
}

// sameRecord reports whether again, the re-encoding of what b decoded to, is b itself (b in the
// current version) or, for an older version, decodes to the same record.
func sameRecord(b, again []byte, decode func([]byte) (any, error)) bool {
	if len(b) > 1 && b[1] == again[1] {
		return bytes.Equal(b, again)
	}
	x, err1 := decode(b)
	y, err2 := decode(again)
	return err1 == nil && err2 == nil && reflect.DeepEqual(x, y)
}

// A decoded record's fields share one copy of the input; appending to a part's bytes must
// not reach the fields after it, and the input may be reused at once.
func TestDecodeOwnsItsCopy(t *testing.T) {
	want := sampleMessage()
	b := AppendMessage(nil, want)
	m, err := DecodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	m.Parts[0].ShortMessage = append(m.Parts[0].ShortMessage, 'x', 'y', 'z')
	m.Parts[0].ShortMessage = m.Parts[0].ShortMessage[:len(m.Parts[0].ShortMessage)-3]
	if !reflect.DeepEqual(m, want) {
		t.Errorf("after append and reuse of the input:\n got %+v\nwant %+v", m, want)
	}
}

func TestCodecAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := sampleMessage()
	b := AppendMessage(nil, m)
	if n := testing.AllocsPerRun(100, func() { AppendMessage(nil, m) }); n > 1 {
		t.Errorf("AppendMessage into nil: %v allocations, want 1", n)
	}
	// The copy, the message, its history and its parts.
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeMessage(b) }); n > 4 {
		t.Errorf("DecodeMessage: %v allocations, want at most 4", n)
	}
	pt := NewPartTask(m, 0)
	pb := AppendPartTask(nil, pt)
	if n := testing.AllocsPerRun(100, func() { AppendPartTask(nil, pt) }); n > 1 {
		t.Errorf("AppendPartTask into nil: %v allocations, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodePartTask(pb) }); n > 2 {
		t.Errorf("DecodePartTask: %v allocations, want at most 2", n)
	}
}

func BenchmarkMessageCodec(b *testing.B) {
	m := sampleMessage()
	buf := AppendMessage(nil, m)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(buf); err != nil {
			b.Fatal(err)
		}
		buf = AppendMessage(buf[:0], m)
	}
}

// A message with a callback URL is written as version 4 and reads back with it; one without is
// still written as version 2 (so an older release reads it) and reads back with none.
func TestCodecCallbackURL(t *testing.T) {
	m := sampleMessage()
	plain := AppendMessage(nil, m)
	if plain[1] != codecV2 {
		t.Fatalf("message without a callback written as version %d, want 2", plain[1])
	}
	m.CallbackURL = "https://example.com/dlr?id=1"
	b := AppendMessage(nil, m)
	if b[1] != codecV4 {
		t.Fatalf("message with a callback written as version %d, want 4", b[1])
	}
	got, err := DecodeMessage(b)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("version 4 message: %v\n got %+v\nwant %+v", err, got, m)
	}
	if got, err = DecodeMessage(plain); err != nil || got.CallbackURL != "" {
		t.Fatalf("version 2 message: %v, callback %q", err, got.CallbackURL)
	}
	if _, err := DecodeMessage(b[:len(b)-1]); err == nil {
		t.Fatal("truncated version 4 message decoded")
	}
}

// An API message is written as version 5 with its origin, with or without a callback URL, and
// reads back with it; an SMPP message (origin "") is written as before (version 2, or 4 with a
// callback), and every record of an earlier version reads back with origin "": SMPP.
func TestCodecOrigin(t *testing.T) {
	m := sampleMessage()
	smpp := AppendMessage(nil, m)
	if smpp[1] != codecV2 {
		t.Fatalf("SMPP message written as version %d, want 2", smpp[1])
	}
	for _, callback := range []string{"", "https://example.com/dlr"} {
		m.CallbackURL, m.Origin = callback, OriginAPI
		b := AppendMessage(nil, m)
		if b[1] != codecV5 {
			t.Fatalf("API message (callback %q) written as version %d, want 5", callback, b[1])
		}
		got, err := DecodeMessage(b)
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Fatalf("version 5 message: %v\n got %+v\nwant %+v", err, got, m)
		}
		if got.Origin != "api" {
			t.Fatalf("origin %q, want api", got.Origin)
		}
		if _, err := DecodeMessage(b[:len(b)-1]); err == nil {
			t.Fatal("truncated version 5 message decoded")
		}
	}
	m.Origin = OriginSMPP
	if b := AppendMessage(nil, m); b[1] != codecV4 {
		t.Fatalf("SMPP message with a callback written as version %d, want 4", b[1])
	}
	for _, b := range [][]byte{smpp, AppendMessage(nil, m)} {
		got, err := DecodeMessage(b)
		if err != nil || got.Origin != OriginSMPP {
			t.Fatalf("version %d message: %v, origin %q, want SMPP (\"\")", b[1], err, got.Origin)
		}
	}
	if _, err := DecodeMessage(append([]byte{tagMessage, 6}, smpp[2:]...)); err == nil {
		t.Fatal("version 6 decoded")
	}
}
