package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

// Manifest records what a replay into a namespace is: the log it reads, up to which offsets, with
// which engine settings and rate cards, and whether it finished. Rebuild writes it before the
// first batch, so a replay that was interrupted (killed, out of memory, Ctrl-C) leaves a namespace
// that says what it is: Rebuild with resume continues it, Drop deletes it, List finds it.
//
// It is stored as JSON at "<prefix>replay", outside the projections' key prefixes: Compare and
// Promote never see it, and Promote deletes it once the namespace is live.
type Manifest struct {
	Version    int             `json:"version"`
	Topic      string          `json:"topic"`
	Partitions int             `json:"partitions"`
	From       events.UnixTime `json:"from,omitempty"`
	To         events.UnixTime `json:"to,omitempty"`
	// LatenessSeconds is the engines' allowed lateness (0: the engine's default).
	LatenessSeconds int64 `json:"lateness_seconds"`
	// RateCards is the digest of the rate cards the lines are priced with (ratecard.Book.Digest).
	RateCards string `json:"rate_cards"`
	// First and End are each partition's first offset and high-water mark captured when the
	// replay started: a resumed replay reads the same records, whatever was produced since.
	First []int64 `json:"first"`
	End   []int64 `json:"end"`
	// Started and Finished are wall-clock times, for people; nothing is computed from them.
	Started  time.Time `json:"started"`
	Done     bool      `json:"done"`
	Finished time.Time `json:"finished,omitzero"`
}

const manifestVersion = 1

// Errors of Rebuild and Drop.
var (
	// ErrNothingToResume: the namespace has no manifest (never replayed into, or by a
	// convmeter older than resumable replays).
	ErrNothingToResume = errors.New("replay: nothing to resume")
	// ErrResumeMismatch: the resumed replay would not rebuild what the interrupted one started.
	ErrResumeMismatch = errors.New("replay: cannot resume with other settings")
	// ErrLogTruncated: retention deleted records the interrupted replay had read.
	ErrLogTruncated = errors.New("replay: the log lost records since the replay started")
)

// manifestKey is where ns's manifest lives.
func manifestKey(ns *Namespace) string { return ns.Prefix + "replay" }

// registryKey is the set of the namespaces replayed beside live and not yet dropped or promoted.
func registryKey(live *Namespace) string { return live.Prefix + "replays" }

// ReadManifest returns ns's manifest, and false when it has none.
func ReadManifest(ctx context.Context, rdb redis.UniversalClient, ns *Namespace) (Manifest, bool, error) {
	var m Manifest
	b, err := rdb.Get(ctx, manifestKey(ns)).Bytes()
	if errors.Is(err, redis.Nil) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("replay: read the manifest of %s: %w", ns.Prefix, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("replay: the manifest of %s (%s): %w", ns.Prefix, manifestKey(ns), err)
	}
	return m, true, nil
}

func writeManifest(ctx context.Context, rdb redis.UniversalClient, ns *Namespace, m Manifest) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := rdb.Set(ctx, manifestKey(ns), b, 0).Err(); err != nil {
		return fmt.Errorf("replay: write the manifest of %s: %w", ns.Prefix, err)
	}
	return nil
}

// Rebuild replays into target (Run) and keeps its manifest and live's registry of replays. A
// fresh replay needs an empty target without a manifest; it captures the log's offsets, records
// them with the settings (cfg, the target's rate cards) before the first batch, and marks the
// manifest done at the end.
//
// With resume, target must hold the manifest of a replay with the same topic, partitions, time
// range, lateness and rate cards (ErrResumeMismatch names what differs). The engines read the log
// again from the start, up to the recorded offsets, since their state is not stored; the outputs
// every projection had already applied are dropped before they are batched, and each projection
// skips the rest of what it had applied (its high-water mark). Batches cut at other places change
// nothing: each projection's state is independent of batch boundaries. A finished replay is not
// run again (Stats.AlreadyComplete).
func Rebuild(ctx context.Context, rdb redis.UniversalClient, cfg Config, live, target *Namespace, resume bool, log *slog.Logger) (Stats, error) {
	if live.Prefix == target.Prefix {
		return Stats{}, fmt.Errorf("%w: rebuilding into the live namespace %q", ErrBadPrefix, live.Prefix)
	}
	m, found, err := ReadManifest(ctx, rdb, target)
	if err != nil {
		return Stats{}, err
	}
	want := Manifest{Version: manifestVersion, Topic: cfg.Topic, From: cfg.From, To: cfg.To,
		LatenessSeconds: int64(cfg.Engine.Lateness / time.Second), RateCards: target.Book.Digest()}
	if want.Partitions, err = partitionCount(ctx, cfg); err != nil {
		return Stats{}, err
	}
	if !resume {
		if found {
			return Stats{}, fmt.Errorf("%w: %s holds a replay (resume it, or drop it)", ErrNotFresh, target.Prefix)
		}
		if empty, err := target.Empty(ctx, rdb); err != nil {
			return Stats{}, err
		} else if !empty {
			return Stats{}, fmt.Errorf("%w: %s", ErrNotFresh, target.Prefix)
		}
		if want.First, want.End, err = captureOffsets(ctx, cfg, want.Partitions); err != nil {
			return Stats{}, err
		}
		want.Started = time.Now().UTC()
		if err := writeManifest(ctx, rdb, target, want); err != nil {
			return Stats{}, err
		}
		if err := rdb.SAdd(ctx, registryKey(live), target.Prefix).Err(); err != nil {
			return Stats{}, fmt.Errorf("replay: register %s: %w", target.Prefix, err)
		}
		m = want
	} else {
		if !found {
			return Stats{}, fmt.Errorf("%w in %s: no replay manifest (%s)", ErrNothingToResume, target.Prefix, manifestKey(target))
		}
		if err := resumable(m, want); err != nil {
			return Stats{}, err
		}
		if m.Done {
			log.Info("replay: already complete, nothing to resume", "namespace", target.Prefix, "finished", m.Finished)
			return Stats{Partitions: m.Partitions, HighWater: m.End, First: m.First, Resumed: true, AlreadyComplete: true}, nil
		}
		log.Info("replay: resuming", "namespace", target.Prefix, "started", m.Started)
	}
	warnRetention(log, cfg.Topic, m.First)
	cfg.First, cfg.End = m.First, m.End
	st, err := Run(ctx, cfg, target, log)
	st.Resumed = resume
	if err != nil {
		return st, err
	}
	m.Done, m.Finished = true, time.Now().UTC()
	return st, writeManifest(ctx, rdb, target, m)
}

// resumable says why a replay of want cannot resume the one recorded in m, if it cannot.
func resumable(m, want Manifest) error {
	var why []string
	if m.Version != manifestVersion {
		why = append(why, fmt.Sprintf("manifest version %d, this convmeter writes %d", m.Version, manifestVersion))
	}
	if m.Topic != want.Topic {
		why = append(why, fmt.Sprintf("topic %q, not %q", m.Topic, want.Topic))
	}
	if m.Partitions != want.Partitions || len(m.First) != m.Partitions || len(m.End) != m.Partitions {
		why = append(why, fmt.Sprintf("%d partitions recorded, the topic has %d", m.Partitions, want.Partitions))
	}
	if m.From != want.From || m.To != want.To {
		why = append(why, fmt.Sprintf("time range [%d, %d), not [%d, %d)", m.From, m.To, want.From, want.To))
	}
	if m.LatenessSeconds != want.LatenessSeconds {
		why = append(why, fmt.Sprintf("lateness %ds, not %ds", m.LatenessSeconds, want.LatenessSeconds))
	}
	if m.RateCards != want.RateCards {
		why = append(why, fmt.Sprintf("other rate cards (digest %.12s, these are %.12s)", m.RateCards, want.RateCards))
	}
	if len(why) > 0 {
		return fmt.Errorf("%w: the interrupted replay had %v", ErrResumeMismatch, why)
	}
	return nil
}

// Listed is one replay namespace beside a live one.
type Listed struct {
	Prefix    string   `json:"prefix"`
	Manifest  Manifest `json:"manifest"`
	Promoting bool     `json:"promoting"` // a promote of it was interrupted: finish it
}

// List returns the replays into namespaces beside live that were neither promoted nor dropped,
// by prefix.
func List(ctx context.Context, rdb redis.UniversalClient, live *Namespace) ([]Listed, error) {
	prefixes, err := rdb.SMembers(ctx, registryKey(live)).Result()
	if err != nil {
		return nil, fmt.Errorf("replay: read %s: %w", registryKey(live), err)
	}
	sort.Strings(prefixes)
	out := make([]Listed, 0, len(prefixes))
	for _, p := range prefixes {
		ns := &Namespace{Prefix: p}
		m, found, err := ReadManifest(ctx, rdb, ns)
		if err != nil {
			return nil, err
		}
		promoting, err := Promoting(ctx, rdb, ns)
		if err != nil {
			return nil, err
		}
		if !found && !promoting {
			continue // dropped or promoted by hand meanwhile
		}
		out = append(out, Listed{Prefix: p, Manifest: m, Promoting: promoting})
	}
	return out, nil
}

// Drop deletes the namespace target (an interrupted or unwanted replay): every projection key,
// its manifest and its registry entry. It refuses the live namespace and a namespace whose
// promote was interrupted (finish that promote instead: half the live partitions are its keys).
func Drop(ctx context.Context, rdb redis.UniversalClient, live, target *Namespace) (keys int, err error) {
	if err := checkPrefix(target.Prefix); err != nil {
		return 0, err
	}
	if target.Prefix == live.Prefix {
		return 0, fmt.Errorf("%w: refusing to drop the live namespace %q", ErrBadPrefix, live.Prefix)
	}
	if promoting, err := Promoting(ctx, rdb, target); err != nil {
		return 0, err
	} else if promoting {
		return 0, fmt.Errorf("replay: a promote of %s was interrupted: finish it (promote again) rather than drop it", target.Prefix)
	}
	for _, p := range target.projectionPrefixes() {
		ks, err := scanKeys(ctx, rdb, p)
		if err != nil {
			return keys, err
		}
		for i := 0; i < len(ks); i += 1000 {
			// One key per command: the keys of a namespace span hash slots on Redis Cluster.
			_, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
				for _, k := range ks[i:min(i+1000, len(ks))] {
					pipe.Unlink(ctx, k)
				}
				return nil
			})
			if err != nil {
				return keys, fmt.Errorf("replay: drop %s: %w", target.Prefix, err)
			}
			keys += min(i+1000, len(ks)) - i
		}
	}
	return keys, forget(ctx, rdb, live, target)
}

// forget removes target's manifest and registry entry.
func forget(ctx context.Context, rdb redis.UniversalClient, live, target *Namespace) error {
	if err := rdb.Del(ctx, manifestKey(target)).Err(); err != nil {
		return fmt.Errorf("replay: delete the manifest of %s: %w", target.Prefix, err)
	}
	if err := rdb.SRem(ctx, registryKey(live), target.Prefix).Err(); err != nil {
		return fmt.Errorf("replay: unregister %s: %w", target.Prefix, err)
	}
	return nil
}
