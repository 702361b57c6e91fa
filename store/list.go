package store

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"time"
)

// Both implementations keep a time index ordered by (CreatedAt in nanoseconds, id); a cursor
// is the last key of a page, opaque to callers.

// DefaultListLimit and MaxListLimit bound a ListMessages page.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// PageLimit returns the page size f asks for, defaulted and bounded.
func (f *MessageFilter) PageLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultListLimit
	case f.Limit > MaxListLimit:
		return MaxListLimit
	}
	return f.Limit
}

// Match reports whether m passes the account, status and time filters of f.
func (f *MessageFilter) Match(m *Message) bool {
	return (f.Account == "" || m.Account == f.Account) &&
		(f.Status == 0 || m.Status == f.Status) &&
		(f.From.IsZero() || !m.CreatedAt.Before(f.From)) &&
		(f.To.IsZero() || m.CreatedAt.Before(f.To))
}

// IndexKey is the time index key of a message: 8 bytes of big-endian creation time in
// nanoseconds, then the id, so byte order is time order.
func IndexKey(created time.Time, id string) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(id)), uint64(created.UnixNano()))
	return append(b, id...)
}

// EncodeCursor turns the index key of the last message of a page into a cursor.
func EncodeCursor(key []byte) string { return base64.RawURLEncoding.EncodeToString(key) }

// DecodeCursor returns the index key a cursor stands for.
func DecodeCursor(c string) ([]byte, error) {
	k, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(k) < 9 {
		return nil, fmt.Errorf("%w: bad cursor", ErrInvalid)
	}
	return k, nil
}
