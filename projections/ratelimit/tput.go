package ratelimit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Throughput counts live in one hash per partition, number and hour (tp:<pn>:<hour>) with one
// field per minute: "m<the minute's first second>" → its 60 counts, comma-separated decimals,
// zeros left empty and trailing zeros dropped (",3,,1": 3 messages in the minute's second 1,
// 1 in its second 4). A minute without messages has no field.
//
// A field per second was 0.7 field reads and writes per input record on a dense replay, most
// of them into listpack-encoded hashes (up to 512 fields, each insert a linear scan): about a
// fifth of the Redis CPU of a replay. A minute field takes the same read-modify-write under the
// batch's WATCH (the counts of the minutes a batch touches are read before it writes).
//
// Stored layout change: before 2026-11-25 a field held one second ("<unix second>" → count).
// Readers still add those in (AddThroughput); writers never write them, so a store upgraded in
// place reads exact counts, except that a correction of a message counted in such a field
// within the throughput window after the upgrade leaves it counted: the writer cannot see it.
// The hours they sit in are trimmed a throughput window later.

// minuteCounts are one minute's per-second counts.
type minuteCounts [60]int64

// minuteOf is the first second of t's minute.
func minuteOf(t events.UnixTime) events.UnixTime { return t - t%60 }

// minuteField is the field of t's minute in its hour's hash.
func minuteField(t events.UnixTime) string { return "m" + itoa(int64(minuteOf(t))) }

// encode is the field's value: "" when every count is zero (the field is deleted).
func (c *minuteCounts) encode() string {
	last := -1
	for i, n := range c {
		if n != 0 {
			last = i
		}
	}
	if last < 0 {
		return ""
	}
	b := make([]byte, 0, 2*(last+1))
	for i, n := range c[:last+1] {
		if i > 0 {
			b = append(b, ',')
		}
		if n != 0 {
			b = strconv.AppendInt(b, n, 10)
		}
	}
	return string(b)
}

// decodeMinute parses a minute field's value.
func decodeMinute(v string) (minuteCounts, error) {
	var c minuteCounts
	for i := 0; v != ""; i++ {
		if i == len(c) {
			return c, fmt.Errorf("throughput minute %q has more than %d seconds", v, len(c))
		}
		s, rest, _ := strings.Cut(v, ",")
		if s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return c, fmt.Errorf("throughput minute %q: %w", v, err)
			}
			c[i] = n
		}
		v = rest
	}
	return c, nil
}

// countAt is the count of second t from the values of its minute field and of its field as
// stored before the minute fields ("" when absent); a malformed value counts nothing.
func countAt(t events.UnixTime, minute, second string) int64 {
	var n int64
	if c, err := decodeMinute(minute); err == nil {
		n += c[t%60]
	}
	if x, err := strconv.ParseInt(second, 10, 64); err == nil {
		n += x
	}
	return n
}

// AddThroughput adds the counts of one field of a throughput hash, either form (a minute, or a
// second as stored before the minute fields), to secs: unix second → messages.
func AddThroughput(secs map[events.UnixTime]int64, field, value string) error {
	if m, ok := strings.CutPrefix(field, "m"); ok {
		start, err := strconv.ParseInt(m, 10, 64)
		if err != nil || start%60 != 0 {
			return fmt.Errorf("throughput field %q: not a minute", field)
		}
		c, err := decodeMinute(value)
		if err != nil {
			return err
		}
		for i, n := range c {
			if n != 0 {
				secs[events.UnixTime(start)+events.UnixTime(i)] += n
			}
		}
		return nil
	}
	sec, err := strconv.ParseInt(field, 10, 64)
	if err != nil {
		return fmt.Errorf("throughput field %q: not a second", field)
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return fmt.Errorf("throughput second %s: %w", field, err)
	}
	secs[events.UnixTime(sec)] += n
	return nil
}
