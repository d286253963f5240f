package replay

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrBehindLive is returned by Promote when the rebuilt namespace has not applied everything the
// live one has: promoting it would lose the live state after its high-water marks.
var ErrBehindLive = errors.New("replay: rebuilt namespace is behind the live one")

// Promote makes the rebuilt namespace the live one by renaming: every projection key under the
// live prefix is deleted and every key under the rebuilt prefix is renamed to the same name under
// the live prefix. Consumers, the query API and admission keep their configured prefix and need no
// change.
//
// Why renaming and not a pointer key: every reader (projection consumers, the query API,
// admission) is configured with a key prefix; a pointer would have to be read on every query and
// every batch. The rename keeps the key layout itself as the only contract.
//
// Preconditions, checked: for every partition and projection, the rebuilt high-water cause is at
// or after the live one (ErrBehindLive otherwise), so after the switch the live consumers, which
// resume from their committed offsets, skip what the replay already applied and lose nothing.
// Not atomic across keys: stop the projection consumers (`convmeter project …`) while promoting,
// and start them again after. Keys keep their hash tags ({p<n>}, {rl.p<n>}), so renames stay in
// one slot on Redis Cluster, except the billing partitions registry, which is copied.
func Promote(ctx context.Context, rdb redis.UniversalClient, live, rebuilt *Namespace, partitions int) (renamed int, err error) {
	if live.Prefix == rebuilt.Prefix {
		return 0, fmt.Errorf("%w: live and rebuilt are both %q", ErrBadPrefix, live.Prefix)
	}
	for i, lp := range live.Projections() {
		rp := rebuilt.Projections()[i]
		for p := int32(0); p < int32(partitions); p++ {
			a, aok, err := lp.HighWater(ctx, p)
			if err != nil {
				return 0, err
			}
			b, bok, err := rp.HighWater(ctx, p)
			if err != nil {
				return 0, err
			}
			if aok && (!bok || a.After(b)) {
				return 0, fmt.Errorf("%w: %s partition %d: live at %d:%d, rebuilt at %d:%d", ErrBehindLive, lp.Name(), p,
					a.Offset, a.Index, b.Offset, b.Index)
			}
		}
	}
	for _, prefix := range live.projectionPrefixes() {
		keys, err := scanKeys(ctx, rdb, prefix)
		if err != nil {
			return 0, err
		}
		for i := 0; i < len(keys); i += 500 {
			if err := rdb.Unlink(ctx, keys[i:min(i+500, len(keys))]...).Err(); err != nil {
				return 0, fmt.Errorf("replay: delete live keys under %s: %w", prefix, err)
			}
		}
	}
	for _, prefix := range rebuilt.projectionPrefixes() {
		keys, err := scanKeys(ctx, rdb, prefix)
		if err != nil {
			return renamed, err
		}
		for _, k := range keys {
			to := live.Prefix + strings.TrimPrefix(k, rebuilt.Prefix)
			if !strings.Contains(k, "{") { // no hash tag: may sit in another slot; copy members
				if err := copySet(ctx, rdb, k, to); err != nil {
					return renamed, err
				}
				renamed++
				continue
			}
			if err := rdb.Rename(ctx, k, to).Err(); err != nil {
				return renamed, fmt.Errorf("replay: rename %s to %s: %w", k, to, err)
			}
			renamed++
		}
	}
	return renamed, nil
}

// copySet copies a set (the billing partitions registry) to another name and deletes the source.
func copySet(ctx context.Context, rdb redis.UniversalClient, from, to string) error {
	ms, err := rdb.SMembers(ctx, from).Result()
	if err != nil {
		return fmt.Errorf("replay: read %s: %w", from, err)
	}
	if len(ms) > 0 {
		args := make([]any, len(ms))
		for i, m := range ms {
			args[i] = m
		}
		if err := rdb.SAdd(ctx, to, args...).Err(); err != nil {
			return fmt.Errorf("replay: write %s: %w", to, err)
		}
	}
	return rdb.Unlink(ctx, from).Err()
}
