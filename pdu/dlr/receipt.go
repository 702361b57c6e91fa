package dlr

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/smppgw/smppgw/pdu"
)

// Sentinel errors: every error of this package wraps one of them.
var (
	// ErrNotReceipt: the text does not start with a receipt key or has neither id: nor stat:, or the
	// deliver_sm's esm_class does not mark a receipt. Such a message is MO traffic, not a bad receipt.
	ErrNotReceipt = errors.New("dlr: not a delivery receipt")
	// ErrMalformed: a receipt with a field that cannot be read, is missing or is given twice.
	ErrMalformed = errors.New("dlr: malformed delivery receipt")
)

// FieldError names the receipt field that could not be read. It wraps ErrMalformed.
type FieldError struct {
	Field  string // "id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text", or a TLV's name
	Value  string // the text refused, empty when the field is missing
	Reason string // "missing", "empty", "given twice", "month out of range", ...
	Err    error  // the sentinel, ErrMalformed
}

func (e *FieldError) Error() string {
	s := "dlr: " + e.Field + ": " + e.Reason
	if e.Value != "" {
		s += " " + strconv.Quote(clip(e.Value, 32))
	}
	return s
}

// Unwrap returns the sentinel, so errors.Is(err, ErrMalformed) holds.
func (e *FieldError) Unwrap() error { return e.Err }

// NoCount is the value of Receipt.Sub and Receipt.Dlvrd when the receipt did not carry the field
// (or carried it empty).
const NoCount = -1

// Receipt is the text of an SMSC delivery receipt as SMPP 3.4 Appendix B shows it:
//
//	id:IIIIIIIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text: ...
//
// A field the receipt did not carry has its absent value: NoCount for Sub and Dlvrd, the zero time
// for the dates, "" for the strings. Append leaves absent fields out, so a parsed receipt writes back
// the fields it had. Use a keyed literal with Sub and Dlvrd set, as the zero value 0 means "sub:000".
type Receipt struct {
	ID         string    // the message id the SMSC gave in submit_sm_resp, kept as text (decimal, hex, UUID)
	Sub, Dlvrd int       // submitted and delivered counts, 0 to 999999999; negative (NoCount) when absent
	SubmitDate time.Time // zero when absent; minute precision on the wire, seconds when a peer sent them
	DoneDate   time.Time // zero when absent
	Stat       string    // the 7-letter word: DELIVRD, EXPIRED, DELETED, UNDELIV, ACCEPTD, UNKNOWN, REJECTD, ENROUTE
	Err        string    // the network or SMSC error, kept as text: peers send "000", "0", hex, words
	Text       string    // the first characters of the original message, running to the end of the receipt

	// The digit counts Sub and Dlvrd were written with, when a peer's width was not the canonical one
	// (zero-padded to 3): "sub:1" writes back as "sub:1", not "sub:001". Zero means canonical, so a
	// Receipt built in code and a parsed canonical one compare equal.
	subWidth, dlvrdWidth uint8
}

// field indexes the receipt keys.
type field uint8

const (
	fieldID field = iota
	fieldSub
	fieldDlvrd
	fieldSubmitDate
	fieldDoneDate
	fieldStat
	fieldErr
	fieldText
	numFields
)

var fieldNames = [numFields]string{"id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text"}

// Parse reads the text of a delivery receipt, dates in UTC. See ParseInLocation.
func Parse(s string) (Receipt, error) { return ParseInLocation(s, time.UTC) }

// ParseInLocation reads the text of a delivery receipt, taking its dates as wall-clock times in loc
// (nil means UTC): Appendix B dates carry no zone, and an SMSC writes its own.
//
// The text must start (after white space) with a receipt key and hold an id: or a stat:, else the
// error wraps ErrNotReceipt.
// Keys are matched in any case and order; "submit date" and "done date" may be written with an
// underscore or several spaces. A value runs to the next white space; text: is always last and runs
// to the end of s, so it may hold anything, "stat:" included. Tokens that are not receipt keys
// (vendor extras such as "mcc:250") are skipped. Trailing NUL octets, which C-string SMSCs leave in
// short_message, are dropped. Dates are 10 (YYMMDDhhmm), 12 (YYMMDDhhmmss, or YYYYMMDDhhmm when
// that is the only valid reading) or 14 (YYYYMMDDhhmmss) digits, two-digit years being 20YY; an
// all-zero date counts as absent.
//
// A receipt needs an id and a stat; a missing or unreadable field gives an error wrapping
// ErrMalformed (a *FieldError naming a missing id or stat, else the first bad field). The Receipt returned with it still holds
// every field that did parse, so a caller that only needs the id can still correlate. Strings in the
// Receipt alias s.
func ParseInLocation(s string, loc *time.Location) (Receipt, error) {
	if loc == nil {
		loc = time.UTC
	}
	for len(s) > 0 && s[len(s)-1] == 0 {
		s = s[:len(s)-1]
	}
	r := Receipt{Sub: NoCount, Dlvrd: NoCount}
	i := skipSpace(s, 0)
	if _, _, ok := matchKey(s[i:]); !ok {
		return r, &notReceiptError{start: clip(s[i:], 16)}
	}
	var seen [numFields]bool
	var first error
	for {
		i = skipSpace(s, i)
		if i == len(s) {
			break
		}
		f, n, ok := matchKey(s[i:])
		if !ok {
			i = tokenEnd(s, i)
			continue
		}
		i += n
		if f == fieldText {
			r.Text = s[i:]
			break
		}
		// A value may be empty ("err: text:..."): then what follows the spaces is the next key.
		v := ""
		j := skipSpace(s, i)
		i = j
		if _, _, next := matchKey(s[j:]); !next {
			i = tokenEnd(s, j)
			v = s[j:i]
		}
		if seen[f] {
			first = keepFirst(first, &FieldError{Field: fieldNames[f], Value: v, Reason: "given twice", Err: ErrMalformed})
			continue
		}
		seen[f] = true
		if err := r.set(f, v, loc); err != nil {
			first = keepFirst(first, err)
		}
	}
	if !seen[fieldID] && !seen[fieldStat] {
		// Only counts or text ("Text: see you at 10") is a message that merely looks like one.
		return r, &notReceiptError{start: clip(s[skipSpace(s, 0):], 16)}
	}
	// A missing id or stat is reported before any other fault: it is what decides whether the
	// receipt can be used at all.
	switch {
	case !seen[fieldID]:
		return r, &FieldError{Field: "id", Reason: "missing", Err: ErrMalformed}
	case !seen[fieldStat]:
		return r, &FieldError{Field: "stat", Reason: "missing", Err: ErrMalformed}
	}
	return r, first
}

// notReceiptError keeps the start of a refused text for the log line without formatting it until asked.
type notReceiptError struct{ start string }

func (e *notReceiptError) Error() string {
	return ErrNotReceipt.Error() + ": starts with " + strconv.Quote(e.start)
}

func (e *notReceiptError) Unwrap() error { return ErrNotReceipt }

// clip shortens s for an error message: a hostile peer may send 64 KiB, and the start identifies it.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func keepFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// set stores the value v of key f, or says why it cannot.
func (r *Receipt) set(f field, v string, loc *time.Location) error {
	bad := func(reason string) error {
		return &FieldError{Field: fieldNames[f], Value: v, Reason: reason, Err: ErrMalformed}
	}
	switch f {
	case fieldID:
		if v == "" {
			return bad("empty")
		}
		r.ID = v
	case fieldSub, fieldDlvrd:
		if v == "" {
			return nil
		}
		n, w, ok := parseCount(v)
		if !ok {
			return bad("not a count of at most 9 digits")
		}
		if f == fieldSub {
			r.Sub, r.subWidth = n, w
		} else {
			r.Dlvrd, r.dlvrdWidth = n, w
		}
	case fieldSubmitDate, fieldDoneDate:
		if v == "" {
			return nil
		}
		t, reason := parseDate(v, loc)
		if reason != "" {
			return bad(reason)
		}
		if f == fieldSubmitDate {
			r.SubmitDate = t
		} else {
			r.DoneDate = t
		}
	case fieldStat:
		if v == "" {
			return bad("empty")
		}
		r.Stat = v
	case fieldErr:
		r.Err = v
	}
	return nil
}

// matchKey reports whether s starts with a receipt key and its colon, and the length of both.
func matchKey(s string) (f field, n int, ok bool) {
	if len(s) < 3 {
		return 0, 0, false
	}
	switch s[0] | 0x20 { // ASCII lower case; other octets cannot start a key anyway
	case 'i':
		if hasPrefixFold(s, "id:") {
			return fieldID, 3, true
		}
	case 's':
		if hasPrefixFold(s, "sub:") {
			return fieldSub, 4, true
		}
		if hasPrefixFold(s, "stat:") {
			return fieldStat, 5, true
		}
		if hasPrefixFold(s, "submit") {
			if m, ok := dateSuffix(s[6:]); ok {
				return fieldSubmitDate, 6 + m, true
			}
		}
	case 'd':
		if hasPrefixFold(s, "dlvrd:") {
			return fieldDlvrd, 6, true
		}
		if hasPrefixFold(s, "done") {
			if m, ok := dateSuffix(s[4:]); ok {
				return fieldDoneDate, 4 + m, true
			}
		}
	case 'e':
		if hasPrefixFold(s, "err:") {
			return fieldErr, 4, true
		}
	case 't':
		if hasPrefixFold(s, "text:") {
			return fieldText, 5, true
		}
	}
	return 0, 0, false
}

// dateSuffix matches what follows "submit" or "done": "date:" after any run of spaces, tabs or
// underscores, as SMSCs write "submit date:", "submit_date:", "submit  date:" and "submitdate:".
func dateSuffix(s string) (int, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '_' || s[i] == '\t') {
		i++
	}
	if hasPrefixFold(s[i:], "date:") {
		return i + 5, true
	}
	return 0, false
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case; key is lower case.
func hasPrefixFold(s, key string) bool {
	if len(s) < len(key) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != key[i] {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func tokenEnd(s string, i int) int {
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return i
}

// parseCount reads sub or dlvrd: 1 to 9 digits, so it fits an int everywhere. The width is kept
// only when it differs from the canonical zero-padded 3 digits.
func parseCount(v string) (n int, width uint8, ok bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, 0, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	if len(v) != max(3, numDigits(n)) {
		width = uint8(len(v))
	}
	return n, width, true
}

func numDigits(n int) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// parseDate reads a 10, 12 or 14 digit receipt date. It returns a reason instead of an error so the
// caller builds one FieldError with the field's name.
func parseDate(v string, loc *time.Location) (time.Time, string) {
	allZero := true
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return time.Time{}, "not a date of digits"
		}
		if v[i] != '0' {
			allZero = false
		}
	}
	if len(v) != 10 && len(v) != 12 && len(v) != 14 {
		return time.Time{}, "not 10, 12 or 14 digits"
	}
	if allZero {
		// Some SMSCs fill a date they do not know with zeros: that is an absent date, not a bad one.
		return time.Time{}, ""
	}
	switch len(v) {
	case 10: // YYMMDDhhmm, as Appendix B has it
		return dateOf(2000+num2(v), v[2:], loc)
	case 12: // YYMMDDhhmmss
		t, reason := dateOf(2000+num2(v), v[2:], loc)
		if reason != "" {
			// Some SMSCs write YYYYMMDDhhmm instead. Where both readings are valid, the seconds one
			// above wins; this one is only tried when that fails, so no valid date changes meaning.
			if year := num2(v)*100 + num2(v[2:]); year >= 2000 && year <= 2099 {
				if t4, reason4 := dateOf(year, v[4:], loc); reason4 == "" {
					return t4, ""
				}
			}
		}
		return t, reason
	}
	// YYYYMMDDhhmmss
	year := num2(v)*100 + num2(v[2:])
	if year < 2000 || year > 2099 {
		// Append writes two-digit years, read back as 20YY: refuse what would not survive that.
		return time.Time{}, "year out of range 2000-2099"
	}
	return dateOf(year, v[4:], loc)
}

// dateOf reads MMDDhhmm or MMDDhhmmss digits in year.
func dateOf(year int, v string, loc *time.Location) (time.Time, string) {
	month, day, hour, minute, sec := num2(v), num2(v[2:]), num2(v[4:]), num2(v[6:]), 0
	if len(v) == 10 {
		sec = num2(v[8:])
	}
	switch {
	case month < 1 || month > 12:
		return time.Time{}, "month out of range"
	case day < 1 || day > daysIn(time.Month(month), year):
		return time.Time{}, "day out of range"
	case hour > 23:
		return time.Time{}, "hour out of range"
	case minute > 59:
		return time.Time{}, "minute out of range"
	case sec > 59:
		return time.Time{}, "second out of range"
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, loc), ""
}

func num2(s string) int { return int(s[0]-'0')*10 + int(s[1]-'0') }

func daysIn(m time.Month, year int) int {
	switch m {
	case time.February:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

// Append appends the receipt in the canonical form of Appendix B to b and returns the extended
// buffer; it allocates nothing when b has room. Fields are written in Appendix B order; Sub and Dlvrd
// zero-padded to 3 digits (or the width a peer used), dates as 10 digits (YYMMDDhhmm, seconds
// dropped, two-digit year) in the time's own location; absent Sub, Dlvrd and dates are left out,
// while stat:, err: and text: are always written. Values are written as they are: an ID, Stat or Err
// holding white space, or a Text ending in NUL, does not read back the same.
func (r Receipt) Append(b []byte) []byte {
	b = append(b, "id:"...)
	b = append(b, r.ID...)
	if r.Sub >= 0 {
		b = append(b, " sub:"...)
		b = appendCount(b, r.Sub, r.subWidth)
	}
	if r.Dlvrd >= 0 {
		b = append(b, " dlvrd:"...)
		b = appendCount(b, r.Dlvrd, r.dlvrdWidth)
	}
	if !r.SubmitDate.IsZero() {
		b = append(b, " submit date:"...)
		b = appendDate(b, r.SubmitDate)
	}
	if !r.DoneDate.IsZero() {
		b = append(b, " done date:"...)
		b = appendDate(b, r.DoneDate)
	}
	b = append(b, " stat:"...)
	b = append(b, r.Stat...)
	b = append(b, " err:"...)
	b = append(b, r.Err...)
	b = append(b, " text:"...)
	return append(b, r.Text...)
}

func appendCount(b []byte, n int, width uint8) []byte {
	w := int(width)
	if w == 0 {
		w = 3
	}
	for d := numDigits(n); d < w; d++ {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func appendDate(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, _ := t.Clock()
	year %= 100
	if year < 0 {
		year += 100
	}
	b = append2(b, year)
	b = append2(b, int(month))
	b = append2(b, day)
	b = append2(b, hour)
	return append2(b, minute)
}

func append2(b []byte, n int) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// String returns the receipt as Append writes it.
func (r Receipt) String() string {
	return string(r.Append(make([]byte, 0, 96+len(r.ID)+len(r.Stat)+len(r.Err)+len(r.Text))))
}

// stats maps stat words to message states. The first word for each state is Appendix B's, which
// StatFor returns; the others are spellings real SMSCs send (the spec's full names, and
// "UNDELIVERED").
var stats = [...]struct {
	word  string
	state pdu.MessageState
}{
	{"DELIVRD", pdu.DELIVERED},
	{"UNDELIV", pdu.UNDELIVERABLE},
	{"EXPIRED", pdu.EXPIRED},
	{"DELETED", pdu.DELETED},
	{"ACCEPTD", pdu.ACCEPTED},
	{"REJECTD", pdu.REJECTED},
	{"ENROUTE", pdu.ENROUTE},
	{"UNKNOWN", pdu.UNKNOWN},
	{"DELIVERED", pdu.DELIVERED},
	{"UNDELIVERABLE", pdu.UNDELIVERABLE},
	{"UNDELIVERED", pdu.UNDELIVERABLE},
	{"ACCEPTED", pdu.ACCEPTED},
	{"REJECTED", pdu.REJECTED},
}

// State maps Stat to a message state, ignoring case: DELIVRD is DELIVERED, UNDELIV UNDELIVERABLE,
// and so on; the spec's full names (DELIVERED, UNDELIVERABLE, ...) are accepted too. An unknown or
// empty word is UNKNOWN.
func (r Receipt) State() pdu.MessageState { return stateOf(r.Stat) }

func stateOf(stat string) pdu.MessageState {
	for _, s := range stats {
		if len(s.word) == len(stat) && strings.EqualFold(s.word, stat) {
			return s.state
		}
	}
	return pdu.UNKNOWN
}

// StatFor returns the Appendix B stat word for m ("DELIVRD" for DELIVERED), and "UNKNOWN" for a value
// SMPP 3.4 does not define.
func StatFor(m pdu.MessageState) string {
	for _, s := range stats {
		if s.state == m {
			return s.word
		}
	}
	return "UNKNOWN"
}

// IsReceipt reports whether a deliver_sm with this esm_class reports on a message submitted earlier,
// so its text and TLVs are read with this package. Two message types (esm_class bits 5-2) count, both
// written by the SMSC in the Appendix B form: SMSC delivery receipt (0001) and intermediate delivery
// notification (1000). SME delivery and manual/user acknowledgements (0010, 0100) do not: they are
// messages from the recipient's handset or application, whose content is its own, and the gateway
// passes them on as MO. Neither do conversation abort (0110) and the default type (0000).
func IsReceipt(esmClass uint8) bool {
	switch esmClass & pdu.EsmClassTypeMask {
	case pdu.EsmClassReceipt, pdu.EsmClassIntermediate:
		return true
	}
	return false
}
