package text

import (
	"unicode/utf8"
)

// ia5Units is what an IA5 octet costs once the SMSC carries it on the air as GSM 7-bit: two septets
// for the ASCII characters GSM has only in its extension table ([\]^{|}~ and form feed), one for the
// rest. The few ASCII characters GSM lacks (` and most C0 controls) count one, as the SMSC substitutes
// a single character for them. Counting this way never undercounts, so a part cut by it always fits.
func ia5Units(b byte) int {
	if gsmLow[b] != gsmNone && gsmLow[b]&gsmExtended != 0 {
		return 2
	}
	return 1
}

// charAt returns the units the character at s[i:] costs in cd and its length in s, or units 0 when
// it cannot be encoded (charError says why). A unit is a septet (GSM, IA5), an octet (Latin-1,
// binary) or a UTF-16 code unit (UCS-2). It builds no error, so PickWith can probe codings cheaply.
func charAt(cd codec, s string, i int) (units, size int) {
	b := s[i]
	if b < utf8.RuneSelf {
		switch cd {
		case codecGSM:
			switch code := gsmLow[b]; {
			case code == gsmNone:
				return 0, 1
			case code&gsmExtended != 0:
				return 2, 1
			}
			return 1, 1
		case codecIA5:
			return ia5Units(b), 1
		}
		return 1, 1
	}
	if cd == codecBinary {
		return 1, 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 {
		return 0, 1
	}
	switch cd {
	case codecGSM:
		switch code := gsmLookup(r); {
		case code == gsmNone:
			return 0, size
		case code&gsmExtended != 0:
			return 2, size
		}
		return 1, size
	case codecLatin1:
		if r > 0xFF {
			return 0, size
		}
		return 1, size
	case codecUCS2:
		if r >= 0x10000 {
			return 2, size
		}
		return 1, size
	}
	return 0, size // IA5 with a non-ASCII rune
}

// charError is the error for the character at s[i:] that charAt refused.
func charError(c Coding, s string, i int) error {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size == 1 {
		return invalidUTF8(i)
	}
	return unencodable(c, r, i)
}

// Units counts s in the units of coding c: GSM septets (an extension character counts 2; IA5 is
// counted as the GSM septets the SMSC sends it as), UCS-2 16-bit code units (a character outside the
// BMP counts 2), octets for the 8-bit codings. It fails as Encode would.
func Units(c Coding, s string) (int, error) {
	cd := c.codec()
	if cd == codecNone {
		return 0, noCodec(c)
	}
	return countUnits(cd, c, s)
}

func countUnits(cd codec, c Coding, s string) (int, error) {
	if cd == codecBinary {
		return len(s), nil
	}
	n := 0
	for i := 0; i < len(s); {
		units, size := charAt(cd, s, i)
		if units == 0 {
			return 0, charError(c, s, i)
		}
		n += units
		i += size
	}
	return n, nil
}

// Parts returns how many SMS parts s takes in coding c: one when it fits a single SMS (160 septets,
// 140 octets, 70 UCS-2 units), else as many as Split cuts it into, each holding at most Capacity(c,
// udhLen) units and never half of an escape pair or a surrogate pair (so a GSM part may hold 152
// septets where 153 fit). udhLen is the concatenation UDH each part carries, its UDHL octet included:
// 6 with an 8-bit reference, 7 with a 16-bit reference, 0 when SAR TLVs link the parts instead.
func Parts(c Coding, s string, udhLen int) (int, error) {
	cd := c.codec()
	if cd == codecNone {
		return 0, noCodec(c)
	}
	perPart, err := Capacity(c, udhLen)
	if err != nil {
		return 0, err
	}
	n, bad := countParts(cd, c.Alphabet(), s, perPart)
	if bad >= 0 {
		return 0, charError(c, s, bad)
	}
	return n, nil
}

// countParts is Parts for a checked coding and capacity; it returns the offset of the first character
// cd cannot encode as bad, or -1.
func countParts(cd codec, a Alphabet, s string, perPart int) (n, bad int) {
	single := capacity(a, 0)
	if cd == codecBinary {
		if len(s) <= single {
			return 1, -1
		}
		return (len(s) + perPart - 1) / perPart, -1
	}
	total, parts, used := 0, 1, 0
	for i := 0; i < len(s); {
		units, size := charAt(cd, s, i)
		if units == 0 {
			return 0, i
		}
		if used+units > perPart {
			parts++
			used = 0
		}
		used += units
		total += units
		i += size
	}
	if total <= single {
		return 1, -1
	}
	return parts, -1
}

// segmentAt returns the units the character starting at b[i] costs and its length in octets, reading
// bytes as Encode writes them for c. It accepts any bytes: an octet that is not part of a pair is one
// character.
func segmentAt(cd codec, a Alphabet, b []byte, i int) (units, size int) {
	switch cd {
	case codecGSM:
		if b[i] == esc && i+1 < len(b) {
			return 2, 2
		}
		return 1, 1
	case codecIA5:
		return ia5Units(b[i]), 1
	case codecUCS2:
		if i+1 >= len(b) {
			return 1, 1 // the odd octet of malformed UCS-2
		}
		if u := b[i]; u >= 0xD8 && u <= 0xDB && i+3 < len(b) && b[i+2] >= 0xDC && b[i+2] <= 0xDF {
			return 2, 4
		}
		return 1, 2
	case codecNone:
		if a == AlphabetUCS2 {
			// A double-byte coding without a codec: cut between two-octet units.
			return 1, min(2, len(b)-i)
		}
	}
	return 1, 1
}

// Split cuts encoded text (as Encode returns it for c) into the segments that become the parts of a
// long message: at most Capacity(c, udhLen) units each, never splitting an escape pair (GSM), a
// surrogate pair or a code unit (UCS-2). It returns a single segment when the whole fits in one SMS
// without a UDH, so len(Split(c, b, udhLen)) equals Parts for the text b encodes. Segments alias
// encoded. It returns nil when udhLen leaves no room (Capacity reports why). For a coding without a
// codec it cuts between the units of its Alphabet.
func Split(c Coding, encoded []byte, udhLen int) [][]byte {
	cd, a := c.codec(), c.Alphabet()
	perPart := capacity(a, udhLen)
	if perPart < minCapacity {
		return nil
	}
	var segs [][]byte
	total, start, used := 0, 0, 0
	for i := 0; i < len(encoded); {
		units, size := segmentAt(cd, a, encoded, i)
		if used+units > perPart {
			if segs == nil {
				// Enough for every segment but when pairs held back at cuts add one; append grows then.
				segs = make([][]byte, 0, len(encoded)/perPart+1)
			}
			segs = append(segs, encoded[start:i:i])
			start, used = i, 0
		}
		used += units
		total += units
		i += size
	}
	if total <= capacity(a, 0) {
		// It fits one SMS, which carries no UDH: the cuts made for parts do not apply.
		return [][]byte{encoded}
	}
	return append(segs, encoded[start:len(encoded):len(encoded)])
}

// Pick returns the smallest coding able to carry s: Default (GSM 03.38) when every rune is in the
// default alphabet or its extension table, else UCS2. Text that is not valid UTF-8 gets UCS2, which
// Encode then refuses with ErrInvalidUTF8.
func Pick(s string) Coding {
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			if gsmLow[s[i]] == gsmNone {
				return UCS2
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if gsmLookup(r) == gsmNone || (r == utf8.RuneError && size == 1) {
			return UCS2
		}
		i += size - 1
	}
	return Default
}

// PickUDHLen is the UDH PickWith counts parts with: the 8-bit-reference concatenation UDH.
const PickUDHLen = 6

// PickWith is Pick that, when allowLatin1 is true, also considers Latin1 (140 characters to an SMS,
// so it beats UCS2 for Western European text GSM lacks, and beats GSM for text heavy in extension
// characters) and returns the coding that gives the fewest parts, counted with a PickUDHLen UDH.
//
// Tie rule: Default, then UCS2, then Latin1. Every handset reads GSM text; Latin1 is chosen only
// when it saves a part, because SMSCs differ in how they carry it on the air interface (some convert
// it to GSM 7-bit and lose characters GSM lacks, some send it as 8-bit data handsets do not show).
func PickWith(s string, allowLatin1 bool) Coding {
	best := Pick(s)
	if !allowLatin1 {
		return best
	}
	latin, bad := countParts(codecLatin1, Alphabet8Bit, s, capacity(Alphabet8Bit, PickUDHLen))
	if bad >= 0 {
		return best
	}
	// Latin-1 accepted s, so s is valid UTF-8 and best (Default or UCS2) can carry it too.
	other, _ := countParts(best.codec(), best.Alphabet(), s, capacity(best.Alphabet(), PickUDHLen))
	if latin < other {
		return Latin1
	}
	return best
}
