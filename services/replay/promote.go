package replay

import (
	"context"
	"errors"
	"fmt"
	"sort"
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
// Stop the projection consumers (`convmeter project …`) while promoting, and start them again
// after.
//
// Crash safety: a projection's state for one partition (its data and its high-water mark) lives
// under one hash tag ({p<n>}, {rl.p<n>}), and each tag is switched in one MULTI/EXEC (the live
// keys unlinked, the rebuilt ones renamed), so every partition of every projection is wholly
// live or wholly rebuilt at any instant, and consistent either way. A marker key under the
// rebuilt prefix records a promote in progress; running Promote again after an interruption
// finishes it: the tags already switched have no rebuilt keys left and are kept as they are. The
// one key without a hash tag (the billing partitions registry) is merged last; it only lists
// partitions.
func Promote(ctx context.Context, rdb redis.UniversalClient, live, rebuilt *Namespace, partitions int) (renamed int, err error) {
	if live.Prefix == rebuilt.Prefix {
		return 0, fmt.Errorf("%w: live and rebuilt are both %q", ErrBadPrefix, live.Prefix)
	}
	marker := promoteMarker(rebuilt)
	n, err := rdb.Exists(ctx, marker).Result()
	if err != nil {
		return 0, fmt.Errorf("replay: read %s: %w", marker, err)
	}
	resuming := n == 1
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
			if resuming && !bok {
				continue // switched before the interruption
			}
			if aok && (!bok || a.After(b)) {
				return 0, fmt.Errorf("%w: %s partition %d: live at %d:%d, rebuilt at %d:%d", ErrBehindLive, lp.Name(), p,
					a.Offset, a.Index, b.Offset, b.Index)
			}
		}
	}
	if err := rdb.Set(ctx, marker, live.Prefix, 0).Err(); err != nil {
		return 0, fmt.Errorf("replay: write %s: %w", marker, err)
	}
	lprefixes, rprefixes := live.projectionPrefixes(), rebuilt.projectionPrefixes()
	var untagged []string
	for i := range rprefixes {
		lkeys, err := scanKeys(ctx, rdb, lprefixes[i])
		if err != nil {
			return renamed, err
		}
		rkeys, err := scanKeys(ctx, rdb, rprefixes[i])
		if err != nil {
			return renamed, err
		}
		ltags, rtags := byTag(lkeys), byTag(rkeys)
		untagged = append(untagged, rtags[""]...)
		delete(ltags, "")
		delete(rtags, "")
		for _, tag := range unionKeysOf(ltags, rtags) {
			if len(rtags[tag]) == 0 && resuming {
				continue // switched before the interruption: these live keys are the rebuilt ones
			}
			if err := promoteHook(tag); err != nil {
				return renamed, err
			}
			_, err := rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
				if ks := ltags[tag]; len(ks) > 0 {
					pipe.Unlink(ctx, ks...)
				}
				for _, k := range rtags[tag] {
					pipe.Rename(ctx, k, live.Prefix+strings.TrimPrefix(k, rebuilt.Prefix))
				}
				return nil
			})
			if err != nil {
				return renamed, fmt.Errorf("replay: switch %s to the rebuilt keys: %w", tag, err)
			}
			renamed += len(rtags[tag])
		}
	}
	for _, k := range untagged { // no hash tag: may sit in another slot; merge the members
		if err := copySet(ctx, rdb, k, live.Prefix+strings.TrimPrefix(k, rebuilt.Prefix)); err != nil {
			return renamed, err
		}
		renamed++
	}
	if err := forget(ctx, rdb, live, rebuilt); err != nil {
		return renamed, err
	}
	if err := rdb.Del(ctx, marker).Err(); err != nil {
		return renamed, fmt.Errorf("replay: delete %s: %w", marker, err)
	}
	return renamed, nil
}

// promoteHook runs before each tag is switched; tests interrupt a promote with it.
var promoteHook = func(tag string) error { return nil }

// promoteMarker is the key that records a promote of ns in progress.
func promoteMarker(ns *Namespace) string { return ns.Prefix + "promoting" }

// Promoting reports whether a promote of ns was interrupted: run Promote again to finish it.
func Promoting(ctx context.Context, rdb redis.UniversalClient, ns *Namespace) (bool, error) {
	n, err := rdb.Exists(ctx, promoteMarker(ns)).Result()
	if err != nil {
		return false, fmt.Errorf("replay: read %s: %w", promoteMarker(ns), err)
	}
	return n == 1, nil
}

// byTag groups keys by their hash tag (the text between the first "{" and the next "}"); keys
// without one are under "".
func byTag(keys []string) map[string][]string {
	m := map[string][]string{}
	for _, k := range keys {
		tag := ""
		if i := strings.IndexByte(k, '{'); i >= 0 {
			if j := strings.IndexByte(k[i:], '}'); j > 1 {
				tag = k[i : i+j+1]
			}
		}
		m[tag] = append(m[tag], k)
	}
	return m
}

// unionKeysOf lists the keys of a and b, each once, sorted.
func unionKeysOf[A, B any](a map[string]A, b map[string]B) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
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
