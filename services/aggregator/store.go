package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Snapshot is one partition's engine state and the input offset it covers: the engine has
// applied every input record before NextOffset and none after.
type Snapshot struct {
	NextOffset int64
	StreamTime int64
	Pairs      int
	TakenAt    time.Time // wall clock, for the snapshot-age metric only
	Data       []byte    // window.Engine.Snapshot
}

// SnapshotStore keeps the newest snapshot of each input partition. Save replaces the partition's
// snapshot atomically: a Load sees the old one or the new one, never a mix.
type SnapshotStore interface {
	// Load returns the partition's snapshot; ok is false when there is none.
	Load(ctx context.Context, partition int) (s Snapshot, ok bool, err error)
	Save(ctx context.Context, partition int, s Snapshot) error
}

// ErrCorruptSnapshot is a stored snapshot that fails its checksum or cannot be read. The
// aggregator treats it as an error, not as "no snapshot": replaying a whole partition silently
// would hide the problem and could take hours.
var ErrCorruptSnapshot = errors.New("corrupt snapshot")

// MemStore is the in-memory SnapshotStore, for tests and single-process runs.
type MemStore struct {
	mu sync.Mutex
	m  map[int]Snapshot
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{m: map[int]Snapshot{}} }

// Load implements SnapshotStore.
func (s *MemStore) Load(_ context.Context, partition int) (Snapshot, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[partition]
	v.Data = append([]byte(nil), v.Data...)
	return v, ok, nil
}

// Save implements SnapshotStore.
func (s *MemStore) Save(_ context.Context, partition int, v Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v.Data = append([]byte(nil), v.Data...)
	s.m[partition] = v
	return nil
}

// RedisStore keeps snapshots in Redis: per partition, a manifest key and the snapshot bytes in
// chunks of at most ChunkBytes, all under one hash tag so one MULTI/EXEC replaces them together
// (and Redis Cluster keeps them in one slot).
//
//	<prefix>{<group>|<topic>|<partition>}:manifest   JSON: offsets, sizes, CRC-32C, chunk count
//	<prefix>{<group>|<topic>|<partition>}:chunk:<i>  bytes
type RedisStore struct {
	rdb        redis.UniversalClient
	base       string
	chunkBytes int
}

// DefaultChunkBytes is the chunk size of RedisStore: well under Redis's 512 MiB string limit and
// small enough not to stall the server on one command.
const DefaultChunkBytes = 8 << 20

// NewRedisStore returns a store under keyPrefix (e.g. "convmeter:aggregator:") for the
// snapshots of group's engines over topic.
func NewRedisStore(rdb redis.UniversalClient, keyPrefix, group, topic string) (*RedisStore, error) {
	if rdb == nil {
		return nil, errors.New("redis snapshot store: nil client")
	}
	if group == "" || topic == "" {
		return nil, fmt.Errorf("redis snapshot store: group %q and topic %q must both be set", group, topic)
	}
	return &RedisStore{rdb: rdb, base: keyPrefix + "{" + group + "|" + topic + "|", chunkBytes: DefaultChunkBytes}, nil
}

type manifest struct {
	V          int    `json:"v"`
	NextOffset int64  `json:"next_offset"`
	StreamTime int64  `json:"stream_time"`
	Pairs      int    `json:"pairs"`
	TakenAtMs  int64  `json:"taken_at_ms"`
	Bytes      int    `json:"bytes"`
	Chunks     int    `json:"chunks"`
	CRC32C     uint32 `json:"crc32c"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s *RedisStore) keys(p int) (manifestKey string, chunk func(i int) string) {
	b := s.base + strconv.Itoa(p) + "}:"
	return b + "manifest", func(i int) string { return b + "chunk:" + strconv.Itoa(i) }
}

// Save implements SnapshotStore: the chunks, the deletion of the previous snapshot's surplus
// chunks and the new manifest go in one MULTI/EXEC.
func (s *RedisStore) Save(ctx context.Context, p int, v Snapshot) error {
	mk, chunk := s.keys(p)
	old, _, err := s.manifest(ctx, mk)
	if err != nil {
		return fmt.Errorf("save snapshot of partition %d: %w", p, err)
	}
	n := (len(v.Data) + s.chunkBytes - 1) / s.chunkBytes
	m := manifest{V: 1, NextOffset: v.NextOffset, StreamTime: v.StreamTime, Pairs: v.Pairs, TakenAtMs: v.TakenAt.UnixMilli(),
		Bytes: len(v.Data), Chunks: n, CRC32C: crc32.Checksum(v.Data, castagnoli)}
	mb, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("save snapshot of partition %d: %w", p, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			tx.Set(ctx, chunk(i), v.Data[i*s.chunkBytes:min(len(v.Data), (i+1)*s.chunkBytes)], 0)
		}
		for i := n; i < old.Chunks; i++ {
			tx.Del(ctx, chunk(i))
		}
		tx.Set(ctx, mk, mb, 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("save snapshot of partition %d (%d bytes, next offset %d): %w", p, len(v.Data), v.NextOffset, err)
	}
	return nil
}

func (s *RedisStore) manifest(ctx context.Context, key string) (manifest, bool, error) {
	var m manifest
	b, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("get %s: %w", key, err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.V != 1 {
		return m, false, fmt.Errorf("%w: manifest %s: version %d: %w", ErrCorruptSnapshot, key, m.V, err)
	}
	return m, true, nil
}

// Load implements SnapshotStore. The manifest and chunks are read in one MULTI/EXEC after the
// manifest names the chunk count; a checksum mismatch (a Save in between) is retried once.
func (s *RedisStore) Load(ctx context.Context, p int) (Snapshot, bool, error) {
	mk, chunk := s.keys(p)
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		m, ok, err := s.manifest(ctx, mk)
		if err != nil || !ok {
			if err != nil {
				err = fmt.Errorf("load snapshot of partition %d: %w", p, err)
			}
			return Snapshot{}, false, err
		}
		var mget *redis.StringCmd
		parts := make([]*redis.StringCmd, m.Chunks)
		_, err = s.rdb.TxPipelined(ctx, func(tx redis.Pipeliner) error {
			mget = tx.Get(ctx, mk)
			for i := range parts {
				parts[i] = tx.Get(ctx, chunk(i))
			}
			return nil
		})
		if err != nil {
			return Snapshot{}, false, fmt.Errorf("load snapshot of partition %d: %w", p, err)
		}
		var again manifest
		if err := json.Unmarshal([]byte(mget.Val()), &again); err != nil || again != m {
			lastErr = fmt.Errorf("%w: partition %d: manifest changed while reading", ErrCorruptSnapshot, p)
			continue
		}
		data := make([]byte, 0, m.Bytes)
		for _, c := range parts {
			data = append(data, c.Val()...)
		}
		if len(data) != m.Bytes || crc32.Checksum(data, castagnoli) != m.CRC32C {
			lastErr = fmt.Errorf("%w: partition %d: %d bytes, manifest says %d, or checksum differs", ErrCorruptSnapshot, p, len(data), m.Bytes)
			continue
		}
		return Snapshot{NextOffset: m.NextOffset, StreamTime: m.StreamTime, Pairs: m.Pairs, TakenAt: time.UnixMilli(m.TakenAtMs), Data: data}, true, nil
	}
	return Snapshot{}, false, lastErr
}
