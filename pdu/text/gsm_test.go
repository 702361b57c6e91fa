package text

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// gsm0338 is the default alphabet of 3GPP TS 23.038 section 6.2.1 as septet -> Unicode code point,
// written out independently of gsmDefault so the test checks the table rather than restating it.
var gsm0338 = []struct {
	septet byte
	cp     rune
}{
	{0x00, 0x0040}, {0x01, 0x00A3}, {0x02, 0x0024}, {0x03, 0x00A5}, {0x04, 0x00E8}, {0x05, 0x00E9},
	{0x06, 0x00F9}, {0x07, 0x00EC}, {0x08, 0x00F2}, {0x09, 0x00C7}, {0x0A, 0x000A}, {0x0B, 0x00D8},
	{0x0C, 0x00F8}, {0x0D, 0x000D}, {0x0E, 0x00C5}, {0x0F, 0x00E5}, {0x10, 0x0394}, {0x11, 0x005F},
	{0x12, 0x03A6}, {0x13, 0x0393}, {0x14, 0x039B}, {0x15, 0x03A9}, {0x16, 0x03A0}, {0x17, 0x03A8},
	{0x18, 0x03A3}, {0x19, 0x0398}, {0x1A, 0x039E}, {0x1C, 0x00C6}, {0x1D, 0x00E6}, {0x1E, 0x00DF},
	{0x1F, 0x00C9}, {0x20, 0x0020}, {0x21, 0x0021}, {0x22, 0x0022}, {0x23, 0x0023}, {0x24, 0x00A4},
	{0x25, 0x0025}, {0x26, 0x0026}, {0x27, 0x0027}, {0x28, 0x0028}, {0x29, 0x0029}, {0x2A, 0x002A},
	{0x2B, 0x002B}, {0x2C, 0x002C}, {0x2D, 0x002D}, {0x2E, 0x002E}, {0x2F, 0x002F}, {0x30, 0x0030},
	{0x31, 0x0031}, {0x32, 0x0032}, {0x33, 0x0033}, {0x34, 0x0034}, {0x35, 0x0035}, {0x36, 0x0036},
	{0x37, 0x0037}, {0x38, 0x0038}, {0x39, 0x0039}, {0x3A, 0x003A}, {0x3B, 0x003B}, {0x3C, 0x003C},
	{0x3D, 0x003D}, {0x3E, 0x003E}, {0x3F, 0x003F}, {0x40, 0x00A1}, {0x41, 0x0041}, {0x42, 0x0042},
	{0x43, 0x0043}, {0x44, 0x0044}, {0x45, 0x0045}, {0x46, 0x0046}, {0x47, 0x0047}, {0x48, 0x0048},
	{0x49, 0x0049}, {0x4A, 0x004A}, {0x4B, 0x004B}, {0x4C, 0x004C}, {0x4D, 0x004D}, {0x4E, 0x004E},
	{0x4F, 0x004F}, {0x50, 0x0050}, {0x51, 0x0051}, {0x52, 0x0052}, {0x53, 0x0053}, {0x54, 0x0054},
	{0x55, 0x0055}, {0x56, 0x0056}, {0x57, 0x0057}, {0x58, 0x0058}, {0x59, 0x0059}, {0x5A, 0x005A},
	{0x5B, 0x00C4}, {0x5C, 0x00D6}, {0x5D, 0x00D1}, {0x5E, 0x00DC}, {0x5F, 0x00A7}, {0x60, 0x00BF},
	{0x61, 0x0061}, {0x62, 0x0062}, {0x63, 0x0063}, {0x64, 0x0064}, {0x65, 0x0065}, {0x66, 0x0066},
	{0x67, 0x0067}, {0x68, 0x0068}, {0x69, 0x0069}, {0x6A, 0x006A}, {0x6B, 0x006B}, {0x6C, 0x006C},
	{0x6D, 0x006D}, {0x6E, 0x006E}, {0x6F, 0x006F}, {0x70, 0x0070}, {0x71, 0x0071}, {0x72, 0x0072},
	{0x73, 0x0073}, {0x74, 0x0074}, {0x75, 0x0075}, {0x76, 0x0076}, {0x77, 0x0077}, {0x78, 0x0078},
	{0x79, 0x0079}, {0x7A, 0x007A}, {0x7B, 0x00E4}, {0x7C, 0x00F6}, {0x7D, 0x00F1}, {0x7E, 0x00FC},
	{0x7F, 0x00E0},
}

// gsm0338Ext is the extension table of TS 23.038 section 6.2.1.1 (codes after ESC 0x1B).
var gsm0338Ext = []struct {
	septet byte
	cp     rune
}{
	{0x0A, 0x000C}, {0x14, 0x005E}, {0x28, 0x007B}, {0x29, 0x007D}, {0x2F, 0x005C},
	{0x3C, 0x005B}, {0x3D, 0x007E}, {0x3E, 0x005D}, {0x40, 0x007C}, {0x65, 0x20AC},
}

func TestGSMDefaultAlphabet(t *testing.T) {
	if len(gsm0338) != 127 {
		t.Fatalf("test table has %d entries, want 127 (128 septets less ESC)", len(gsm0338))
	}
	for _, tc := range gsm0338 {
		s := string(tc.cp)
		got, err := Encode(Default, s)
		if err != nil || !bytes.Equal(got, []byte{tc.septet}) {
			t.Errorf("Encode(%q U+%04X) = % X, %v; want %02X", s, tc.cp, got, err, tc.septet)
		}
		dec, err := Decode(Default, []byte{tc.septet})
		if err != nil || dec != s {
			t.Errorf("Decode(%02X) = %q, %v; want %q", tc.septet, dec, err, s)
		}
		if n, err := Units(Default, s); n != 1 || err != nil {
			t.Errorf("Units(%q) = %d, %v; want 1", s, n, err)
		}
	}
}

func TestGSMExtensionTable(t *testing.T) {
	for _, tc := range gsm0338Ext {
		s := string(tc.cp)
		want := []byte{0x1B, tc.septet}
		got, err := Encode(Default, s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Encode(%q U+%04X) = % X, %v; want % X", s, tc.cp, got, err, want)
		}
		dec, err := Decode(Default, want)
		if err != nil || dec != s {
			t.Errorf("Decode(% X) = %q, %v; want %q", want, dec, err, s)
		}
		if n, err := Units(Default, s); n != 2 || err != nil {
			t.Errorf("Units(%q) = %d, %v; want 2", s, n, err)
		}
	}
}

// Every rune GSM lacks must be refused, so that the two tables above are the whole alphabet.
func TestGSMNothingElseEncodes(t *testing.T) {
	in := map[rune]bool{}
	for _, tc := range gsm0338 {
		in[tc.cp] = true
	}
	for _, tc := range gsm0338Ext {
		in[tc.cp] = true
	}
	for r := rune(0); r < 0x3000; r++ {
		if in[r] || (r >= 0xD800 && r <= 0xDFFF) {
			continue
		}
		if InGSM(r) {
			t.Errorf("InGSM(U+%04X) = true, not in TS 23.038", r)
		}
		if _, err := Encode(Default, string(r)); !errors.Is(err, ErrUnencodable) {
			t.Errorf("Encode(U+%04X) error = %v, want ErrUnencodable", r, err)
		}
	}
}

func TestGSMEncode(t *testing.T) {
	tests := []struct {
		in   string
		want string // hex
	}{
		{"", ""},
		{"Hello", "48656C6C6F"},
		{"€10", "1B653130"},
		{"a{b}", "611B28621B29"},
		{"@£$", "000102"},
		{"ΔΞ", "101A"},
		{"line\nnext\fpage", "6C696E650A6E6578741B0A70616765"},
	}
	for _, tc := range tests {
		got, err := Encode(Default, tc.in)
		if err != nil || hex.EncodeToString(got) != strings.ToLower(tc.want) {
			t.Errorf("Encode(%q) = % X, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func TestGSMEncodeErrors(t *testing.T) {
	tests := []struct {
		in       string
		wantErr  error
		contains string
	}{
		{"abc`", ErrUnencodable, "offset 3"},
		{"ok\tno", ErrUnencodable, "U+0009"},
		{"esc\x1b", ErrUnencodable, "offset 3"},
		{"çava", ErrUnencodable, "U+00E7"},
		{"hi 😀", ErrUnencodable, "offset 3"},
		{"bad\xff", ErrInvalidUTF8, "offset 3"},
	}
	for _, tc := range tests {
		_, err := Encode(Default, tc.in)
		if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("Encode(%q) error = %v; want %v containing %q", tc.in, err, tc.wantErr, tc.contains)
		}
	}
}

func TestGSMDecodeEscapes(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"euro", []byte{0x1B, 0x65}, "€"},
		{"unknown escape reads the default table", []byte{0x1B, 0x41, 0x42}, "AB"},
		{"escaped @", []byte{0x1B, 0x00}, "@"},
		{"CR2 reads as CR", []byte{0x1B, 0x0D}, "\r"},
		{"SS2 reads as space", []byte{0x61, 0x1B, 0x1B, 0x62}, "a b"},
		{"trailing ESC reads as space", []byte{0x61, 0x1B}, "a "},
		{"form feed", []byte{0x1B, 0x0A}, "\f"},
		{"empty", nil, ""},
	}
	for _, tc := range tests {
		got, err := Decode(Default, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: Decode(% X) = %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
}

func TestGSMDecodeMalformed(t *testing.T) {
	tests := []struct {
		in       []byte
		contains string
	}{
		{[]byte{0x41, 0x80}, "offset 1"},
		{[]byte{0xFF}, "offset 0"},
		{[]byte{0x41, 0x1B, 0xC1}, "offset 2"},
	}
	for _, tc := range tests {
		got, err := Decode(Default, tc.in)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.contains) || got != "" {
			t.Errorf("Decode(% X) = %q, %v; want ErrMalformed at %s", tc.in, got, err, tc.contains)
		}
	}
}

// packRef packs bit by bit, the way TS 23.038 section 6.1.2.1.1 draws it, as an independent check
// of Pack's shifting.
func packRef(septets []byte, fill int) []byte {
	if len(septets) == 0 {
		return []byte{}
	}
	bits := make([]bool, fill, fill+7*len(septets))
	for _, s := range septets {
		for k := range 7 {
			bits = append(bits, s>>k&1 == 1)
		}
	}
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		if b {
			out[i/8] |= 1 << (i % 8)
		}
	}
	return out
}

func TestPackVectors(t *testing.T) {
	tests := []struct {
		septets string
		fill    int
		want    string
	}{
		{"hellohello", 0, "E8329BFD4697D9EC37"},
		{"A", 0, "41"},
		{"A", 1, "82"},
		{"A", 6, "4010"},
		{"@", 0, "00"},
		{"1234567", 0, "31D98C56B3DD00"}, // 7 septets: 49 bits, the last octet holds one bit
		{"12345678", 0, "31D98C56B3DD70"},
		{"", 3, ""},
	}
	for _, tc := range tests {
		septets, err := Encode(Default, tc.septets)
		if err != nil {
			t.Fatal(err)
		}
		got := Pack(septets, tc.fill)
		if hex.EncodeToString(got) != strings.ToLower(tc.want) {
			t.Errorf("Pack(%q, %d) = % X; want %s", tc.septets, tc.fill, got, tc.want)
		}
		if want := packRef(septets, tc.fill); !bytes.Equal(got, want) {
			t.Errorf("Pack(%q, %d) = % X; bit-by-bit reference % X", tc.septets, tc.fill, got, want)
		}
		back, err := Unpack(got, len(septets), tc.fill)
		if err != nil || !bytes.Equal(back, septets) {
			t.Errorf("Unpack(% X, %d, %d) = % X, %v; want % X", got, len(septets), tc.fill, back, err, septets)
		}
	}
}

func TestPackMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		septets := make([]byte, rng.IntN(200))
		for i := range septets {
			septets[i] = byte(rng.IntN(128))
		}
		fill := rng.IntN(7)
		got := Pack(septets, fill)
		if want := packRef(septets, fill); !bytes.Equal(got, want) {
			t.Fatalf("Pack(% X, %d) = % X; want % X", septets, fill, got, want)
		}
		if len(got) != PackedLen(len(septets), fill) {
			t.Fatalf("len(Pack) = %d, PackedLen = %d", len(got), PackedLen(len(septets), fill))
		}
		back, err := Unpack(got, len(septets), fill)
		if err != nil || !bytes.Equal(back, septets) {
			t.Fatalf("Unpack(Pack(% X), %d) = % X, %v", septets, fill, back, err)
		}
	}
}

func TestPackIgnoresHighBit(t *testing.T) {
	if got, want := Pack([]byte{0xC1}, 0), []byte{0x41}; !bytes.Equal(got, want) {
		t.Errorf("Pack(C1) = % X; want % X", got, want)
	}
}

func TestPackPanicsOnBadFill(t *testing.T) {
	for _, fill := range []int{-1, 7} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Pack with fill bits %d did not panic", fill)
				}
			}()
			Pack([]byte{1}, fill)
		}()
	}
}

func TestUnpackErrors(t *testing.T) {
	tests := []struct {
		name    string
		packed  []byte
		septets int
		fill    int
	}{
		{"too short", []byte{0xE8, 0x32}, 3, 0},
		{"too short with fill", []byte{0xE8, 0x32}, 2, 3},
		{"negative count", []byte{0xE8}, -1, 0},
		{"fill 7", []byte{0xE8}, 1, 7},
		{"negative fill", []byte{0xE8}, 1, -1},
		{"huge count", []byte{0xE8}, 1 << 62, 0},
	}
	for _, tc := range tests {
		got, err := Unpack(tc.packed, tc.septets, tc.fill)
		if !errors.Is(err, ErrMalformed) || got != nil {
			t.Errorf("%s: Unpack = % X, %v; want ErrMalformed", tc.name, got, err)
		}
	}
	if got, err := Unpack(nil, 0, 5); err != nil || len(got) != 0 {
		t.Errorf("Unpack(nil, 0, 5) = % X, %v; want empty", got, err)
	}
	// Octets exactly enough for 8 septets: 56 bits in 7 octets.
	if got, err := Unpack([]byte{0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x70}, 8, 0); err != nil || string(got) != "12345678" {
		t.Errorf("Unpack 8 septets from 7 octets = %q, %v", got, err)
	}
}

func TestFillBits(t *testing.T) {
	tests := []struct{ udh, want int }{{0, 0}, {6, 1}, {7, 0}, {5, 2}, {12, 2}, {1, 6}, {-3, 0}}
	for _, tc := range tests {
		if got := FillBits(tc.udh); got != tc.want {
			t.Errorf("FillBits(%d) = %d; want %d", tc.udh, got, tc.want)
		}
		// The UDH plus its fill bits end on a septet boundary.
		if tc.udh > 0 && (tc.udh*8+tc.want)%7 != 0 {
			t.Errorf("UDH %d + %d fill bits is not a septet boundary", tc.udh, tc.want)
		}
	}
}
