package redistest_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/projections/redistest"
)

func TestPrefix(t *testing.T) {
	a, b := redistest.Prefix(t), redistest.Prefix(t)
	if a == b {
		t.Fatalf("equal prefixes %q", a)
	}
	if strings.ContainsAny(a, "{}*?[]") || !strings.HasPrefix(a, "t:TestPrefix:") || !strings.HasSuffix(a, ":") {
		t.Fatalf("prefix %q: want t:<test>:<rand>: without braces or glob characters", a)
	}
}

func TestClientIsolatesAndCleansUp(t *testing.T) {
	ctx := context.Background()
	var keys []string
	var outside string
	t.Run("writer", func(t *testing.T) {
		rc, prefix := redistest.Client(t)
		for i := range 2500 { // more than one SCAN page
			k := prefix + "ledger:{106540352242922/" + strconv.Itoa(i) + "}"
			keys = append(keys, k)
		}
		pipe := rc.Pipeline()
		for _, k := range keys {
			pipe.Set(ctx, k, 1, 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		outside = "x" + prefix + "kept"
		if err := rc.Set(ctx, outside, 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := rc.Exists(ctx, keys[0], keys[len(keys)-1]).Result(); err != nil || n != 2 {
			t.Fatalf("keys not written: %d %v", n, err)
		}
	})
	rc, _ := redistest.Client(t)
	n, err := rc.Exists(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d of %d keys left after the test ended", n, len(keys))
	}
	if n, err := rc.Exists(ctx, outside).Result(); err != nil || n != 1 {
		t.Fatalf("key outside the prefix deleted: exists %d, %v", n, err)
	}
	if _, err := redistest.DeletePrefix(ctx, rc, outside); err != nil {
		t.Fatal(err)
	}
}

func TestServerCPUCounts(t *testing.T) {
	rdb, _ := redistest.Client(t)
	if redistest.ServerCPU(t, rdb) <= 0 {
		t.Fatal("a running Redis server has used some CPU")
	}
}

func TestNoteOccupancyCounts(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	// Other packages' tests share the server: only lower bounds hold.
	if err := rdb.Set(context.Background(), prefix+"big", strings.Repeat("x", 4<<20), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if keys, bytes := redistest.NoteOccupancy(t, rdb); keys < 1 || bytes < 4<<20 {
		t.Fatalf("after a 4 MB key: %d keys, %d bytes", keys, bytes)
	}
}
