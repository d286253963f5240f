package ratelimit

import (
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Pair rate limit (domain §4.5): one message per 6 s per (business number, user) pair, bursts up
// to 45. It is a token bucket in event time with capacity 45 that refills one token every 6 s.
// To stay in exact integers the bucket counts in seconds of refill: one token is PairInterval
// units, the bucket holds at most PairBurst*PairInterval units and gains one unit per second.
const (
	PairBurst    = 45
	PairInterval = 6
	pairCapacity = PairBurst * PairInterval
	// ErrPairRate is Meta's error code for a pair over its rate (§4.7).
	ErrPairRate = 131056
	// ErrThroughput is Meta's error code for a number over its throughput (§4.7).
	ErrThroughput = 130429
	// ErrOutsideWindow is Meta's error code for a free-form message outside the CSW (§4.7).
	ErrOutsideWindow = 131047
)

// Bucket is a pair's token bucket: Units of refill (one token = PairInterval units) as of At. The
// zero Bucket (never used, or trimmed once full) is full.
type Bucket struct {
	Units int64
	At    events.UnixTime
	Set   bool // false: absent, i.e. full
}

// level is the number of units at t. Time never runs backwards for a bucket: an event older than
// the bucket's last one is taken at the bucket's time, so the outcome depends on log order only,
// which replay reproduces.
func (b Bucket) level(t events.UnixTime) int64 {
	if !b.Set {
		return pairCapacity
	}
	u := b.Units
	if t > b.At {
		u += int64(t - b.At)
	}
	return min(u, pairCapacity)
}

// Tokens is the number of whole messages the pair may send at t.
func (b Bucket) Tokens(t events.UnixTime) int64 { return b.level(t) / PairInterval }

// Take spends one token at t. ok is false when the pair would have hit 131056; then the bucket is
// unchanged except for refill (a rejected message spends nothing).
func (b Bucket) Take(t events.UnixTime) (next Bucket, ok bool) {
	at := t
	if b.Set && b.At > at {
		at = b.At
	}
	u := b.level(at)
	if u >= PairInterval {
		return Bucket{Units: u - PairInterval, At: at, Set: true}, true
	}
	return Bucket{Units: u, At: at, Set: true}, false
}

// Refund gives back one token (an undone message), capped at capacity.
func (b Bucket) Refund() Bucket {
	if !b.Set {
		return b
	}
	b.Units = min(b.Units+PairInterval, pairCapacity)
	return b
}

// FullAt is the first moment the bucket is full again: from then on it equals an absent bucket
// and can be trimmed.
func (b Bucket) FullAt() events.UnixTime {
	if !b.Set {
		return 0
	}
	return b.At + events.UnixTime(pairCapacity-b.Units)
}

// RetryAfter is how many seconds after t until the pair has a token again (0 when it has one).
func (b Bucket) RetryAfter(t events.UnixTime) int64 {
	u := b.level(t)
	if u >= PairInterval {
		return 0
	}
	return PairInterval - u
}

// encode is the bucket's Redis value "units:at"; absent is "".
func (b Bucket) encode() string {
	if !b.Set {
		return ""
	}
	var buf [48]byte // one allocation: the string
	x := strconv.AppendInt(buf[:0], b.Units, 10)
	x = append(x, ':')
	return string(strconv.AppendInt(x, int64(b.At), 10))
}

// decodeBucket parses encode's output; anything else is an absent (full) bucket.
func decodeBucket(s string) Bucket {
	u, a, ok := strings.Cut(s, ":")
	if !ok {
		return Bucket{}
	}
	units, err1 := strconv.ParseInt(u, 10, 64)
	at, err2 := strconv.ParseInt(a, 10, 64)
	if err1 != nil || err2 != nil {
		return Bucket{}
	}
	return Bucket{Units: units, At: events.UnixTime(at), Set: true}
}
