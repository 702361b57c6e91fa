package text

import (
	"bytes"
	"errors"
	"testing"
	"unicode/utf8"
)

func FuzzDecodeGSM(f *testing.F) {
	for _, seed := range [][]byte{
		nil, []byte("hello"), {0x1B, 0x65}, {0x1B}, {0x1B, 0x1B}, {0x1B, 0x41}, {0x1B, 0x0D},
		{0x80}, {0x41, 0x1B, 0xC1}, {0x00, 0x10, 0x1A, 0x7F}, {0x1B, 0x1B, 0x1B},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(Default, b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !hasHighOctet(b) {
				t.Fatalf("Decode(% X) error %v with no octet above 0x7F", b, err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(% X) = %q, not UTF-8", b, s)
		}
		// Whatever decodes is GSM text, and re-encoding it is stable.
		enc, err := Encode(Default, s)
		if err != nil {
			t.Fatalf("Encode(Decode(% X) = %q): %v", b, s, err)
		}
		if len(enc) > len(b) {
			t.Fatalf("re-encoding % X grew it to % X", b, enc)
		}
		if again, err := Decode(Default, enc); err != nil || again != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, again, err)
		}
		if n, err := Units(Default, s); err != nil || n != len(enc) {
			t.Fatalf("Units(%q) = %d, %v; encoded is %d septets", s, n, err, len(enc))
		}
	})
}

func hasHighOctet(b []byte) bool {
	for _, o := range b {
		if o >= 0x80 {
			return true
		}
	}
	return false
}

func FuzzUnpack(f *testing.F) {
	f.Add([]byte{0xE8, 0x32, 0x9B, 0xFD, 0x46, 0x97, 0xD9, 0xEC, 0x37}, 10, 0)
	f.Add([]byte{0x82}, 1, 1)
	f.Add([]byte{0x40, 0x10}, 1, 6)
	f.Add([]byte{0x31, 0xD9, 0x8C, 0x56, 0xB3, 0xDD, 0x70}, 8, 0)
	f.Add([]byte{}, 0, 3)
	f.Add([]byte{0xFF}, 2, 0)
	f.Add([]byte{0xFF, 0xFF}, -1, 7)
	f.Fuzz(func(t *testing.T, packed []byte, septets int, fill int) {
		u, err := Unpack(packed, septets, fill)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unpack error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(u) != septets {
			t.Fatalf("Unpack returned %d septets, asked %d", len(u), septets)
		}
		for i, s := range u {
			if s >= 0x80 {
				t.Fatalf("septet %d = %02X", i, s)
			}
		}
		// Packing again reproduces every bit the septets were read from.
		p := Pack(u, fill)
		if len(p) != PackedLen(septets, fill) {
			t.Fatalf("Pack made %d octets, PackedLen %d", len(p), PackedLen(septets, fill))
		}
		for bit := fill; bit < fill+7*septets; bit++ {
			if (p[bit/8]>>(bit%8))&1 != (packed[bit/8]>>(bit%8))&1 {
				t.Fatalf("bit %d differs after Pack(Unpack(% X, %d, %d))", bit, packed, septets, fill)
			}
		}
	})
}

func FuzzDecodeUCS2(f *testing.F) {
	for _, seed := range [][]byte{
		nil, {0x00, 0x41}, {0xD8, 0x3D, 0xDE, 0x00}, {0xD8, 0x3D}, {0xDE, 0x00}, {0x00},
		{0xD8, 0x3D, 0x00, 0x41}, {0xFF, 0xFD}, {0xDB, 0xFF, 0xDF, 0xFF},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(UCS2, b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode(% X) error %v does not wrap ErrMalformed", b, err)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(% X) = %q, not UTF-8", b, s)
		}
		// Valid UTF-16BE and UTF-8 are in one-to-one correspondence.
		enc, err := Encode(UCS2, s)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("Encode(Decode(% X)) = % X, %v", b, enc, err)
		}
		if n, err := Units(UCS2, s); err != nil || n != len(b)/2 {
			t.Fatalf("Units(%q) = %d, %v; want %d", s, n, err, len(b)/2)
		}
	})
}

func FuzzRoundTrip(f *testing.F) {
	for _, seed := range []string{
		"", "hello", "€ {[~]} \f\r\n", "ΔΦΓΛΩΠΨΣΘΞ", "ça", "😀 👍🏽", "Привет", "\x00\x1b", "bad \xff",
		"\uFFFD", "â ÿ ©", "\U0010FFFF",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Pick(s)
		if !utf8.ValidString(s) {
			if _, err := Encode(c, s); !errors.Is(err, ErrInvalidUTF8) {
				t.Fatalf("Encode(%v, %q) error %v; want ErrInvalidUTF8", c, s, err)
			}
			return
		}
		for _, c := range []Coding{c, PickWith(s, true)} {
			enc, err := Encode(c, s)
			if err != nil {
				t.Fatalf("Encode(%v, %q) of a picked coding: %v", c, s, err)
			}
			if app, err := AppendEncode([]byte{0xAA}, c, s); err != nil || !bytes.Equal(app[1:], enc) {
				t.Fatalf("AppendEncode(%v, %q) = % X, %v; Encode gave % X", c, s, app, err, enc)
			}
			dec, err := Decode(c, enc)
			if err != nil || dec != s {
				t.Fatalf("Decode(%v, Encode(%q) = % X) = %q, %v", c, s, enc, dec, err)
			}
			units, err := Units(c, s)
			if err != nil {
				t.Fatalf("Units(%v, %q): %v", c, s, err)
			}
			if want := map[Coding]int{Default: len(enc), UCS2: len(enc) / 2, Latin1: len(enc)}[c]; units != want {
				t.Fatalf("Units(%v, %q) = %d; encoded %d octets", c, s, units, len(enc))
			}
		}
	})
}

func FuzzSplit(f *testing.F) {
	f.Add(byte(Default), []byte("hello"), uint8(6))
	f.Add(byte(Default), bytes.Repeat([]byte{0x61, 0x1B, 0x65}, 80), uint8(6))
	f.Add(byte(UCS2), bytes.Repeat([]byte{0xD8, 0x3D, 0xDE, 0x00, 0x00, 0x41}, 30), uint8(7))
	f.Add(byte(UCS2), bytes.Repeat([]byte{0x04, 0x36}, 71), uint8(0))
	f.Add(byte(Latin1), bytes.Repeat([]byte{0xE9}, 300), uint8(6))
	f.Add(byte(IA5), bytes.Repeat([]byte("{a"), 60), uint8(6))
	f.Add(byte(JIS), bytes.Repeat([]byte{0x30, 0x42}, 80), uint8(6))
	f.Add(byte(0xF4), bytes.Repeat([]byte{0xFF}, 141), uint8(139))
	f.Fuzz(func(t *testing.T, coding byte, b []byte, udh uint8) {
		c, udhLen := Coding(coding), int(udh)
		segs := Split(c, b, udhLen)
		if _, err := Capacity(c, udhLen); err != nil {
			if segs != nil {
				t.Fatalf("Split with unusable UDH %d returned %d segments", udhLen, len(segs))
			}
			return
		}
		checkSplit(t, c, b, udhLen)
		// Read as text, the same bytes must split into as many parts as Parts counts.
		s := string(b)
		parts, err := Parts(c, s, udhLen)
		if err != nil {
			return
		}
		enc, err := Encode(c, s)
		if err != nil {
			t.Fatalf("Parts(%v, %q) succeeded but Encode failed: %v", c, s, err)
		}
		if got := len(Split(c, enc, udhLen)); got != parts {
			t.Fatalf("Parts(%v, %q, %d) = %d; Split made %d", c, s, udhLen, parts, got)
		}
	})
}
