package pdu

import (
	"errors"
	"strconv"
	"time"
)

// ErrTimeFormat is wrapped by ParseTime's errors.
var ErrTimeFormat = errors.New("pdu: invalid SMPP time")

// ParseTime reads the SMPP time format of section 7.1.1 used by schedule_delivery_time,
// validity_period and final_date: "YYMMDDhhmmsstnnp", absolute when p is '+' or '-' (nn quarter hours
// ahead of or behind UTC) and relative to now when p is 'R'. An empty string means "not set" and returns
// the zero time. Years are 2000+YY, as Kannel, Jasmin and cloudhopper read them.
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) != 16 {
		return time.Time{}, timeErr(s, "must be 16 characters, is "+strconv.Itoa(len(s)))
	}
	var n [7]int // YY MM DD hh mm ss nn
	for i, at := range [7]int{0, 2, 4, 6, 8, 10, 13} {
		v, ok := digits2(s[at:])
		if !ok {
			return time.Time{}, timeErr(s, "non-digit at position "+strconv.Itoa(at+1))
		}
		n[i] = v
	}
	if s[12] < '0' || s[12] > '9' {
		return time.Time{}, timeErr(s, "tenths of a second must be a digit")
	}
	tenths := int(s[12] - '0')
	switch s[15] {
	case 'R':
		// Relative: years, months and days count on the calendar from now; the rest is a duration.
		t := now.AddDate(n[0], n[1], n[2])
		return t.Add(time.Duration(n[3])*time.Hour + time.Duration(n[4])*time.Minute + time.Duration(n[5])*time.Second), nil
	case '+', '-':
		if n[1] < 1 || n[1] > 12 || n[2] < 1 || n[2] > 31 || n[3] > 23 || n[4] > 59 || n[5] > 59 || n[6] > 48 {
			return time.Time{}, timeErr(s, "field out of range")
		}
		offset := n[6] * 15 * 60
		if s[15] == '-' {
			offset = -offset
		}
		loc := time.FixedZone("", offset)
		t := time.Date(2000+n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], tenths*int(time.Second/10), loc)
		if t.Day() != n[2] {
			return time.Time{}, timeErr(s, "no such day")
		}
		return t, nil
	}
	return time.Time{}, timeErr(s, "last character must be '+', '-' or 'R'")
}

func digits2(s string) (int, bool) {
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

func timeErr(s, reason string) error {
	return &timeError{s: s, reason: reason}
}

type timeError struct{ s, reason string }

func (e *timeError) Error() string { return "pdu: SMPP time " + strconv.Quote(e.s) + ": " + e.reason }
func (e *timeError) Unwrap() error { return ErrTimeFormat }

// AppendAbsoluteTime appends t in the absolute SMPP time format, "YYMMDDhhmmsstnn+" or "...-", in t's
// own zone offset rounded down to a quarter hour (the format cannot say more). Years outside 2000-2099
// cannot be written; they are clamped to that range.
func AppendAbsoluteTime(dst []byte, t time.Time) []byte {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	y := min(max(t.Year()-2000, 0), 99)
	for _, v := range [6]int{y, int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second()} {
		dst = append(dst, byte('0'+v/10), byte('0'+v%10))
	}
	q := min(off/(15*60), 48)
	return append(dst, byte('0'+t.Nanosecond()/int(time.Second/10)), byte('0'+q/10), byte('0'+q%10), sign)
}

// AppendRelativeTime appends d in the relative SMPP time format "YYMMDDhhmmss000R", counted in days,
// hours, minutes and seconds (days over 99 carry into months of 30 days and years of 365 days only as
// far as the fields allow; longer durations are clamped to 99 years).
func AppendRelativeTime(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	secs := int64(d / time.Second)
	days := secs / 86400
	secs %= 86400
	years := min(days/365, 99)
	days -= years * 365
	months := min(days/30, 99)
	days -= months * 30
	if days > 99 {
		days = 99
	}
	for _, v := range [6]int64{years, months, days, secs / 3600, secs / 60 % 60, secs % 60} {
		dst = append(dst, byte('0'+v/10), byte('0'+v%10))
	}
	return append(dst, '0', '0', '0', 'R')
}
