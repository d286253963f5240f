package ratelimit

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/events"
)

type admQuery struct {
	pn, user string
	t        events.UnixTime
}

// batchFixture applies random logs to three partitions and lists queries over them: both numbers,
// users counted or not, several seconds of one hour and of the hour before, the same query
// twice.
func batchFixture(t *testing.T) (*Store, *Store, []admQuery) {
	t.Helper()
	rdb, ns := client(t)
	single, err := NewStore(rdb, WithNamespace(ns), WithPartitions(3), WithAdmissionBatching(false))
	if err != nil {
		t.Fatal(err)
	}
	batched, err := NewStore(rdb, WithNamespace(ns), WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	var end events.UnixTime
	var qs []admQuery
	for p := range int32(3) {
		l := randomLog(p, 11, 700)
		applyInBatches(t, single, l, 200)
		end = max(end, l.evs[len(l.evs)-1].Time)
		for _, e := range l.evs[len(l.evs)-30:] { // the seconds of the last messages
			if d, ok := e.Data.(*events.MessageDispatched); ok {
				qs = append(qs, admQuery{d.PhoneNumberID, d.User, e.Time})
			}
		}
	}
	for _, at := range []events.UnixTime{end, end - 1, end - 7, end - Hour, end - 3*Hour} {
		for _, pn := range []string{"n1", "n2"} {
			for u := range 42 {
				qs = append(qs, admQuery{pn, fmt.Sprintf("u%d", u), at})
			}
		}
	}
	qs = append(qs, qs[3], qs[100], qs[3])
	return single, batched, qs
}

// TestMergedReadEqualsSingle: reading many admissions in one merged pipeline (shared ZCOUNTs,
// ZMSCORE and HMGET fields merged per key) answers each exactly as reading it alone.
func TestMergedReadEqualsSingle(t *testing.T) {
	single, batched, qs := batchFixture(t)
	ctx := context.Background()
	// With the shared state on, only the pair's own fields are read per admission.
	sharedSingle, err := NewStore(single.rdb, WithNamespace(single.ns), WithPartitions(3), WithSharedState(time.Second), WithAdmissionBatching(false))
	if err != nil {
		t.Fatal(err)
	}
	sharedBatched, err := NewStore(single.rdb, WithNamespace(single.ns), WithPartitions(3), WithSharedState(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, stores := range [][2]*Store{{single, batched}, {sharedSingle, sharedBatched}} {
		mergedEqualsSingle(ctx, t, stores[0], stores[1], qs)
	}
}

func mergedEqualsSingle(ctx context.Context, t *testing.T, single, batched *Store, qs []admQuery) {
	t.Helper()
	for _, size := range []int{2, 7, len(qs)} {
		for start := 0; start < len(qs); start += size {
			var rs []*admRead
			for _, q := range qs[start:min(start+size, len(qs))] {
				sc, _, _, err := batched.ScopeOf(ctx, q.pn, q.t)
				if err != nil {
					t.Fatal(err)
				}
				rs = append(rs, batched.newAdmRead(sc, q.pn, q.user, q.t))
			}
			if err := batched.readMerged(ctx, rs); err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				var got Snapshot
				r.fill(&got, batched.cfg)
				var want Snapshot
				if err := single.admissionRead(ctx, &want, single.newAdmRead(r.sc, r.pn, r.user, r.t)); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("batch of %d, %d (%s %s %d):\n got %+v\nwant %+v", size, i, r.pn, r.user, r.t, got, want)
				}
			}
		}
	}
}

// TestBatchedAdmissionsEqualSingle: admissions asked concurrently (their reads batched while
// another is in flight) answer as the same admissions asked one at a time.
func TestBatchedAdmissionsEqualSingle(t *testing.T) {
	single, batched, qs := batchFixture(t)
	ctx := context.Background()
	want := make([]Snapshot, len(qs))
	for i, q := range qs {
		var err error
		if want[i], err = single.Admission(ctx, q.pn, q.user, q.t); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	const callers = 96 // more than maxBatch at once: some batches are split
	errs := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range len(qs) / 8 {
				i := (k*7 + g*13) % len(qs)
				got, err := batched.Admission(ctx, qs[i].pn, qs[i].user, qs[i].t)
				if err != nil {
					errs <- err
					return
				}
				if !reflect.DeepEqual(got, want[i]) {
					errs <- fmt.Errorf("%+v:\n got %+v\nwant %+v", qs[i], got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The last batch's goroutine lets go of the batcher once it finds the queue empty.
	b := &batched.batch
	for range 5000 {
		b.mu.Lock()
		busy, queued := b.busy, len(b.queue)
		b.mu.Unlock()
		if !busy && queued == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if b.busy || len(b.queue) != 0 {
		t.Errorf("batcher left busy=%v with %d queued", b.busy, len(b.queue))
	}
	var counted, second, bucket, window, conv int
	for _, w := range want {
		counted += b2i(w.UserCounted)
		second += b2i(w.Second > 0)
		bucket += b2i(w.Pair.Bucket.Set)
		window += b2i(w.Pair.WindowKnown)
		conv += b2i(len(w.Pair.Conversations) > 0)
	}
	if counted == 0 || second == 0 || bucket == 0 || window == 0 || conv == 0 {
		t.Errorf("fixture too thin: %d counted, %d with a second, %d buckets, %d windows, %d conversations", counted, second, bucket, window, conv)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestPartKeys: the remembered keys are the key under each partition's prefix, also after the
// memory was dropped for holding too many.
func TestPartKeys(t *testing.T) {
	s, err := NewStore(redis.NewClient(&redis.Options{}), WithNamespace("ns:"), WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		key := fmt.Sprintf("tp:n%d:%d", i%5000, i)
		for range 2 {
			ks := s.partKeys(key)
			if len(ks) != 3 || ks[0] != "ns:{rl.p0}:"+key || ks[2] != "ns:{rl.p2}:"+key {
				t.Fatalf("%s: %q", key, ks)
			}
		}
	}
}
