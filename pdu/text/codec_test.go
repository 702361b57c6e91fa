package text

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCodingString(t *testing.T) {
	tests := []struct {
		c    Coding
		want string
	}{
		{Default, "Default"}, {IA5, "IA5"}, {Binary8, "Binary8"}, {Latin1, "Latin1"}, {Binary, "Binary"},
		{JIS, "JIS"}, {Cyrillic, "Cyrillic"}, {Hebrew, "Hebrew"}, {UCS2, "UCS2"}, {Pictogram, "Pictogram"},
		{ISO2022JP, "ISO2022JP"}, {KanjiJIS, "KanjiJIS"}, {KSC5601, "KSC5601"},
		{0x0B, "Coding(0x0B)"}, {0xF1, "Coding(0xF1)"},
	}
	for _, tc := range tests {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("Coding(0x%02X).String() = %q; want %q", uint8(tc.c), got, tc.want)
		}
	}
	if got := AlphabetGSM7.String() + Alphabet8Bit.String() + AlphabetUCS2.String() + Alphabet(9).String(); got != "GSM78bitUCS2Alphabet(9)" {
		t.Errorf("Alphabet strings = %q", got)
	}
}

func TestAlphabet(t *testing.T) {
	tests := []struct {
		c        Coding
		want     Alphabet
		hasCodec bool
	}{
		{Default, AlphabetGSM7, true},
		{IA5, AlphabetGSM7, true},
		{Binary8, Alphabet8Bit, true},
		{Latin1, Alphabet8Bit, true},
		{Binary, Alphabet8Bit, true},
		{JIS, AlphabetUCS2, false},
		{Cyrillic, Alphabet8Bit, false},
		{Hebrew, Alphabet8Bit, false},
		{UCS2, AlphabetUCS2, true},
		{Pictogram, AlphabetUCS2, false},
		{ISO2022JP, Alphabet8Bit, false},
		{0x0B, AlphabetUCS2, true}, // reserved in SMPP; DCS general coding bits 3-2 = 10
		{0x0C, AlphabetGSM7, true}, // bits 3-2 = 11, reserved: GSM 7-bit
		{KanjiJIS, AlphabetUCS2, false},
		{KSC5601, AlphabetUCS2, false},
		{0x0F, AlphabetGSM7, true},
		{0x10, AlphabetGSM7, true}, // general coding, class 0
		{0x11, AlphabetGSM7, true},
		{0x14, Alphabet8Bit, true},
		{0x15, Alphabet8Bit, true},
		{0x18, AlphabetUCS2, true},
		{0x19, AlphabetUCS2, true},
		{0x1C, AlphabetGSM7, true},
		{0x20, Alphabet8Bit, false}, // compressed
		{0x38, Alphabet8Bit, false},
		{0x40, AlphabetGSM7, true}, // automatic deletion group
		{0x44, Alphabet8Bit, true},
		{0x48, AlphabetUCS2, true},
		{0x60, Alphabet8Bit, false},
		{0x80, AlphabetGSM7, true}, // reserved groups
		{0xBF, AlphabetGSM7, true},
		{0xC0, AlphabetGSM7, true}, // MWI discard
		{0xD3, AlphabetGSM7, true}, // MWI store
		{0xE0, AlphabetUCS2, true}, // MWI store UCS-2
		{0xEF, AlphabetUCS2, true},
		{0xF0, AlphabetGSM7, true}, // message class 0, GSM 7-bit
		{0xF1, AlphabetGSM7, true},
		{0xF3, AlphabetGSM7, true},
		{0xF4, Alphabet8Bit, true}, // message class 0, 8-bit
		{0xF6, Alphabet8Bit, true},
		{0xFB, AlphabetGSM7, true}, // bit 3 reserved, still GSM 7-bit
		{0xFF, Alphabet8Bit, true},
	}
	for _, tc := range tests {
		if got := tc.c.Alphabet(); got != tc.want {
			t.Errorf("Coding(0x%02X).Alphabet() = %v; want %v", uint8(tc.c), got, tc.want)
		}
		if got := tc.c.HasCodec(); got != tc.hasCodec {
			t.Errorf("Coding(0x%02X).HasCodec() = %v; want %v", uint8(tc.c), got, tc.hasCodec)
		}
	}
}

func TestCapacity(t *testing.T) {
	tests := []struct {
		c      Coding
		udhLen int
		want   int
	}{
		{Default, 0, 160}, {Default, 6, 153}, {Default, 7, 152}, {Default, 12, 146},
		{IA5, 6, 153},
		{Latin1, 0, 140}, {Latin1, 6, 134}, {Latin1, 7, 133}, {Binary, 6, 134},
		{UCS2, 0, 70}, {UCS2, 6, 67}, {UCS2, 7, 66}, {0xE0, 6, 67},
		{Default, 138, 2}, {UCS2, 136, 2}, {Binary8, 138, 2},
	}
	for _, tc := range tests {
		// Derived from 140 octets, as the package documentation's table says.
		got, err := Capacity(tc.c, tc.udhLen)
		if err != nil || got != tc.want {
			t.Errorf("Capacity(%v, %d) = %d, %v; want %d", tc.c, tc.udhLen, got, err, tc.want)
		}
	}
	for _, bad := range []struct {
		c      Coding
		udhLen int
	}{{Default, -1}, {Default, 139}, {UCS2, 137}, {Latin1, 139}, {Default, 141}, {Default, 1 << 40}} {
		if n, err := Capacity(bad.c, bad.udhLen); !errors.Is(err, ErrUDHLen) {
			t.Errorf("Capacity(%v, %d) = %d, %v; want ErrUDHLen", bad.c, bad.udhLen, n, err)
		}
	}
}

func TestUCS2(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"A", "0041"},
		{"Привет", "041F 0440 0438 0432 0435 0442"},
		{"😀", "D83D DE00"},
		{"a😀b", "0061 D83D DE00 0062"},
		{"𝄞", "D834 DD1E"},                                          // U+1D11E
		{"\U0010FFFF", "DBFF DFFF"},                                 // the last code point
		{"\uFFFD\uFFFF", "FFFD FFFF"},                               // a real U+FFFD is text, not an error
		{"€ 漢字 👍🏽", "20AC 0020 6F22 5B57 0020 D83D DC4D D83C DFFD"}, // emoji with a skin-tone modifier
	}
	for _, tc := range tests {
		want := mustHex(t, tc.want)
		got, err := Encode(UCS2, tc.in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode(UCS2, %q) = % X, %v; want % X", tc.in, got, err, want)
		}
		dec, err := Decode(UCS2, want)
		if err != nil || dec != tc.in {
			t.Errorf("Decode(UCS2, % X) = %q, %v; want %q", want, dec, err, tc.in)
		}
	}
}

func TestUCS2Malformed(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		contains string
	}{
		{"odd length", "0041 00", "offset 2"},
		{"lone high surrogate at end", "0041 D83D", "offset 2"},
		{"high surrogate then BMP", "D83D 0041", "offset 0"},
		{"high surrogate then high", "D83D D83D DE00", "offset 0"},
		{"lone low surrogate", "0041 0042 DE00", "offset 4"},
	}
	for _, tc := range tests {
		got, err := Decode(UCS2, mustHex(t, tc.in))
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.contains) || got != "" {
			t.Errorf("%s: Decode = %q, %v; want ErrMalformed at %s", tc.name, got, err, tc.contains)
		}
	}
	if _, err := Encode(UCS2, "ok\xc3"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("Encode(UCS2, invalid UTF-8) error = %v; want ErrInvalidUTF8", err)
	}
}

func TestLatin1(t *testing.T) {
	got, err := Encode(Latin1, "café ÿ ©")
	if want := mustHex(t, "636166E920FF20A9"); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Encode(Latin1) = % X, %v; want % X", got, err, want)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	s, err := Decode(Latin1, all)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range []rune(s) {
		if r != rune(i) {
			t.Fatalf("Decode(Latin1) octet %02X = U+%04X", i, r)
		}
	}
	back, err := Encode(Latin1, s)
	if err != nil || !bytes.Equal(back, all) {
		t.Errorf("Latin-1 round trip of all octets: % X, %v", back, err)
	}
	if _, err := Encode(Latin1, "5 €"); !errors.Is(err, ErrUnencodable) || !strings.Contains(err.Error(), "offset 2") {
		t.Errorf("Encode(Latin1, €) error = %v; want ErrUnencodable at offset 2", err)
	}
	if _, err := Encode(Latin1, "\xe9"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("Encode(Latin1, raw E9) error = %v; want ErrInvalidUTF8", err)
	}
}

func TestIA5(t *testing.T) {
	ascii := make([]byte, 128)
	for i := range ascii {
		ascii[i] = byte(i)
	}
	got, err := Encode(IA5, string(ascii))
	if err != nil || !bytes.Equal(got, ascii) {
		t.Errorf("Encode(IA5, all ASCII) = % X, %v", got, err)
	}
	s, err := Decode(IA5, ascii)
	if err != nil || s != string(ascii) {
		t.Errorf("Decode(IA5, all ASCII) = %q, %v", s, err)
	}
	if _, err := Encode(IA5, "naïve"); !errors.Is(err, ErrUnencodable) || !strings.Contains(err.Error(), "offset 2") {
		t.Errorf("Encode(IA5, ï) error = %v; want ErrUnencodable at offset 2", err)
	}
	if _, err := Encode(IA5, "a\x80"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("Encode(IA5, raw 80) error = %v; want ErrInvalidUTF8", err)
	}
	if _, err := Decode(IA5, []byte{0x41, 0xE9}); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "offset 1") {
		t.Errorf("Decode(IA5, E9) error = %v; want ErrMalformed at offset 1", err)
	}
}

func TestBinary(t *testing.T) {
	raw := []byte{0x00, 0xFF, 0x1B, 0xC3, 0x28}
	for _, c := range []Coding{Binary, Binary8, 0xF4, 0x15} {
		got, err := Encode(c, string(raw))
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("Encode(%v) = % X, %v; want unchanged", c, got, err)
		}
		dec, err := Decode(c, raw)
		if err != nil || dec != string(raw) {
			t.Errorf("Decode(%v) = %q, %v; want unchanged", c, dec, err)
		}
	}
}

func TestDataCodingSchemes(t *testing.T) {
	// A GSM 7-bit scheme with a message class reads as the default alphabet.
	got, err := Encode(0xF1, "€5")
	if want := []byte{0x1B, 0x65, 0x35}; err != nil || !bytes.Equal(got, want) {
		t.Errorf("Encode(0xF1) = % X, %v; want % X", got, err, want)
	}
	if s, err := Decode(0x10, []byte{0x00, 0x1B, 0x65}); err != nil || s != "@€" {
		t.Errorf("Decode(0x10) = %q, %v", s, err)
	}
	// A UCS-2 scheme reads as UTF-16BE.
	if s, err := Decode(0x18, mustHex(t, "D83DDE00")); err != nil || s != "😀" {
		t.Errorf("Decode(0x18) = %q, %v", s, err)
	}
	if s, err := Decode(0xE8, mustHex(t, "0048")); err != nil || s != "H" {
		t.Errorf("Decode(0xE8) = %q, %v", s, err)
	}
}

func TestNoCodec(t *testing.T) {
	for _, c := range []Coding{JIS, Cyrillic, Hebrew, Pictogram, ISO2022JP, KanjiJIS, KSC5601, 0x20, 0x7F} {
		if _, err := Encode(c, "x"); !errors.Is(err, ErrNoCodec) || !strings.Contains(err.Error(), c.String()) {
			t.Errorf("Encode(%v) error = %v; want ErrNoCodec naming the coding", c, err)
		}
		if _, err := Decode(c, []byte("x")); !errors.Is(err, ErrNoCodec) {
			t.Errorf("Decode(%v) error = %v; want ErrNoCodec", c, err)
		}
		if _, err := Units(c, "x"); !errors.Is(err, ErrNoCodec) {
			t.Errorf("Units(%v) error = %v; want ErrNoCodec", c, err)
		}
		if _, err := Parts(c, "x", 6); !errors.Is(err, ErrNoCodec) {
			t.Errorf("Parts(%v) error = %v; want ErrNoCodec", c, err)
		}
	}
}

func TestAppendEncode(t *testing.T) {
	dst := []byte("prefix:")
	got, err := AppendEncode(dst, Default, "€")
	if err != nil || string(got) != "prefix:\x1b\x65" {
		t.Errorf("AppendEncode = %q, %v", got, err)
	}
	// On error the caller's bytes are kept and nothing is added.
	got, err = AppendEncode([]byte("prefix:"), Default, "ab😀")
	if !errors.Is(err, ErrUnencodable) || string(got) != "prefix:" {
		t.Errorf("AppendEncode error = %q, %v; want prefix kept", got, err)
	}
	got, err = AppendDecode([]byte("x"), UCS2, []byte{0, 0x41, 0})
	if !errors.Is(err, ErrMalformed) || string(got) != "x" {
		t.Errorf("AppendDecode error = %q, %v; want prefix kept", got, err)
	}
}

func TestAppendAllocs(t *testing.T) {
	msg := strings.Repeat("Hello {world} €", 10)
	buf := make([]byte, 0, 1024)
	tests := []struct {
		name string
		f    func()
	}{
		{"AppendEncode GSM", func() { _, _ = AppendEncode(buf[:0], Default, msg) }},
		{"AppendEncode UCS2", func() { _, _ = AppendEncode(buf[:0], UCS2, msg) }},
		{"AppendDecode GSM", func() { _, _ = AppendDecode(buf[:0], Default, []byte{0x41, 0x1B, 0x65}) }},
		{"AppendPack", func() { _ = AppendPack(buf[:0], []byte("hellohello"), 1) }},
		{"Parts", func() { _, _ = Parts(Default, msg, 6) }},
		{"Pick", func() { _ = Pick(msg) }},
	}
	for _, tc := range tests {
		if n := testing.AllocsPerRun(100, tc.f); n != 0 {
			t.Errorf("%s: %v allocs, want 0", tc.name, n)
		}
	}
	enc, _ := Encode(Default, msg)
	if n := testing.AllocsPerRun(100, func() { _, _ = Decode(Default, enc) }); n != 1 {
		t.Errorf("Decode of a short message: %v allocs, want 1 (the string)", n)
	}
	for _, s := range []string{msg, strings.Repeat(msg, 20)} {
		for _, c := range []Coding{Default, UCS2, Binary} {
			if n := testing.AllocsPerRun(100, func() { _, _ = Encode(c, s) }); n != 1 {
				t.Errorf("Encode(%v) of %d octets: %v allocs, want 1", c, len(s), n)
			}
		}
	}
}

// Encode takes a different buffer for long text; both must agree with AppendEncode.
func TestEncodeLong(t *testing.T) {
	for _, s := range []string{strings.Repeat("{€}", 300), strings.Repeat("a😀ж", 300), strings.Repeat("x", 257), strings.Repeat("y", 513)} {
		for _, c := range []Coding{Default, UCS2, Latin1, Binary} {
			want, wantErr := AppendEncode(nil, c, s)
			got, err := Encode(c, s)
			if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
				t.Errorf("Encode(%v, %d octets) = %d octets, %v; AppendEncode %d, %v", c, len(s), len(got), err, len(want), wantErr)
			}
			if err != nil && got != nil {
				t.Errorf("Encode(%v) returned bytes with error %v", c, err)
			}
		}
	}
}
