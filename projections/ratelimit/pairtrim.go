package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

// Pair fields ("{rl.pN}:pr") are trimmed by the hour of their expiry: a batch lists each field it
// sets under that hour ("prt:<hour>", one RPUSH per hour), and the trim script, once the hour is
// past, deletes those of the listed fields whose value has expired by then (a field set again
// since may expire later). Until then an expired value stays, as good as absent: the reducer
// (reducer.field) and the queries (Window.OpenAt, Conversation.OpenAt) read it as such. So two
// stores with the same pair state may differ in the expired values they still hold, and in how
// their lists hold the fields: comparisons read the state through LivePairFields and skip the
// index (PairTrimIndex).
//
// Before the lists, the fields were indexed in a sorted set "prt" by expiry: a ZADD per field set,
// 124k members per 1M dense records. The lists hold the same in 10 MB less Redis memory (232 MB
// against 243 MB after a replay of 1M dense records). The CPU saved is within the 2-core VM's
// noise: `convmeter replay` of those records made 259k records/s on average against 256k in 5
// alternating runs (Redis 1.50 CPU-s against 1.54); of 3M records of month traffic, where fields
// expire and are trimmed all along, 186k against 172k in 3 runs at 13:16, and 174k against 175k in
// 3 more at 13:50 (scripts/ab-replay.sh). Stores written before keep that set until it has been
// trimmed.

// PairTrimIndex reports whether key (any prefix) is part of the pair fields' trim index: the set
// of hours "…}:prtk", an hour's list "…}:prt:<hour>", or the sorted set "…}:prt" of stores written
// before the lists.
func PairTrimIndex(key string) bool {
	i := strings.LastIndex(key, "}:")
	if i < 0 {
		return false
	}
	name := key[i+2:]
	if name == kPairIdx || name == kPairHourIdx {
		return true
	}
	h, ok := strings.CutPrefix(name, kPairHour)
	return ok && allDigits(h)
}

// PairFields reports whether key (any prefix) is a partition's pair-state hash "…}:pr".
func PairFields(key string) bool { return strings.HasSuffix(key, "}:"+kPairs) }

// LivePairFields deletes from fields, a partition's pair-state hash, the values expired at the
// partition's stream time, and returns it.
func LivePairFields(fields map[string]string, stream events.UnixTime) map[string]string {
	for f, v := range fields {
		if fieldExpiry(f, v) <= stream {
			delete(fields, f)
		}
	}
	return fields
}

// PairFieldsStream reads the stream time of the partition whose pair-state hash is key (full key,
// PairFields): the time to give LivePairFields. It is 0 for a partition that applied nothing.
func PairFieldsStream(ctx context.Context, rdb redis.UniversalClient, key string) (events.UnixTime, error) {
	meta := strings.TrimSuffix(key, kPairs) + kMeta
	st, err := rdb.HGet(ctx, meta, "st").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ratelimit: stream time in %s: %w", meta, err)
	}
	return events.UnixTime(st), nil
}
