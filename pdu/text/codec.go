package text

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Errors callers branch on. Each is wrapped with the coding, and the offending rune or octet and its
// offset where there is one.
var (
	// ErrUnencodable: a rune of the text has no code in the coding.
	ErrUnencodable = errors.New("text: character not encodable")
	// ErrInvalidUTF8: the text to encode is not valid UTF-8, so it has no characters to encode.
	ErrInvalidUTF8 = errors.New("text: invalid UTF-8")
	// ErrMalformed: encoded bytes break the coding's rules (a septet above 0x7F, odd-length UCS-2,
	// a lone surrogate, packed data too short for its septet count).
	ErrMalformed = errors.New("text: malformed encoded text")
	// ErrNoCodec: smppgw has no codec for the coding (JIS, Cyrillic, Hebrew, compressed text, ...).
	ErrNoCodec = errors.New("text: no codec for data_coding")
)

func unencodable(c Coding, r rune, offset int) error {
	return fmt.Errorf("%w: %q (U+%04X) at byte offset %d in %s", ErrUnencodable, r, r, offset, c)
}

func invalidUTF8(offset int) error {
	return fmt.Errorf("%w at byte offset %d", ErrInvalidUTF8, offset)
}

func noCodec(c Coding) error {
	return fmt.Errorf("%w 0x%02X (%s)", ErrNoCodec, uint8(c), c)
}

// Encode encodes s for coding c:
//
//	Default and GSM 7-bit schemes  GSM 03.38 unpacked septets, extension characters as ESC and
//	                               their code ('€' is 1B 65)
//	IA5                            7-bit ASCII, one octet per character
//	Latin1                         ISO-8859-1
//	UCS2 and UCS-2 schemes         UTF-16BE, characters outside the BMP as surrogate pairs
//	Binary, Binary8, 8-bit schemes the bytes of s unchanged
//
// A rune the coding lacks is an error wrapping ErrUnencodable that names it and its byte offset;
// invalid UTF-8 is ErrInvalidUTF8 (except for the binary codings); a coding without a codec is
// ErrNoCodec.
func Encode(c Coding, s string) ([]byte, error) {
	// Encode into a buffer on the stack and copy out, so the result is the only allocation and is
	// sized exactly, without a second pass over s to measure it.
	// A long message_payload gets one buffer of the worst case instead: no coding takes more than two
	// octets for each octet of UTF-8.
	var stack [1024]byte
	if 2*len(s) > len(stack) {
		out, err := AppendEncode(make([]byte, 0, 2*len(s)), c, s)
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	out, err := AppendEncode(stack[:0], c, s)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(out), nil
}

// AppendEncode is Encode appending to dst; it allocates nothing when dst has room. On error it
// returns dst with its original length.
func AppendEncode(dst []byte, c Coding, s string) ([]byte, error) {
	var err error
	n := len(dst)
	switch c.codec() {
	case codecGSM:
		dst, err = appendGSM(dst, c, s)
	case codecIA5:
		dst, err = appendIA5(dst, c, s)
	case codecLatin1:
		dst, err = appendLatin1(dst, c, s)
	case codecUCS2:
		dst, err = appendUCS2(dst, s)
	case codecBinary:
		dst = append(dst, s...)
	default:
		err = noCodec(c)
	}
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

func appendIA5(dst []byte, c Coding, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, invalidUTF8(i)
			}
			return dst, unencodable(c, r, i)
		}
	}
	return append(dst, s...), nil
}

func appendLatin1(dst []byte, c Coding, s string) ([]byte, error) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validRuneError(s, i):
			return dst, invalidUTF8(i)
		case r > 0xFF:
			return dst, unencodable(c, r, i)
		}
		dst = append(dst, byte(r))
	}
	return dst, nil
}

func appendUCS2(dst []byte, s string) ([]byte, error) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !validRuneError(s, i):
			return dst, invalidUTF8(i)
		case r < 0x10000:
			dst = append(dst, byte(r>>8), byte(r))
		default:
			r -= 0x10000
			hi, lo := 0xD800+(r>>10), 0xDC00+(r&0x3FF)
			dst = append(dst, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
		}
	}
	return dst, nil
}

// validRuneError reports whether the U+FFFD that ranging over s yielded at i is really there, rather
// than standing for an invalid byte.
func validRuneError(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 3
}

// Decode decodes b, the short_message (or message_payload) of coding c, into UTF-8. It accepts any
// bytes and never panics: input that breaks the coding's rules is an error wrapping ErrMalformed that
// names the offset.
//
// GSM 7-bit text is read unpacked, one septet per octet; use Unpack first for packed text. An ESC
// before a code the extension table lacks reads as the character after it in the default table, ESC
// ESC and a trailing ESC as a space, as TS 23.038 directs. UCS-2 is read as UTF-16BE: a surrogate
// pair is one character; an odd length or a lone surrogate is malformed. IA5 octets above 0x7F are
// malformed. Binary codings return the bytes unchanged, which need not be UTF-8.
func Decode(c Coding, b []byte) (string, error) {
	// A short message decodes within this buffer, so the string is the only allocation; a long
	// message_payload grows past it.
	var stack [512]byte
	out, err := AppendDecode(stack[:0], c, b)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// AppendDecode is Decode appending the UTF-8 text to dst; it allocates nothing when dst has room. On
// error it returns dst with its original length.
func AppendDecode(dst []byte, c Coding, b []byte) ([]byte, error) {
	n := len(dst)
	var err error
	switch c.codec() {
	case codecGSM:
		dst, err = appendDecodeGSM(dst, c, b)
	case codecIA5:
		for i, o := range b {
			if o >= 0x80 {
				return dst[:n], fmt.Errorf("%w: octet 0x%02X at offset %d in %s", ErrMalformed, o, i, c)
			}
		}
		dst = append(dst, b...)
	case codecLatin1:
		for _, o := range b {
			dst = utf8.AppendRune(dst, rune(o))
		}
	case codecUCS2:
		dst, err = appendDecodeUCS2(dst, c, b)
	case codecBinary:
		dst = append(dst, b...)
	default:
		err = noCodec(c)
	}
	if err != nil {
		return dst[:n], err
	}
	return dst, nil
}

func appendDecodeGSM(dst []byte, c Coding, b []byte) ([]byte, error) {
	for i := 0; i < len(b); {
		if b[i] >= 0x80 {
			return dst, fmt.Errorf("%w: octet 0x%02X at offset %d is not a septet in %s", ErrMalformed, b[i], i, c)
		}
		r, size, ok := gsmRune(b, i)
		if !ok {
			return dst, fmt.Errorf("%w: octet 0x%02X at offset %d is not a septet in %s", ErrMalformed, b[i+1], i+1, c)
		}
		if r < utf8.RuneSelf {
			dst = append(dst, byte(r))
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		i += size
	}
	return dst, nil
}

func appendDecodeUCS2(dst []byte, c Coding, b []byte) ([]byte, error) {
	if len(b)%2 != 0 {
		return dst, fmt.Errorf("%w: odd length %d, trailing octet at offset %d in %s", ErrMalformed, len(b), len(b)-1, c)
	}
	for i := 0; i < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		switch {
		case u < 0xD800 || u > 0xDFFF:
			dst = utf8.AppendRune(dst, u)
		case u < 0xDC00 && i+3 < len(b):
			lo := rune(b[i+2])<<8 | rune(b[i+3])
			if lo < 0xDC00 || lo > 0xDFFF {
				return dst, fmt.Errorf("%w: high surrogate 0x%04X at offset %d not followed by a low one in %s", ErrMalformed, u, i, c)
			}
			dst = utf8.AppendRune(dst, 0x10000+(u-0xD800)<<10+(lo-0xDC00))
			i += 2
		default:
			return dst, fmt.Errorf("%w: lone surrogate 0x%04X at offset %d in %s", ErrMalformed, u, i, c)
		}
	}
	return dst, nil
}
