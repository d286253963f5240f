package ratelimit

import (
	"context"
	"errors"
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
//
// It is not free: each reload reads the whole scope (every counted user of the last 7 days, from
// every partition). Measured with 12 partitions and scopes of 5,000 users it cost more Redis and
// Go time than it saved, because the exact read is only three cheap commands per partition. It
// pays off for many partitions and small scopes; the default is off.
func WithSharedState(ttl time.Duration) Option {
	return func(s *Store) error { s.sharedTTL = ttl; return nil }
}

type sharedEntry struct {
	mu         sync.Mutex
	loaded     time.Time // when the last load finished; zero: never
	refreshing bool
	ready      chan struct{} // closed when the first load finished
	data       *sharedData
}

// sharedData is one immutable load.
type sharedData struct {
	users  map[string]events.UnixTime
	latest []events.UnixTime // the users' latest deliveries, ascending
	secs   map[events.UnixTime]int64
}

type sharedCache struct {
	mu sync.Mutex
	m  map[string]*sharedEntry
}

// shared returns the data for key. The first caller loads it and the others wait for that load;
// afterwards, once it is older than the TTL, one caller reloads it while the others keep using
// the previous load, so a slow reload never queues requests behind it.
func (s *Store) shared(key string, load func() (*sharedData, error)) (*sharedData, error) {
	s.sc.mu.Lock()
	if s.sc.m == nil {
		s.sc.m = map[string]*sharedEntry{}
	}
	e, ok := s.sc.m[key]
	if !ok {
		e = &sharedEntry{ready: make(chan struct{})}
		s.sc.m[key] = e
	}
	s.sc.mu.Unlock()

	e.mu.Lock()
	data, stale, ready := e.data, e.loaded.IsZero() || s.now().Sub(e.loaded) >= s.sharedTTL, e.ready
	if !stale || e.refreshing {
		e.mu.Unlock()
		if data != nil {
			return data, nil
		}
		<-ready // the first load is under way
		e.mu.Lock()
		data = e.data
		e.mu.Unlock()
		if data == nil {
			return nil, errors.New("ratelimit: shared state failed to load")
		}
		return data, nil
	}
	e.refreshing = true
	e.mu.Unlock()

	fresh, err := load()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refreshing = false
	first := e.data == nil
	if err == nil {
		e.data, e.loaded = fresh, s.now()
	}
	if first {
		close(e.ready)
		if e.data == nil {
			e.ready = make(chan struct{}) // a failed first load: the next caller tries again
		}
	}
	if err != nil {
		if data != nil {
			return data, nil // keep serving the previous load
		}
		return nil, err
	}
	return fresh, nil
}

// sharedRead fills the scope-wide and number-wide parts of snap from the shared cache.
func (s *Store) sharedRead(ctx context.Context, snap *Snapshot, sc Scope, pn, user string, t events.UnixTime) error {
	e, err := s.shared("s|"+string(sc), func() (*sharedData, error) {
		users, err := s.scopeUsers(ctx, sc, t-s.cfg.UsageWindow)
		if err != nil {
			return nil, err
		}
		d := &sharedData{users: users, latest: make([]events.UnixTime, 0, len(users))}
		for _, l := range users {
			d.latest = append(d.latest, l)
		}
		sort.Slice(d.latest, func(i, j int) bool { return d.latest[i] < d.latest[j] })
		return d, nil
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
	tp, err := s.shared("t|"+pn+"|"+itoa(h), func() (*sharedData, error) {
		secs, err := s.seconds(ctx, pn, h, h)
		return &sharedData{secs: secs}, err
	})
	if err != nil {
		return err
	}
	snap.Second = tp.secs[t]
	snap.Shared = true
	return nil
}
