package events

import (
	"bytes"
	"strconv"
	"time"
)

// UnixTime is an instant in Unix seconds, the resolution of Meta's timestamps. It encodes as a JSON
// number and decodes from a number or a numeric string, because Meta sends strings and older
// clients typed them as integers (domain §6.5).
type UnixTime int64

// Time converts t to a time.Time in UTC.
func (t UnixTime) Time() time.Time { return time.Unix(int64(t), 0).UTC() }

// FromTime converts a time.Time to UnixTime, dropping sub-second precision.
func FromTime(t time.Time) UnixTime { return UnixTime(t.Unix()) }

// String formats t as RFC 3339 in UTC.
func (t UnixTime) String() string { return t.Time().Format(time.RFC3339) }

// MarshalJSON implements json.Marshaler.
func (t UnixTime) MarshalJSON() ([]byte, error) {
	return strconv.AppendInt(nil, int64(t), 10), nil
}

// UnmarshalJSON implements json.Unmarshaler, accepting 1750030073 and "1750030073".
func (t *UnixTime) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s := b
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		if len(s) == 0 {
			*t = 0
			return nil
		}
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		return &FieldError{Field: "timestamp", Problem: "not a Unix time in seconds: " + truncate(string(b), 40)}
	}
	*t = UnixTime(v)
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
