package text

import (
	"testing"
	"unicode/utf8"
)

func TestDecodeLossy(t *testing.T) {
	tests := []struct {
		name string
		c    Coding
		in   []byte
		want string
	}{
		{"UCS2 BMP", UCS2, []byte{0x04, 0x1F, 0x00, 'a'}, "Пa"},
		{"UCS2 surrogate pair", UCS2, []byte{0xD8, 0x3D, 0xDE, 0x00}, "😀"},
		{"UCS2 lone high surrogate", UCS2, []byte{0xD8, 0x3D, 0x00, 'a'}, "\uFFFDa"},
		{"UCS2 lone low surrogate", UCS2, []byte{0xDE, 0x00}, "\uFFFD"},
		{"UCS2 high surrogate at the end", UCS2, []byte{0x00, 'a', 0xD8, 0x3D}, "a\uFFFD"},
		{"UCS2 odd length", UCS2, []byte{0x00, 'a', 0x00}, "a\uFFFD"},
		{"GSM octet above 0x7F", Default, []byte{'a', 0x80, 0x1B, 0x65}, "a\uFFFD€"},
		{"GSM ESC before a non-septet", Default, []byte{0x1B, 0xFF, 'b'}, "\uFFFD\uFFFDb"},
		{"IA5 octet above 0x7F", IA5, []byte{'i', 'd', 0xE9}, "id\uFFFD"},
		{"Latin-1", Latin1, []byte("caf\xe9"), "café"},
		{"binary invalid UTF-8", Binary, []byte{'o', 'k', 0xFF}, "ok\uFFFD"},
		{"no codec", Cyrillic, []byte{'x', 0xC0}, "x\uFFFD"},
		{"valid GSM agrees with Decode", Default, []byte("id:1 stat:DELIVRD"), "id:1 stat:DELIVRD"},
	}
	for _, tt := range tests {
		if got := DecodeLossy(tt.c, tt.in); got != tt.want {
			t.Errorf("%s: DecodeLossy(%s, % X) = %q, want %q", tt.name, tt.c, tt.in, got, tt.want)
		}
	}
}

func FuzzDecodeLossy(f *testing.F) {
	f.Add(uint8(UCS2), []byte{0xD8, 0x3D, 0x00})
	f.Add(uint8(Default), []byte{0x1B, 0x65, 0x80})
	f.Add(uint8(Latin1), []byte("caf\xe9"))
	f.Fuzz(func(t *testing.T, c uint8, b []byte) {
		got := DecodeLossy(Coding(c), b)
		if !utf8.ValidString(got) {
			t.Fatalf("DecodeLossy(%s, % X) = %q is not UTF-8", Coding(c), b, got)
		}
		// Where Decode succeeds with UTF-8, the lossy reading is the same text.
		if s, err := Decode(Coding(c), b); err == nil && utf8.ValidString(s) && s != got {
			t.Fatalf("DecodeLossy = %q, Decode = %q", got, s)
		}
	})
}
