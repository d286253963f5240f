package events

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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

// UnmarshalJSON implements json.Unmarshaler, accepting 1750030073 and "1750030073"; null and ""
// leave zero.
func (t *UnixTime) UnmarshalJSON(b []byte) error {
	v, err := parseUnixTime(b)
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// parseUnixTime parses the JSON value b as Unix seconds: an integer number, a string holding one,
// null or "" (zero).
func parseUnixTime(b []byte) (UnixTime, error) {
	s := b
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
		if len(s) == 0 {
			return 0, nil
		}
	} else if string(s) == "null" {
		return 0, nil
	}
	// Fast path for the common case: up to 18 plain digits cannot overflow.
	if n := len(s); n > 0 && n <= 18 {
		var v int64
		i := 0
		neg := s[0] == '-'
		if neg {
			i = 1
		}
		for ; i < n && s[i] >= '0' && s[i] <= '9'; i++ {
			v = v*10 + int64(s[i]-'0')
		}
		if i == n && (!neg || n > 1) {
			if neg {
				v = -v
			}
			return UnixTime(v), nil
		}
	}
	v, err := strconv.ParseInt(string(s), 10, 64)
	if err != nil {
		// The field is left empty: only the caller knows it (Decode fills in its path).
		return 0, &FieldError{Problem: "want Unix seconds as a number or numeric string, got " + strings.ToValidUTF8(truncate(string(b), 40), "\uFFFD")}
	}
	return UnixTime(v), nil
}

// truncate shortens s to at most n bytes for an error message, without splitting a UTF-8
// sequence, and marks the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
