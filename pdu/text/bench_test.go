package text

import (
	"strings"
	"testing"
)

// Messages of 160 characters, the size of a single SMS in GSM 7-bit. The GSM one has extension
// characters (so it is 166 septets) and the UCS-2 one surrogate pairs, so both paths are exercised.
var (
	benchGSM  = first160("The quick brown fox jumps over the lazy dog. Price: 5€ [ok] ")
	benchUCS2 = first160("Привет, мир! 😀 ")
)

func first160(s string) string { return string([]rune(strings.Repeat(s, 20))[:160]) }

func benchEncode(b *testing.B, c Coding, s string) {
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := Encode(c, s); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppendEncode(b *testing.B, c Coding, s string) {
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, err := AppendEncode(buf[:0], c, s); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecode(b *testing.B, c Coding, s string) {
	enc, err := Encode(c, s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := Decode(c, enc); err != nil {
			b.Fatal(err)
		}
	}
}

func benchAppendDecode(b *testing.B, c Coding, s string) {
	enc, err := Encode(c, s)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		if _, err := AppendDecode(buf[:0], c, enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeGSM(b *testing.B)        { benchEncode(b, Default, benchGSM) }
func BenchmarkAppendEncodeGSM(b *testing.B)  { benchAppendEncode(b, Default, benchGSM) }
func BenchmarkDecodeGSM(b *testing.B)        { benchDecode(b, Default, benchGSM) }
func BenchmarkAppendDecodeGSM(b *testing.B)  { benchAppendDecode(b, Default, benchGSM) }
func BenchmarkEncodeUCS2(b *testing.B)       { benchEncode(b, UCS2, benchUCS2) }
func BenchmarkAppendEncodeUCS2(b *testing.B) { benchAppendEncode(b, UCS2, benchUCS2) }
func BenchmarkDecodeUCS2(b *testing.B)       { benchDecode(b, UCS2, benchUCS2) }
func BenchmarkAppendDecodeUCS2(b *testing.B) { benchAppendDecode(b, UCS2, benchUCS2) }

func BenchmarkPick(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if Pick(benchGSM) != Default {
			b.Fatal("not Default")
		}
	}
}

func BenchmarkPickWithLatin1(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		PickWith(benchGSM, true)
	}
}

func BenchmarkParts(b *testing.B) {
	long := strings.Repeat(benchGSM, 4)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parts(Default, long, 6); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplit(b *testing.B) {
	enc, err := Encode(Default, strings.Repeat(benchGSM, 4))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Split(Default, enc, 6)
	}
}

func BenchmarkAppendPack(b *testing.B) {
	septets, err := Encode(Default, benchGSM)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(septets)))
	for b.Loop() {
		AppendPack(buf[:0], septets, 1)
	}
}

func BenchmarkAppendUnpack(b *testing.B) {
	septets, err := Encode(Default, benchGSM)
	if err != nil {
		b.Fatal(err)
	}
	packed := Pack(septets, 1)
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(packed)))
	for b.Loop() {
		if _, err := AppendUnpack(buf[:0], packed, len(septets), 1); err != nil {
			b.Fatal(err)
		}
	}
}
