package dlr

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

// samples are receipt texts in the shapes real SMSCs send, as Kannel, Jasmin, cloudhopper and
// node-smpp users report them, with what Parse must make of them and the canonical form Append
// writes back.
var samples = []struct {
	name  string
	in    string
	want  Receipt
	canon string // "" when the input is already canonical
}{
	{
		name: "Appendix B",
		in:   "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 stat:DELIVRD err:000 text:Hello World",
		want: Receipt{ID: "0123456789", Sub: 1, Dlvrd: 1, SubmitDate: utc(2006, 10, 19, 10, 18, 0), DoneDate: utc(2006, 10, 19, 10, 18, 0), Stat: "DELIVRD", Err: "000", Text: "Hello World"},
	},
	{
		name:  "upper-case keys and hex id",
		in:    "ID:7A3C19F2 SUB:001 DLVRD:001 SUBMIT DATE:2301151230 DONE DATE:2301151231 STAT:DELIVRD ERR:000 TEXT:Test message",
		want:  Receipt{ID: "7A3C19F2", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "DELIVRD", Err: "000", Text: "Test message"},
		canon: "id:7A3C19F2 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:Test message",
	},
	{
		name:  "capital Text:",
		in:    "id:1234567890 sub:001 dlvrd:001 submit date:1311141408 done date:1311141408 stat:DELIVRD err:000 Text:Your code is 1234",
		want:  Receipt{ID: "1234567890", Sub: 1, Dlvrd: 1, SubmitDate: utc(2013, 11, 14, 14, 8, 0), DoneDate: utc(2013, 11, 14, 14, 8, 0), Stat: "DELIVRD", Err: "000", Text: "Your code is 1234"},
		canon: "id:1234567890 sub:001 dlvrd:001 submit date:1311141408 done date:1311141408 stat:DELIVRD err:000 text:Your code is 1234",
	},
	{
		name:  "submit_date and done_date, lower-case hex id",
		in:    "id:c449ab9744f47b6af1879e49e75e4f40 sub:001 dlvrd:001 submit_date:1506261552 done_date:1506261553 stat:DELIVRD err:000 text:Hi",
		want:  Receipt{ID: "c449ab9744f47b6af1879e49e75e4f40", Sub: 1, Dlvrd: 1, SubmitDate: utc(2015, 6, 26, 15, 52, 0), DoneDate: utc(2015, 6, 26, 15, 53, 0), Stat: "DELIVRD", Err: "000", Text: "Hi"},
		canon: "id:c449ab9744f47b6af1879e49e75e4f40 sub:001 dlvrd:001 submit date:1506261552 done date:1506261553 stat:DELIVRD err:000 text:Hi",
	},
	{
		name:  "no text field",
		in:    "id:987654321 sub:001 dlvrd:000 submit date:2001010000 done date:2001010005 stat:UNDELIV err:001",
		want:  Receipt{ID: "987654321", Sub: 1, Dlvrd: 0, SubmitDate: utc(2020, 1, 1, 0, 0, 0), DoneDate: utc(2020, 1, 1, 0, 5, 0), Stat: "UNDELIV", Err: "001"},
		canon: "id:987654321 sub:001 dlvrd:000 submit date:2001010000 done date:2001010005 stat:UNDELIV err:001 text:",
	},
	{
		name: "empty text",
		in:   "id:5 sub:001 dlvrd:001 submit date:2301151230 done date:2301151230 stat:DELIVRD err:000 text:",
		want: Receipt{ID: "5", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 30, 0), Stat: "DELIVRD", Err: "000"},
	},
	{
		name: "text holding receipt keys runs to the end",
		in:   "id:42 sub:001 dlvrd:001 submit date:2205051200 done date:2205051201 stat:DELIVRD err:000 text:stat:REJECTD err:999 id:7 done date:x",
		want: Receipt{ID: "42", Sub: 1, Dlvrd: 1, SubmitDate: utc(2022, 5, 5, 12, 0, 0), DoneDate: utc(2022, 5, 5, 12, 1, 0), Stat: "DELIVRD", Err: "000", Text: "stat:REJECTD err:999 id:7 done date:x"},
	},
	{
		name:  "no sub, no dlvrd, one-digit err",
		in:    "id:55501 submit date:2112312359 done date:2201010001 stat:EXPIRED err:0",
		want:  Receipt{ID: "55501", Sub: NoCount, Dlvrd: NoCount, SubmitDate: utc(2021, 12, 31, 23, 59, 0), DoneDate: utc(2022, 1, 1, 0, 1, 0), Stat: "EXPIRED", Err: "0"},
		canon: "id:55501 submit date:2112312359 done date:2201010001 stat:EXPIRED err:0 text:",
	},
	{
		name:  "12-digit dates with seconds",
		in:    "id:1a2b3c sub:001 dlvrd:001 submit date:230115123045 done date:230115123107 stat:DELIVRD err:000 text:x",
		want:  Receipt{ID: "1a2b3c", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 45), DoneDate: utc(2023, 1, 15, 12, 31, 7), Stat: "DELIVRD", Err: "000", Text: "x"},
		canon: "id:1a2b3c sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:x",
	},
	{
		name:  "12-digit dates with a four-digit year",
		in:    "id:100 sub:001 dlvrd:001 submit date:202301151230 done date:202301151231 stat:DELIVRD err:000 text:",
		want:  Receipt{ID: "100", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "DELIVRD", Err: "000"},
		canon: "id:100 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:",
	},
	{
		name:  "12 digits valid both ways read as seconds",
		in:    "id:100 submit date:201201151230 stat:DELIVRD err:000 text:",
		want:  Receipt{ID: "100", Sub: NoCount, Dlvrd: NoCount, SubmitDate: utc(2020, 12, 1, 15, 12, 30), Stat: "DELIVRD", Err: "000"},
		canon: "id:100 submit date:2012011512 stat:DELIVRD err:000 text:",
	},
	{
		name:  "14-digit dates",
		in:    "id:100 sub:001 dlvrd:001 submit date:20230115123000 done date:20230115123100 stat:DELIVRD err:000 text:",
		want:  Receipt{ID: "100", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "DELIVRD", Err: "000"},
		canon: "id:100 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:",
	},
	{
		name:  "extra spaces everywhere",
		in:    "  id:  77  sub:001   dlvrd:001  submit  date:2301151230 done   date: 2301151231  stat: DELIVRD  err:000  text: spaced",
		want:  Receipt{ID: "77", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "DELIVRD", Err: "000", Text: " spaced"},
		canon: "id:77 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text: spaced",
	},
	{
		name: "one-digit counts keep their width",
		in:   "id:9 sub:1 dlvrd:1 submit date:2301151230 done date:2301151230 stat:DELIVRD err:0 text:",
		want: Receipt{ID: "9", Sub: 1, Dlvrd: 1, subWidth: 1, dlvrdWidth: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 30, 0), Stat: "DELIVRD", Err: "0"},
	},
	{
		name:  "trailing NULs from a C-string SMSC",
		in:    "id:9 sub:001 dlvrd:001 submit date:2301151230 done date:2301151230 stat:ACCEPTD err:000 text:abc\x00\x00",
		want:  Receipt{ID: "9", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 30, 0), Stat: "ACCEPTD", Err: "000", Text: "abc"},
		canon: "id:9 sub:001 dlvrd:001 submit date:2301151230 done date:2301151230 stat:ACCEPTD err:000 text:abc",
	},
	{
		name:  "vendor key:value extras are skipped",
		in:    "id:100 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 mcc:250 mnc:01 text:Hi",
		want:  Receipt{ID: "100", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "DELIVRD", Err: "000", Text: "Hi"},
		canon: "id:100 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:Hi",
	},
	{
		name:  "all-zero dates, lower-case stat, hex err",
		in:    "id:ABCDEF sub:001 dlvrd:000 submit date:0000000000 done date:0000000000 stat:undeliv err:0x1F text:",
		want:  Receipt{ID: "ABCDEF", Sub: 1, Dlvrd: 0, Stat: "undeliv", Err: "0x1F"},
		canon: "id:ABCDEF sub:001 dlvrd:000 stat:undeliv err:0x1F text:",
	},
	{
		name:  "fields out of order on separate lines",
		in:    "stat:DELIVRD\r\nid:31337\r\nerr:000\r\ntext:multi\r\nline",
		want:  Receipt{ID: "31337", Sub: NoCount, Dlvrd: NoCount, Stat: "DELIVRD", Err: "000", Text: "multi\r\nline"},
		canon: "id:31337 stat:DELIVRD err:000 text:multi\r\nline",
	},
	{
		name: "empty err",
		in:   "id:5 sub:001 dlvrd:001 submit date:2402291230 done date:2402291230 stat:DELIVRD err: text:ok",
		want: Receipt{ID: "5", Sub: 1, Dlvrd: 1, SubmitDate: utc(2024, 2, 29, 12, 30, 0), DoneDate: utc(2024, 2, 29, 12, 30, 0), Stat: "DELIVRD", Err: "", Text: "ok"},
	},
	{
		name: "intermediate ENROUTE with large counts",
		in:   "id:88 sub:1000 dlvrd:0999 submit date:2301151230 done date:2301151230 stat:ENROUTE err:000 text:",
		want: Receipt{ID: "88", Sub: 1000, Dlvrd: 999, dlvrdWidth: 4, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 30, 0), Stat: "ENROUTE", Err: "000"},
	},
	{
		name:  "UUID id, full-word stat",
		in:    "id:16fd2706-8baf-433b-82eb-8c7fada847da sub:001 dlvrd:001 submit date:2301151230 done date:2301151230 stat:DELIVERED err:000 text:Привет",
		want:  Receipt{ID: "16fd2706-8baf-433b-82eb-8c7fada847da", Sub: 1, Dlvrd: 1, SubmitDate: utc(2023, 1, 15, 12, 30, 0), DoneDate: utc(2023, 1, 15, 12, 30, 0), Stat: "DELIVERED", Err: "000", Text: "Привет"},
		canon: "",
	},
}

func TestParseSamples(t *testing.T) {
	for _, tc := range samples {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tc.want {
				t.Fatalf("Parse:\n got %#v\nwant %#v", got, tc.want)
			}
			canon := tc.canon
			if canon == "" {
				canon = tc.in
			}
			if s := got.String(); s != canon {
				t.Fatalf("String:\n got %q\nwant %q", s, canon)
			}
			// The canonical form reads back as the same receipt, seconds aside.
			again, err := Parse(canon)
			if err != nil {
				t.Fatalf("Parse(canonical): %v", err)
			}
			if want := toMinutes(tc.want); again != want {
				t.Fatalf("Parse(canonical):\n got %#v\nwant %#v", again, want)
			}
		})
	}
}

// toMinutes is r as it reads back after Append, which writes dates to the minute.
func toMinutes(r Receipt) Receipt {
	trunc := func(t time.Time) time.Time {
		if t.IsZero() {
			return t
		}
		y, mo, d := t.Date()
		h, mi, _ := t.Clock()
		return time.Date(y, mo, d, h, mi, 0, 0, t.Location())
	}
	r.SubmitDate, r.DoneDate = trunc(r.SubmitDate), trunc(r.DoneDate)
	return r
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		is     error
		field  string // the FieldError's field, for ErrMalformed
		wantID string // what the partial receipt still holds
	}{
		{"empty", "", ErrNotReceipt, "", ""},
		{"white space and NULs", " \r\n\x00", ErrNotReceipt, "", ""},
		{"MO text", "Hello, how are you? id:5 stat:DELIVRD", ErrNotReceipt, "", ""},
		{"text key alone", "Text: see you at 10", ErrNotReceipt, "", ""},
		{"counts alone", "sub:001 dlvrd:001", ErrNotReceipt, "", ""},
		{"key without colon", "id 12345 stat DELIVRD", ErrNotReceipt, "", ""},
		{"empty id", "id: sub:001 dlvrd:001 stat:DELIVRD err:000 text:", ErrMalformed, "id", ""},
		{"missing id", "stat:DELIVRD err:000 text:x", ErrMalformed, "id", ""},
		{"missing id beats a bad count", "stat:DELIVRD sub:x err:000", ErrMalformed, "id", ""},
		{"missing stat beats a bad date", "id:77 done date:2302301200", ErrMalformed, "stat", "77"},
		{"missing stat", "id:77 sub:001 dlvrd:001 err:000 text:stat:DELIVRD", ErrMalformed, "stat", "77"},
		{"empty stat", "id:77 stat: err:000", ErrMalformed, "stat", "77"},
		{"sub not a number", "id:77 sub:abc dlvrd:001 stat:DELIVRD", ErrMalformed, "sub", "77"},
		{"negative dlvrd", "id:77 sub:001 dlvrd:-1 stat:DELIVRD", ErrMalformed, "dlvrd", "77"},
		{"count too long", "id:77 sub:0000000001 stat:DELIVRD", ErrMalformed, "sub", "77"},
		{"month 13", "id:77 submit date:2313011200 stat:DELIVRD", ErrMalformed, "submit date", "77"},
		{"February 30", "id:77 done date:2302301200 stat:DELIVRD", ErrMalformed, "done date", "77"},
		{"February 29 in 2023", "id:77 done date:2302291200 stat:DELIVRD", ErrMalformed, "done date", "77"},
		{"hour 24", "id:77 done date:2301012400 stat:DELIVRD", ErrMalformed, "done date", "77"},
		{"minute 60", "id:77 done date:2301012360 stat:DELIVRD", ErrMalformed, "done date", "77"},
		{"second 60", "id:77 done date:230101235960 stat:DELIVRD", ErrMalformed, "done date", "77"},
		{"12 digits valid neither way", "id:77 done date:202313011200 stat:DELIVRD", ErrMalformed, "done date", "77"},
		{"8-digit date", "id:77 submit date:23011512 stat:DELIVRD", ErrMalformed, "submit date", "77"},
		{"date with dashes", "id:77 submit date:23-01-1512 stat:DELIVRD", ErrMalformed, "submit date", "77"},
		{"14-digit date in 1999", "id:77 submit date:19991231235900 stat:DELIVRD", ErrMalformed, "submit date", "77"},
		{"id twice", "id:1 id:2 stat:DELIVRD", ErrMalformed, "id", "1"},
		{"stat twice", "id:1 stat:DELIVRD stat:UNDELIV", ErrMalformed, "stat", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.in)
			if !errors.Is(err, tc.is) {
				t.Fatalf("Parse(%q) error = %v, want %v", tc.in, err, tc.is)
			}
			if tc.is == ErrMalformed {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("Parse(%q) error = %v, want a FieldError for %q", tc.in, err, tc.field)
				}
				if !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("error %q does not name %q", err, tc.field)
				}
			}
			if r.ID != tc.wantID {
				t.Fatalf("partial receipt ID = %q, want %q", r.ID, tc.wantID)
			}
		})
	}
}

func TestParsePartialReceipt(t *testing.T) {
	// A bad date must not cost the id and the state, which are what correlation needs.
	r, err := Parse("id:4711 sub:001 dlvrd:001 submit date:garbage done date:2301151231 stat:DELIVRD err:000 text:x")
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("error = %v, want ErrMalformed", err)
	}
	want := Receipt{ID: "4711", Sub: 1, Dlvrd: 1, DoneDate: utc(2023, 1, 15, 12, 31, 0), Stat: "DELIVRD", Err: "000", Text: "x"}
	if r != want {
		t.Fatalf("partial receipt:\n got %#v\nwant %#v", r, want)
	}
}

func TestErrorValueClipped(t *testing.T) {
	_, err := Parse("id:1 stat:X sub:" + strings.Repeat("9", 5000))
	if err == nil || len(err.Error()) > 100 {
		t.Fatalf("error = %v (len %d), want a short error", err, len(err.Error()))
	}
}

func TestParseInLocation(t *testing.T) {
	msk := time.FixedZone("MSK", 3*3600)
	in := "id:1 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:"
	r, err := ParseInLocation(in, msk)
	if err != nil {
		t.Fatal(err)
	}
	if want := utc(2023, 1, 15, 9, 30, 0); !r.SubmitDate.Equal(want) || r.SubmitDate.Location() != msk {
		t.Fatalf("SubmitDate = %v, want %v in MSK", r.SubmitDate, want)
	}
	// Append writes the time in its own location, so the peer's wall clock reads back.
	if s := r.String(); s != in {
		t.Fatalf("String = %q, want %q", s, in)
	}
	again, err := ParseInLocation(r.String(), msk)
	if err != nil || again != r {
		t.Fatalf("round trip in MSK: %#v, %v; want %#v", again, err, r)
	}
	// A nil location is UTC, not a panic in time.Date.
	r, err = ParseInLocation(in, nil)
	if err != nil || !r.SubmitDate.Equal(utc(2023, 1, 15, 12, 30, 0)) {
		t.Fatalf("nil location: %v, %v", r.SubmitDate, err)
	}
}

func TestRoundTrip(t *testing.T) {
	msk := time.FixedZone("MSK", 3*3600)
	tests := []struct {
		name string
		r    Receipt
		loc  *time.Location
	}{
		{"full", Receipt{ID: "0123456789", Sub: 1, Dlvrd: 1, SubmitDate: utc(2026, 11, 21, 22, 38, 0), DoneDate: utc(2026, 11, 21, 22, 39, 0), Stat: "DELIVRD", Err: "000", Text: "Your code is 1234"}, nil},
		{"absent counts and dates", Receipt{ID: "abc", Sub: NoCount, Dlvrd: NoCount, Stat: "UNDELIV", Err: "001"}, nil},
		{"zero counts", Receipt{ID: "abc", Sub: 0, Dlvrd: 0, Stat: "REJECTD", Err: "0x0B"}, nil},
		{"big counts", Receipt{ID: "abc", Sub: 1000, Dlvrd: 999999999, Stat: "ENROUTE"}, nil},
		{"empty err and text", Receipt{ID: "1", Sub: 1, Dlvrd: 0, Stat: "ACCEPTD"}, nil},
		{"text with keys, colons and unicode", Receipt{ID: "x-1", Sub: 1, Dlvrd: 1, Stat: "DELIVRD", Err: "000", Text: " stat:REJECTD id:2 text: ∑ 日本"}, nil},
		{"leap day", Receipt{ID: "1", Sub: 1, Dlvrd: 1, SubmitDate: utc(2028, 2, 29, 23, 59, 0), DoneDate: utc(2099, 12, 31, 0, 0, 0), Stat: "EXPIRED", Err: "000"}, nil},
		{"dates in the SMSC's zone", Receipt{ID: "1", Sub: 1, Dlvrd: 1, SubmitDate: time.Date(2023, 1, 15, 12, 30, 0, 0, msk), DoneDate: time.Date(2023, 1, 15, 12, 31, 0, 0, msk), Stat: "DELIVRD", Err: "000"}, msk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseInLocation(tc.r.String(), tc.loc)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.r.String(), err)
			}
			if got != tc.r {
				t.Fatalf("Parse(%q):\n got %#v\nwant %#v", tc.r.String(), got, tc.r)
			}
		})
	}
}

func TestAppend(t *testing.T) {
	r := Receipt{ID: "1", Sub: 7, Dlvrd: NoCount, SubmitDate: time.Date(2023, 1, 15, 12, 30, 59, 999, time.UTC), DoneDate: time.Date(1999, 12, 31, 23, 59, 0, 0, time.UTC), Stat: "DELIVRD", Err: "000", Text: "t"}
	// Append extends b and leaves what b held; seconds are dropped, a year outside 2000-2099 keeps its last two digits.
	got := string(r.Append([]byte("prefix|")))
	want := "prefix|id:1 sub:007 submit date:2301151230 done date:9912312359 stat:DELIVRD err:000 text:t"
	if got != want {
		t.Fatalf("Append:\n got %q\nwant %q", got, want)
	}
	// A negative count other than NoCount is absent too.
	if s := (Receipt{ID: "1", Sub: -5, Dlvrd: -1, Stat: "DELIVRD"}).String(); s != "id:1 stat:DELIVRD err: text:" {
		t.Fatalf("String = %q", s)
	}
}

func TestAppendAllocs(t *testing.T) {
	r := samples[0].want
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = r.Append(buf[:0]) }); n != 0 {
		t.Fatalf("Append into a big-enough buffer: %v allocs, want 0", n)
	}
}

func TestStateMapping(t *testing.T) {
	want := map[pdu.MessageState]string{
		pdu.ENROUTE: "ENROUTE", pdu.DELIVERED: "DELIVRD", pdu.EXPIRED: "EXPIRED", pdu.DELETED: "DELETED",
		pdu.UNDELIVERABLE: "UNDELIV", pdu.ACCEPTED: "ACCEPTD", pdu.UNKNOWN: "UNKNOWN", pdu.REJECTED: "REJECTD",
	}
	for m := pdu.ENROUTE; m <= pdu.REJECTED; m++ {
		stat := StatFor(m)
		if stat != want[m] {
			t.Errorf("StatFor(%v) = %q, want %q", m, stat, want[m])
		}
		if got := (Receipt{Stat: stat}).State(); got != m {
			t.Errorf("State(%q) = %v, want %v", stat, got, m)
		}
	}
	for _, m := range []pdu.MessageState{0, 9, 255} {
		if got := StatFor(m); got != "UNKNOWN" {
			t.Errorf("StatFor(%v) = %q, want UNKNOWN", m, got)
		}
	}
	words := []struct {
		stat string
		want pdu.MessageState
	}{
		{"delivrd", pdu.DELIVERED}, {"Delivered", pdu.DELIVERED}, {"UNDELIVERABLE", pdu.UNDELIVERABLE},
		{"undelivered", pdu.UNDELIVERABLE}, {"accepted", pdu.ACCEPTED}, {"REJECTED", pdu.REJECTED},
		{"expired", pdu.EXPIRED}, {"enroute", pdu.ENROUTE}, {"deleted", pdu.DELETED},
		{"", pdu.UNKNOWN}, {"FAILED", pdu.UNKNOWN}, {"DELIVRDX", pdu.UNKNOWN}, {"2", pdu.UNKNOWN},
	}
	for _, w := range words {
		if got := (Receipt{Stat: w.stat}).State(); got != w.want {
			t.Errorf("State(%q) = %v, want %v", w.stat, got, w.want)
		}
	}
}

func TestIsReceipt(t *testing.T) {
	tests := []struct {
		esm  uint8
		want bool
	}{
		{0x00, false},                                            // default message type: MO
		{pdu.EsmClassReceipt, true},                              // SMSC delivery receipt
		{pdu.EsmClassIntermediate, true},                         // intermediate delivery notification
		{pdu.EsmClassSMEAck, false},                              // SME delivery acknowledgement
		{pdu.EsmClassUserAck, false},                             // SME manual/user acknowledgement
		{pdu.EsmClassConvAbort, false},                           // conversation abort
		{pdu.EsmClassReceipt | pdu.EsmClassUDHI | 0x03, true},    // mode and feature bits do not matter
		{pdu.EsmClassUDHI | pdu.EsmClassReplyPath | 0x03, false}, // nor make an MO a receipt
		{pdu.EsmClassReceipt | pdu.EsmClassSMEAck, false},        // 0011 is reserved
		{pdu.EsmClassIntermediate | pdu.EsmClassReceipt, false},  // 1001 is reserved
	}
	for _, tc := range tests {
		if got := IsReceipt(tc.esm); got != tc.want {
			t.Errorf("IsReceipt(0x%02X) = %v, want %v", tc.esm, got, tc.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	s := samples[0].in
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseTolerant(b *testing.B) {
	s := "  ID:  77  SUB:1   dlvrd:001  submit_date:230115123045 done   date: 2301151231 mcc:250 stat: delivrd  err:0x1F  Text: spaced"
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppend(b *testing.B) {
	r := samples[0].want
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.Append(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}
