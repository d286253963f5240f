package ratelimit

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/convmeter/convmeter/events"
)

// WithSharedState makes admission reuse, for up to ttl of wall time, what is shared by every pair
// of a scope or number and would otherwise be read from every partition on every request: the
// merged messaging-limit counter of the scope and the merged per-second counts of the number's
// current hour. The pair's own state (window, conversations, bucket) is still read fresh. With
// ttl 0 (the default) every admission reads everything and is exact as of the read; with ttl > 0
// a decision may miss deliveries applied during the last ttl, which is far below the delay with
// which Meta's delivery webhooks arrive anyway. Snapshot.Shared says which mode answered.
func WithSharedState(ttl time.Duration) Option {
	return func(s *Store) error { s.sharedTTL = ttl; return nil }
}

type sharedEntry struct {
	mu     sync.Mutex // held while loading
	loaded time.Time
	users  map[string]events.UnixTime
	latest []events.UnixTime // the users' latest deliveries, ascending
	secs   map[events.UnixTime]int64
}

type sharedCache struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

// shared returns the entry for key, loading it when older than ttl; one caller loads, the others
// wait for it.
func (s *Store) shared(key string, load func(e *sharedEntry) error) (*sharedEntry, error) {
	s.sc.mu.Lock()
	if s.sc.m == nil {
		s.sc.m = map[string]*sharedEntry{}
	}
	e, ok := s.sc.m[key]
	if !ok {
		e = &sharedEntry{}
		s.sc.m[key] = e
	}
	s.sc.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if now := s.now(); e.loaded.IsZero() || now.Sub(e.loaded) >= s.sharedTTL {
		if err := load(e); err != nil {
			return nil, err
		}
		e.loaded = now
	}
	return e, nil
}

// sharedRead fills the scope-wide and number-wide parts of snap from the shared cache.
func (s *Store) sharedRead(ctx context.Context, snap *Snapshot, sc Scope, pn, user string, t events.UnixTime) error {
	e, err := s.shared("s|"+string(sc), func(e *sharedEntry) error {
		users, err := s.scopeUsers(ctx, sc, t-s.cfg.UsageWindow)
		if err != nil {
			return err
		}
		e.users, e.latest = users, make([]events.UnixTime, 0, len(users))
		for _, l := range users {
			e.latest = append(e.latest, l)
		}
		sort.Slice(e.latest, func(i, j int) bool { return e.latest[i] < e.latest[j] })
		return nil
	})
	if err != nil {
		return err
	}
	from := t - s.cfg.LimitWindow
	i := sort.Search(len(e.latest), func(i int) bool { return e.latest[i] > from })
	snap.Used, snap.Exact = int64(len(e.latest)-i), true
	snap.UserCounted = e.users[user] > from
	if limit, limited := snap.Tier.Limit(); limited && snap.Used >= limit {
		snap.Limit.HeadroomAt = e.latest[i+int(snap.Used-limit)] + s.cfg.LimitWindow
	}
	h := hourOf(t)
	tp, err := s.shared("t|"+pn+"|"+itoa(h), func(e *sharedEntry) error {
		secs, err := s.seconds(ctx, pn, h, h)
		e.secs = secs
		return err
	})
	if err != nil {
		return err
	}
	snap.Second = tp.secs[t]
	snap.Shared = true
	return nil
}
