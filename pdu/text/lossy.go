package text

import (
	"strings"
	"unicode/utf8"
)

// DecodeLossy is Decode for text that must be shown even when it is broken, as a delivery receipt's
// or an MO's is: every octet or code unit that breaks the coding's rules becomes U+FFFD instead of
// failing the whole, and the result is always valid UTF-8. Binary codings and codings without a codec
// are read as UTF-8 with the same replacement.
func DecodeLossy(c Coding, b []byte) string {
	var stack [512]byte
	dst := stack[:0]
	switch c.codec() {
	case codecGSM:
		for i := 0; i < len(b); {
			if b[i] >= 0x80 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
				i++
				continue
			}
			r, size, ok := gsmRune(b, i)
			if !ok { // ESC before an octet that is no septet: the ESC is lost, the octet replaced next
				dst = utf8.AppendRune(dst, utf8.RuneError)
				i++
				continue
			}
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	case codecIA5:
		for _, o := range b {
			if o >= 0x80 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, o)
			}
		}
	case codecLatin1:
		dst, _ = AppendDecode(dst, c, b)
	case codecUCS2:
		for i := 0; i < len(b); i += 2 {
			if i+1 == len(b) { // odd length: the last octet is half a code unit
				dst = utf8.AppendRune(dst, utf8.RuneError)
				break
			}
			u := rune(b[i])<<8 | rune(b[i+1])
			switch {
			case u < 0xD800 || u > 0xDFFF:
				dst = utf8.AppendRune(dst, u)
			case u < 0xDC00 && i+3 < len(b) && b[i+2]&0xFC == 0xDC:
				lo := rune(b[i+2])<<8 | rune(b[i+3])
				dst = utf8.AppendRune(dst, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
				i += 2
			default:
				dst = utf8.AppendRune(dst, utf8.RuneError)
			}
		}
	default:
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(dst)
}
