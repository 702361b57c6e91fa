package text

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestUnits(t *testing.T) {
	tests := []struct {
		c    Coding
		in   string
		want int
	}{
		{Default, "", 0},
		{Default, "hello", 5},
		{Default, "€", 2},
		{Default, "[x]", 5},
		{Default, "ΔΩ", 2},
		{IA5, "a{b}", 6}, // braces cost two septets on the air
		{IA5, "a`b", 3},
		{Latin1, "café", 4},
		{Binary, "café", 5}, // octets of the string
		{UCS2, "hello", 5},
		{UCS2, "€", 1},
		{UCS2, "😀", 2},
		{UCS2, "a😀b", 4},
		{0xF0, "€", 2},
		{0x08, "漢字", 2},
	}
	for _, tc := range tests {
		got, err := Units(tc.c, tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Units(%v, %q) = %d, %v; want %d", tc.c, tc.in, got, err, tc.want)
		}
	}
	if _, err := Units(Default, "a😀"); !errors.Is(err, ErrUnencodable) {
		t.Errorf("Units(Default, emoji) error = %v; want ErrUnencodable", err)
	}
	if _, err := Units(UCS2, "\xff"); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("Units(UCS2, invalid) error = %v; want ErrInvalidUTF8", err)
	}
	if _, err := Units(IA5, "é"); !errors.Is(err, ErrUnencodable) {
		t.Errorf("Units(IA5, é) error = %v; want ErrUnencodable", err)
	}
}

func TestParts(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	u := func(n int) string { return strings.Repeat("ж", n) }
	tests := []struct {
		name   string
		c      Coding
		in     string
		udhLen int
		want   int
	}{
		{"empty", Default, "", 6, 1},
		{"GSM 160", Default, a(160), 6, 1},
		{"GSM 161", Default, a(161), 6, 2},
		{"GSM 153*2", Default, a(306), 6, 2},
		{"GSM 153*2+1", Default, a(307), 6, 3},
		{"GSM 16-bit ref 152*2", Default, a(304), 7, 2},
		{"GSM 16-bit ref 152*2+1", Default, a(305), 7, 3},
		{"GSM SAR 161", Default, a(161), 0, 2},
		{"GSM SAR 320", Default, a(320), 0, 2},
		{"GSM SAR 321", Default, a(321), 0, 3},
		{"GSM 159 + escape = 161 septets", Default, a(159) + "€", 6, 2},
		{"GSM 158 + escape = 160 septets", Default, a(158) + "€", 6, 1},
		{"GSM escape ends part one exactly", Default, a(151) + "€" + a(153), 6, 2},
		// 152 septets then an escape pair: the pair moves whole to part two, which then overflows.
		{"GSM escape at the boundary", Default, a(152) + "€" + a(152), 6, 3},
		{"GSM escapes only", Default, strings.Repeat("{", 80), 6, 1},
		{"GSM escapes only, 81", Default, strings.Repeat("{", 81), 6, 2},
		{"UCS2 70", UCS2, u(70), 6, 1},
		{"UCS2 71", UCS2, u(71), 6, 2},
		{"UCS2 67*2", UCS2, u(134), 6, 2},
		{"UCS2 67*2+1", UCS2, u(135), 6, 3},
		{"UCS2 16-bit ref 66*2+1", UCS2, u(133), 7, 3},
		{"UCS2 69 + surrogate pair = 71 units", UCS2, u(69) + "😀", 6, 2},
		{"UCS2 68 + surrogate pair = 70 units", UCS2, u(68) + "😀", 6, 1},
		// 66 units then a pair: it moves whole to part two.
		{"UCS2 surrogate pair at the boundary", UCS2, u(66) + "😀" + u(66), 6, 3},
		{"UCS2 surrogate pair ends part one exactly", UCS2, u(65) + "😀" + u(67), 6, 2},
		{"Latin1 140", Latin1, strings.Repeat("é", 140), 6, 1},
		{"Latin1 141", Latin1, strings.Repeat("é", 141), 6, 2},
		{"Latin1 134*2+1", Latin1, strings.Repeat("é", 269), 6, 3},
		{"Binary 140", Binary, a(140), 6, 1},
		{"Binary 141", Binary8, a(141), 6, 2},
		{"Binary 134*2", Binary, a(268), 6, 2},
		{"Binary 134*2+1", Binary, a(269), 6, 3},
		{"IA5 160", IA5, a(160), 6, 1},
		{"IA5 with braces, 160 septets", IA5, a(158) + "{", 6, 1},
		{"IA5 with braces, 161 septets", IA5, a(159) + "{", 6, 2},
	}
	for _, tc := range tests {
		got, err := Parts(tc.c, tc.in, tc.udhLen)
		if err != nil || got != tc.want {
			t.Errorf("%s: Parts = %d, %v; want %d", tc.name, got, err, tc.want)
		}
		enc, err := Encode(tc.c, tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if segs := Split(tc.c, enc, tc.udhLen); len(segs) != tc.want {
			t.Errorf("%s: len(Split) = %d; want %d", tc.name, len(segs), tc.want)
		}
	}
	if _, err := Parts(Default, "x", 139); !errors.Is(err, ErrUDHLen) {
		t.Errorf("Parts with UDH 139: %v; want ErrUDHLen", err)
	}
	if _, err := Parts(Default, "x😀", 6); !errors.Is(err, ErrUnencodable) {
		t.Errorf("Parts(Default, emoji): %v; want ErrUnencodable", err)
	}
}

func TestSplitSegments(t *testing.T) {
	a := func(n int) string { return strings.Repeat("a", n) }
	enc, _ := Encode(Default, a(152)+"€"+a(152))
	segs := Split(Default, enc, 6)
	if len(segs) != 3 || len(segs[0]) != 152 || !bytes.Equal(segs[1][:2], []byte{0x1B, 0x65}) || len(segs[1]) != 153 || len(segs[2]) != 1 {
		t.Errorf("GSM escape at boundary: segment lengths %d", segLens(segs))
	}
	enc, _ = Encode(UCS2, strings.Repeat("ж", 66)+"😀"+strings.Repeat("ж", 5))
	segs = Split(UCS2, enc, 6)
	if len(segs) != 2 || len(segs[0]) != 132 || !bytes.Equal(segs[1][:4], []byte{0xD8, 0x3D, 0xDE, 0x00}) || len(segs[1]) != 14 {
		t.Errorf("UCS2 pair at boundary: segment lengths %d", segLens(segs))
	}
	short := []byte("short")
	if segs := Split(Default, short, 6); len(segs) != 1 || !bytes.Equal(segs[0], short) {
		t.Errorf("Split of a single SMS = %q", segs)
	}
	if segs := Split(Default, nil, 6); len(segs) != 1 || len(segs[0]) != 0 {
		t.Errorf("Split of nothing = %q; want one empty segment", segs)
	}
	if segs := Split(Default, short, 139); segs != nil {
		t.Errorf("Split with UDH 139 = %q; want nil", segs)
	}
	// Segments alias the input and cannot grow into the next one.
	enc, _ = Encode(Default, a(200))
	segs = Split(Default, enc, 6)
	if &segs[0][0] != &enc[0] || cap(segs[0]) != len(segs[0]) {
		t.Errorf("segments do not alias the input with a clipped capacity")
	}
	// A coding without a codec is cut between its Alphabet's units.
	jis := bytes.Repeat([]byte{0x30, 0x42}, 71)
	segs = Split(JIS, jis, 6)
	if len(segs) != 2 || len(segs[0]) != 134 || len(segs[1]) != 8 {
		t.Errorf("JIS split lengths %d", segLens(segs))
	}
}

func segLens(segs [][]byte) []int {
	n := make([]int, len(segs))
	for i, s := range segs {
		n[i] = len(s)
	}
	return n
}

// randomText mixes characters of every cost: GSM basic and extension, Greek, Latin-1 only, BMP
// and non-BMP.
func randomText(rng *rand.Rand, n int) string {
	pool := []string{"a", "b", " ", "0", "@", "{", "€", "\f", "Δ", "é", "Ç", "â", "ÿ", "©", "ж", "漢", "😀", "𝄞", "`"}
	var b strings.Builder
	for range n {
		b.WriteString(pool[rng.IntN(len(pool))])
	}
	return b.String()
}

// checkSplit verifies the segments of enc: they rebuild it, each fits the capacity, and none starts
// inside a pair.
func checkSplit(t *testing.T, c Coding, enc []byte, udhLen int) [][]byte {
	t.Helper()
	segs := Split(c, enc, udhLen)
	if !bytes.Equal(bytes.Join(segs, nil), enc) {
		t.Fatalf("Split(%v, % X, %d) does not rebuild the input", c, enc, udhLen)
	}
	perPart, _ := Capacity(c, udhLen)
	if len(segs) == 1 {
		perPart = capacity(c.Alphabet(), 0)
	}
	for i, seg := range segs {
		units := 0
		for j := 0; j < len(seg); {
			n, size := segmentAt(c.codec(), c.Alphabet(), seg, j)
			units += n
			j += size
		}
		if units > perPart {
			t.Fatalf("Split(%v, udh %d) segment %d holds %d units > %d", c, udhLen, i, units, perPart)
		}
		if i == len(segs)-1 || len(seg) == 0 {
			continue
		}
		switch c.codec() {
		case codecGSM:
			if esc := bytes.Count(seg, []byte{0x1B}); esc > 0 && seg[len(seg)-1] == 0x1B && !endsWithPair(seg) {
				t.Fatalf("segment %d ends inside an escape pair: % X", i, seg)
			}
		case codecUCS2:
			// A high surrogate may end a segment only when no low one follows it (malformed input).
			next := segs[i+1]
			if len(seg)%2 != 0 || (seg[len(seg)-2] >= 0xD8 && seg[len(seg)-2] <= 0xDB && len(next) >= 2 && next[0] >= 0xDC && next[0] <= 0xDF) {
				t.Fatalf("segment %d ends inside a code unit or surrogate pair: % X | % X", i, seg, next)
			}
		}
	}
	return segs
}

// endsWithPair reports whether a GSM segment's final ESC is the second octet of an escape pair.
func endsWithPair(seg []byte) bool {
	for i := 0; i < len(seg); i++ {
		if seg[i] == 0x1B && i+1 < len(seg) {
			if i+1 == len(seg)-1 {
				return true
			}
			i++
		}
	}
	return false
}

// TestPartsMatchesSplit is the consistency check: on many strings of every length around the
// boundaries, len(Split(Encode(s))) == Parts(s) for every coding and UDH length.
func TestPartsMatchesSplit(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	codings := []Coding{Default, IA5, Latin1, UCS2, Binary, 0xF1, 0x18}
	checked := 0
	for range 3000 {
		s := randomText(rng, rng.IntN(400))
		for _, c := range codings {
			for _, udhLen := range []int{0, 6, 7, 12} {
				parts, err := Parts(c, s, udhLen)
				enc, encErr := Encode(c, s)
				if (err == nil) != (encErr == nil) {
					t.Fatalf("Parts(%v) error %v but Encode error %v for %q", c, err, encErr, s)
				}
				if err != nil {
					continue
				}
				segs := checkSplit(t, c, enc, udhLen)
				if len(segs) != parts {
					t.Fatalf("Parts(%v, %q, %d) = %d but Split made %d", c, s, udhLen, parts, len(segs))
				}
				checked++
			}
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d encodable cases checked", checked)
	}
}

func TestPick(t *testing.T) {
	tests := []struct {
		in   string
		want Coding
	}{
		{"", Default},
		{"Hello, world!", Default},
		{"Price: 5€ {promo}", Default},
		{"ΔΦΓΛΩΠΨΣΘΞ", Default},
		{"Ça va? Ñandü ß", Default},
		{"ça va", UCS2}, // small c cedilla is not in TS 23.038
		{"naïve", UCS2},
		{"tab\there", UCS2},
		{"smile 😀", UCS2},
		{"Привет", UCS2},
		{"bad \xff", UCS2},
	}
	for _, tc := range tests {
		if got := Pick(tc.in); got != tc.want {
			t.Errorf("Pick(%q) = %v; want %v", tc.in, got, tc.want)
		}
	}
}

func TestPickWith(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		latin bool
		want  Coding
	}{
		{"GSM text stays Default", "hello", true, Default},
		{"Latin1 not allowed", strings.Repeat("â", 100), false, UCS2},
		{"Latin1 saves a part over UCS2", strings.Repeat("â", 100), true, Latin1},
		{"tie with UCS2 goes to UCS2", "â", true, UCS2},
		{"tie at one part goes to UCS2", strings.Repeat("â", 70), true, UCS2},
		{"Latin1 one part, UCS2 two", strings.Repeat("â", 71), true, Latin1},
		{"escapes make GSM two parts", strings.Repeat("{", 100), true, Latin1},
		{"escapes tie at one part", strings.Repeat("{", 80), true, Default},
		{"no Latin-1 for emoji", "😀", true, UCS2},
		{"no Latin-1 for euro", strings.Repeat("€", 100), true, Default},
	}
	for _, tc := range tests {
		if got := PickWith(tc.in, tc.latin); got != tc.want {
			t.Errorf("%s: PickWith = %v; want %v", tc.name, got, tc.want)
		}
	}
}
