package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

// Overview queries for dashboards: which numbers are configured, how far the projection has got
// in event time, and how many windows and conversations are open now. They read the keys Apply
// writes and change nothing. OpenPairs walks every live pair field, so it costs O(live pairs):
// fine for a dashboard refreshing every few seconds over a development or mid-size deployment,
// not for the admission hot path.

// StreamTime returns the largest event time the projection has applied over all partitions, and
// false when no partition has applied anything yet.
func (s *Store) StreamTime(ctx context.Context) (events.UnixTime, bool, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, s.partitions)
	for p := range s.partitions {
		cmds[p] = pipe.HGet(ctx, s.prefix(int32(p))+kMeta, "st")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, false, fmt.Errorf("ratelimit: read stream time: %w", err)
	}
	var st events.UnixTime
	found := false
	for p, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return 0, false, fmt.Errorf("ratelimit: read stream time of partition %d: %w", p, err)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("ratelimit: partition %d: bad stream time %q", p, v)
		}
		if !found || events.UnixTime(n) > st {
			st, found = events.UnixTime(n), true
		}
	}
	return st, found, nil
}

// Numbers returns the configuration at t of every number an account.config event has named,
// ordered by phone number id.
func (s *Store) Numbers(ctx context.Context, t events.UnixTime) ([]NumberConfig, error) {
	ms, err := s.accounts(ctx, "cfg"+sep)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var ids []string
	for _, m := range ms {
		rest, _ := strings.CutPrefix(m, "cfg"+sep)
		pn, _, ok := strings.Cut(rest, sep)
		if ok && pn != "" && !seen[pn] {
			seen[pn] = true
			ids = append(ids, pn)
		}
	}
	sort.Strings(ids)
	out := make([]NumberConfig, 0, len(ids))
	for _, pn := range ids {
		nc, ok := ConfigAt(pn, ms, t)
		if !ok {
			// Every config starts after t: report the earliest, as NumberConfig does for admission.
			nc, _ = ConfigAt(pn, ms, events.UnixTime(1<<62))
		}
		out = append(out, nc)
	}
	return out, nil
}

// OpenCounts is what is open for one phone number at a moment.
type OpenCounts struct {
	// Windows is the number of pairs whose customer service window is open.
	Windows int64 `json:"windows_open"`
	// Conversations counts open conversations (CBP conversations and free-entry-point windows)
	// per category.
	Conversations map[events.Category]int64 `json:"conversations_open"`
}

// OpenPairs counts, per phone number, the service windows and conversations open at t, merged
// over all partitions. Numbers with nothing open are absent. It walks each partition's pair
// fields with HSCAN, so Redis is never blocked for long, but the work (and the memory to drop
// the duplicates HSCAN may return) is O(live pairs). Fields that change during the walk may be
// read before or after the change.
func (s *Store) OpenPairs(ctx context.Context, t events.UnixTime) (map[string]OpenCounts, error) {
	out := map[string]OpenCounts{}
	count := func(f, v string) {
		pair, kind, ok := strings.Cut(f, sep)
		if !ok {
			return
		}
		pn, _, ok := events.SplitPairKey(pair)
		if !ok {
			return
		}
		oc, seen := out[pn]
		if !seen {
			oc = OpenCounts{Conversations: map[events.Category]int64{}}
		}
		switch {
		case kind == "w":
			if w, ok := decodeWindow(v); ok && w.OpenAt(t) {
				oc.Windows++
				out[pn] = oc
			}
		case strings.HasPrefix(kind, "c"+sep):
			cat := events.Category(strings.TrimPrefix(kind, "c"+sep))
			if cv, ok := decodeConversation(cat, v); ok && cv.OpenAt(t) {
				oc.Conversations[cat]++
				out[pn] = oc
			}
		}
	}
	for p := range s.partitions {
		key := s.prefix(int32(p)) + kPairs
		seen := map[string]bool{} // HSCAN may return a field twice while the hash is resized
		var cursor uint64
		for {
			kv, next, err := s.rdb.HScan(ctx, key, cursor, "", 2000).Result()
			if err != nil {
				return nil, fmt.Errorf("ratelimit: scan pair state of partition %d: %w", p, err)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if !seen[kv[i]] {
					seen[kv[i]] = true
					count(kv[i], kv[i+1])
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
	}
	return out, nil
}
