package aggregator

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/convmeter/convmeter/projections/redistest"
)

// storeContract is what every SnapshotStore must do.
func storeContract(t *testing.T, s SnapshotStore) {
	ctx := context.Background()
	if _, ok, err := s.Load(ctx, 0); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80 000 bytes
	at := time.UnixMilli(1_750_000_000_123)
	if err := s.Save(ctx, 1, Snapshot{NextOffset: 42, StreamTime: 7, Pairs: 3, TakenAt: at, Data: big}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Load(ctx, 1)
	if err != nil || !ok || got.NextOffset != 42 || got.StreamTime != 7 || got.Pairs != 3 || !got.TakenAt.Equal(at) || !bytes.Equal(got.Data, big) {
		t.Fatalf("load after save: ok %v err %v offset %d stream %d pairs %d at %v, %d bytes", ok, err, got.NextOffset, got.StreamTime, got.Pairs, got.TakenAt, len(got.Data))
	}
	// A smaller snapshot replaces it entirely.
	if err := s.Save(ctx, 1, Snapshot{NextOffset: 50, TakenAt: at, Data: []byte("small")}); err != nil {
		t.Fatal(err)
	}
	got, ok, err = s.Load(ctx, 1)
	if err != nil || !ok || got.NextOffset != 50 || string(got.Data) != "small" {
		t.Fatalf("load after replace: ok %v err %v offset %d data %q", ok, err, got.NextOffset, got.Data)
	}
	if _, ok, _ := s.Load(ctx, 0); ok {
		t.Fatal("partition 0 has partition 1's snapshot")
	}
}

func TestMemStore(t *testing.T) { storeContract(t, NewMemStore()) }

func TestRedisStore(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	s, err := NewRedisStore(rdb, prefix, "g", "topic")
	if err != nil {
		t.Fatal(err)
	}
	s.chunkBytes = 7000 // many chunks, then fewer
	storeContract(t, s)
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 { // partition 1: manifest and one chunk; the surplus chunks are gone
		t.Fatalf("keys left: %v, want a manifest and one chunk", keys)
	}
	// A damaged chunk is an error, not "no snapshot".
	_, chunk := s.keys(1)
	if err := rdb.Set(ctx, chunk(0), "smalL", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Load(ctx, 1); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("load of a damaged snapshot: %v, want ErrCorruptSnapshot", err)
	}
}
