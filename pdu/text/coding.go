package text

import (
	"errors"
	"fmt"
	"strconv"
)

// Coding is the SMPP data_coding octet (SMPP 3.4 section 5.2.19).
type Coding uint8

// The data_coding values SMPP 3.4 section 5.2.19 names. Values it leaves reserved are still valid
// Codings: SMSCs commonly pass GSM 03.38 data coding schemes through them (see Coding.Alphabet).
const (
	Default   Coding = 0x00 // SMSC default alphabet: smppgw treats it as GSM 03.38, unpacked (one septet per octet), as Kannel, Jasmin and cloudhopper do
	IA5       Coding = 0x01 // IA5 (CCITT T.50) / ASCII
	Binary8   Coding = 0x02 // octet unspecified (8-bit binary)
	Latin1    Coding = 0x03 // ISO-8859-1
	Binary    Coding = 0x04 // octet unspecified (8-bit binary)
	JIS       Coding = 0x05 // JIS (X 0208-1990)
	Cyrillic  Coding = 0x06 // ISO-8859-5
	Hebrew    Coding = 0x07 // ISO-8859-8
	UCS2      Coding = 0x08 // UCS-2; smppgw encodes and decodes UTF-16BE, surrogate pairs included
	Pictogram Coding = 0x09 // pictogram encoding
	ISO2022JP Coding = 0x0A // ISO-2022-JP (music codes)
	KanjiJIS  Coding = 0x0D // extended Kanji JIS (X 0212-1990)
	KSC5601   Coding = 0x0E // KS C 5601
)

var codingNames = [...]string{
	Default:   "Default",
	IA5:       "IA5",
	Binary8:   "Binary8",
	Latin1:    "Latin1",
	Binary:    "Binary",
	JIS:       "JIS",
	Cyrillic:  "Cyrillic",
	Hebrew:    "Hebrew",
	UCS2:      "UCS2",
	Pictogram: "Pictogram",
	ISO2022JP: "ISO2022JP",
	KanjiJIS:  "KanjiJIS",
	KSC5601:   "KSC5601",
}

// String returns the constant's name, or Coding(0xNN) for a value SMPP 3.4 does not name.
func (c Coding) String() string {
	if int(c) < len(codingNames) && codingNames[c] != "" {
		return codingNames[c]
	}
	return "Coding(0x" + hex2(uint8(c)) + ")"
}

func hex2(b uint8) string {
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[b>>4], digits[b&0x0F]})
}

// Alphabet is the unit in which a short_message carries text, which fixes how its bytes are read and
// how many of them fit in one SMS.
type Alphabet uint8

const (
	// AlphabetGSM7 is one 7-bit character per octet (unpacked septets), 160 to an SMS. Default and the
	// GSM 03.38 7-bit coding schemes use the GSM 03.38 default alphabet; IA5 is ASCII, which the SMSC
	// carries on the air interface as GSM 7-bit.
	AlphabetGSM7 Alphabet = iota
	// Alphabet8Bit is one octet per unit, 140 to an SMS: binary data, or text in a single-octet table
	// such as Latin-1.
	Alphabet8Bit
	// AlphabetUCS2 is two octets per unit, 70 to an SMS.
	AlphabetUCS2
)

// String returns "GSM7", "8bit" or "UCS2".
func (a Alphabet) String() string {
	switch a {
	case AlphabetGSM7:
		return "GSM7"
	case Alphabet8Bit:
		return "8bit"
	case AlphabetUCS2:
		return "UCS2"
	}
	return "Alphabet(" + strconv.Itoa(int(a)) + ")"
}

// Alphabet classifies any data_coding octet. The values SMPP 3.4 names keep their SMPP meaning; every
// other value is read as a GSM 03.38 (3GPP TS 23.038 section 4) data coding scheme, because that is
// what SMSCs put there:
//
//	00xx xxxx, 01xx xxxx  general data coding (01: marked for automatic deletion): bit 5 set means
//	                      compressed, which is 8-bit; else bits 3-2: 00 GSM 7-bit, 01 8-bit, 10 UCS-2,
//	                      11 reserved
//	10xx xxxx             reserved coding groups
//	1100 xxxx, 1101 xxxx  message waiting indication, GSM 7-bit
//	1110 xxxx             message waiting indication, UCS-2
//	1111 xxxx             data coding/message class: bit 2 clear GSM 7-bit, set 8-bit
//
// TS 23.038 says any reserved coding shall be assumed to be the GSM 7-bit default alphabet, so the
// reserved ones are AlphabetGSM7. The double-byte Japanese and Korean codings (JIS, Pictogram,
// KanjiJIS, KSC5601) are AlphabetUCS2: their characters take two octets, and SMSCs send them as UCS-2.
func (c Coding) Alphabet() Alphabet {
	switch c {
	case Default, IA5:
		return AlphabetGSM7
	case Binary8, Latin1, Binary, Cyrillic, Hebrew, ISO2022JP:
		return Alphabet8Bit
	case JIS, UCS2, Pictogram, KanjiJIS, KSC5601:
		return AlphabetUCS2
	}
	switch {
	case c < 0x80: // general data coding, with or without automatic deletion
		if c&0x20 != 0 {
			return Alphabet8Bit // compressed (TS 23.042): an octet stream
		}
		switch (c >> 2) & 0x03 {
		case 0x01:
			return Alphabet8Bit
		case 0x02:
			return AlphabetUCS2
		}
		return AlphabetGSM7
	case c < 0xC0: // reserved coding groups
		return AlphabetGSM7
	case c < 0xE0: // message waiting indication, discard or store, GSM 7-bit
		return AlphabetGSM7
	case c < 0xF0: // message waiting indication, store, UCS-2
		return AlphabetUCS2
	default: // data coding/message class
		if c&0x04 != 0 {
			return Alphabet8Bit
		}
		return AlphabetGSM7
	}
}

// codec is the table a Coding's bytes are read with.
type codec uint8

const (
	codecNone codec = iota
	codecGSM
	codecIA5
	codecLatin1
	codecUCS2
	codecBinary
)

// codec returns the table smppgw uses for c: the SMPP-named codings map directly, and a GSM 03.38
// scheme maps through its Alphabet, except compressed text, which needs a TS 23.042 decompressor
// smppgw does not have.
func (c Coding) codec() codec {
	switch c {
	case Default:
		return codecGSM
	case IA5:
		return codecIA5
	case Latin1:
		return codecLatin1
	case UCS2:
		return codecUCS2
	case Binary, Binary8:
		return codecBinary
	case JIS, Cyrillic, Hebrew, Pictogram, ISO2022JP, KanjiJIS, KSC5601:
		return codecNone
	}
	if c < 0x80 && c&0x20 != 0 {
		return codecNone
	}
	switch c.Alphabet() {
	case AlphabetGSM7:
		return codecGSM
	case AlphabetUCS2:
		return codecUCS2
	default:
		return codecBinary
	}
}

// HasCodec reports whether Encode, Decode, Units and Parts can handle c.
func (c Coding) HasCodec() bool { return c.codec() != codecNone }

// The sizes that fix every capacity: TP user data is 140 octets (3GPP TS 23.040 section 9.2.3.24).
const (
	maxUserData = 140
	// minCapacity is the fewest units a part must hold so that an escape pair or a surrogate pair,
	// which cost two units and are never split, always fits.
	minCapacity = 2
)

// ErrUDHLen is returned when a UDH length leaves too little room in an SMS to carry text.
var ErrUDHLen = errors.New("text: UDH length leaves no room for text")

// Capacity returns how many units of c's Alphabet fit in one SMS whose user data also carries a UDH
// of udhLen octets, its UDHL octet included; udhLen 0 means no UDH (a single SMS, or parts linked by
// SAR TLVs). See the package documentation for the table.
func Capacity(c Coding, udhLen int) (int, error) {
	n := capacity(c.Alphabet(), udhLen)
	if n < minCapacity {
		return 0, fmt.Errorf("%w: %d octets with %s", ErrUDHLen, udhLen, c)
	}
	return n, nil
}

// capacity is Capacity without the check; it returns 0 or less when udhLen is out of range.
func capacity(a Alphabet, udhLen int) int {
	if udhLen < 0 || udhLen > maxUserData {
		return 0
	}
	octets := maxUserData - udhLen
	switch a {
	case AlphabetGSM7:
		return octets * 8 / 7
	case AlphabetUCS2:
		return octets / 2
	default:
		return octets
	}
}
