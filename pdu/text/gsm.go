package text

import (
	"fmt"
	"unicode/utf8"
)

// esc is the GSM 03.38 escape to the extension table.
const esc = 0x1B

// gsmDefault is the GSM 03.38 default alphabet (3GPP TS 23.038 section 6.2.1), indexed by septet.
// 0x09 is LATIN CAPITAL LETTER C WITH CEDILLA as the ETSI table draws it, not the small letter the
// unicode.org GSM0338.TXT mapping chose; smppgw follows the standard, as Android and cloudhopper do.
// 0x1B is the escape, never a character of its own.
var gsmDefault = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', esc, 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExtension is the GSM 03.38 extension table (TS 23.038 section 6.2.1.1), reached by ESC and
// indexed by the septet after it; 0 marks a code with no character of its own. 0x0D (CR2) and 0x1B
// (SS2) are reserved there and handled by gsmRune.
var gsmExtension = [128]rune{
	0x0A: '\f',
	0x14: '^',
	0x28: '{',
	0x29: '}',
	0x2F: '\\',
	0x3C: '[',
	0x3D: '~',
	0x3E: ']',
	0x40: '|',
	0x65: '€',
}

// Encoding lookups. gsmLow covers runes below 0x100, where all but the Greek capitals and the euro
// sign live, so the common case is one array index.
const (
	gsmNone     = 0xFFFF // not in the alphabet
	gsmExtended = 0x0100 // flag: ESC then the low seven bits
)

var gsmLow = buildGSMLow()

func buildGSMLow() (t [256]uint16) {
	for i := range t {
		t[i] = gsmNone
	}
	for septet, r := range gsmDefault {
		if septet != esc && r < 0x100 {
			t[r] = uint16(septet)
		}
	}
	for septet, r := range gsmExtension {
		if r != 0 && r < 0x100 {
			t[r] = gsmExtended | uint16(septet)
		}
	}
	return t
}

// gsmLookup returns the code of r (gsmExtended set for an extension character) or gsmNone.
func gsmLookup(r rune) uint16 {
	if r >= 0 && r < 0x100 {
		return gsmLow[r]
	}
	switch r {
	case 'Δ':
		return 0x10
	case 'Φ':
		return 0x12
	case 'Γ':
		return 0x13
	case 'Λ':
		return 0x14
	case 'Ω':
		return 0x15
	case 'Π':
		return 0x16
	case 'Ψ':
		return 0x17
	case 'Σ':
		return 0x18
	case 'Θ':
		return 0x19
	case 'Ξ':
		return 0x1A
	case '€':
		return gsmExtended | 0x65
	}
	return gsmNone
}

// InGSM reports whether r is in the GSM 03.38 default alphabet or its extension table.
func InGSM(r rune) bool { return gsmLookup(r) != gsmNone }

// appendGSM encodes s as unpacked septets.
func appendGSM(dst []byte, c Coding, s string) ([]byte, error) {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			code := gsmLow[b]
			switch {
			case code == gsmNone:
				return dst, unencodable(c, rune(b), i)
			case code&gsmExtended != 0:
				dst = append(dst, esc, byte(code))
			default:
				dst = append(dst, byte(code))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return dst, invalidUTF8(i)
		}
		code := gsmLookup(r)
		switch {
		case code == gsmNone:
			return dst, unencodable(c, r, i)
		case code&gsmExtended != 0:
			dst = append(dst, esc, byte(code))
		default:
			dst = append(dst, byte(code))
		}
		i += size
	}
	return dst, nil
}

// gsmRune returns the character septets b[i:] start with and how many septets it took. b[i] must be
// below 0x80 (decodeGSM checks); the septet after an ESC is checked here.
//
// An ESC followed by a code the extension table leaves empty reads as the character after it from
// the default table, as TS 23.038 tells a receiver to do. ESC ESC (SS2, reserved for a further
// extension table) and a lone ESC at the end read as a space, as TS 23.038 says a receiver shall
// display SS2.
func gsmRune(b []byte, i int) (r rune, n int, ok bool) {
	if b[i] != esc {
		return gsmDefault[b[i]], 1, true
	}
	if i+1 == len(b) {
		return ' ', 1, true
	}
	next := b[i+1]
	switch {
	case next >= 0x80:
		return 0, 0, false
	case next == esc:
		return ' ', 2, true
	case gsmExtension[next] != 0:
		return gsmExtension[next], 2, true
	default:
		return gsmDefault[next], 2, true
	}
}

// FillBits returns the padding bits that align GSM 7-bit text to a septet boundary after a UDH of
// udhLen octets (its UDHL octet included): the fillBits argument of Pack and Unpack.
func FillBits(udhLen int) int {
	if udhLen <= 0 {
		return 0
	}
	return (7 - udhLen*8%7) % 7
}

// PackedLen returns the octets Pack produces for septets septets after fillBits padding bits.
func PackedLen(septets, fillBits int) int {
	if septets <= 0 {
		return 0 // no text, so no octet to pad
	}
	return (septets*7 + fillBits + 7) / 8
}

// Pack packs unpacked septets into the GSM 03.38 packed form (TS 23.038 section 6.1.2.1.1): septets
// are laid end to end, least significant bit first, starting fillBits bits (0-6) into the first octet
// so the text can follow a UDH on a septet boundary. The padding bits and any bits after the last
// septet are zero; the high bit of each septet is ignored.
//
// Pack panics if fillBits is outside 0-6: the value comes from the caller's own UDH (see FillBits),
// never from the network, so it is a programming error, as a bad base is to strconv.AppendInt.
func Pack(septets []byte, fillBits int) []byte {
	return AppendPack(make([]byte, 0, PackedLen(len(septets), fillBits)), septets, fillBits)
}

// AppendPack is Pack appending to dst; it allocates nothing when dst has room.
func AppendPack(dst []byte, septets []byte, fillBits int) []byte {
	if fillBits < 0 || fillBits > 6 {
		panic(fmt.Sprintf("text: fill bits %d outside 0-6", fillBits))
	}
	if len(septets) == 0 {
		return dst
	}
	var acc uint32 // bits not yet written, least significant first
	nbits := uint(fillBits)
	for _, s := range septets {
		acc |= uint32(s&0x7F) << nbits
		nbits += 7
		if nbits >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			nbits -= 8
		}
	}
	if nbits > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// Unpack reads septets septets from the GSM 03.38 packed form, skipping fillBits (0-6) leading bits;
// it returns one septet per octet. The count comes from outside the data (TP-UDL, or the sender's
// word) because packed octets alone cannot tell seven trailing zero bits from a final '@'.
func Unpack(packed []byte, septets int, fillBits int) ([]byte, error) {
	// Check before allocating: septets may come from the network.
	if err := checkUnpack(len(packed), septets, fillBits); err != nil {
		return nil, err
	}
	return AppendUnpack(make([]byte, 0, septets), packed, septets, fillBits)
}

func checkUnpack(octets, septets, fillBits int) error {
	if septets < 0 || fillBits < 0 || fillBits > 6 {
		return fmt.Errorf("%w: %d septets after %d fill bits", ErrMalformed, septets, fillBits)
	}
	// Compare in octets first so that a huge count cannot overflow the bit arithmetic.
	if septets > 0 && (septets > octets*8/7+1 || PackedLen(septets, fillBits) > octets) {
		return fmt.Errorf("%w: %d septets after %d fill bits do not fit in %d octets", ErrMalformed, septets, fillBits, octets)
	}
	return nil
}

// AppendUnpack is Unpack appending to dst; it allocates nothing when dst has room.
func AppendUnpack(dst []byte, packed []byte, septets int, fillBits int) ([]byte, error) {
	if err := checkUnpack(len(packed), septets, fillBits); err != nil {
		return dst, err
	}
	if septets == 0 {
		return dst, nil
	}
	var acc uint32 // bits read but not yet emitted, least significant first
	nbits := uint(0)
	in := 0
	if fillBits > 0 { // the fill bits are the low bits of the first octet
		acc = uint32(packed[0]) >> uint(fillBits)
		nbits = 8 - uint(fillBits)
		in = 1
	}
	for range septets {
		if nbits < 7 {
			acc |= uint32(packed[in]) << nbits
			in++
			nbits += 8
		}
		dst = append(dst, byte(acc&0x7F))
		acc >>= 7
		nbits -= 7
	}
	return dst, nil
}
