package ratelimit

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections"
)

func TestUndoLogEntries(t *testing.T) {
	type entry struct {
		id, val string
		del     bool
	}
	in := []entry{{"a", "\x02s1", false}, {"bb", "", true}, {"a", "\x02s2", false}, {strings.Repeat("c", 300), strings.Repeat("v", 200), false}, {"", "", false}}
	var log []byte
	for _, e := range in {
		log = appendUndoEntry(log, e.id, e.val, e.del)
	}
	var got []entry
	if err := scanUndoLog(string(log), func(id, val string, del bool) { got = append(got, entry{id, val, del}) }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(in) {
		t.Fatalf("scanned %v, appended %v", got, in)
	}
	for n := 1; n < len(log); n++ {
		err := scanUndoLog(string(log[:len(log)-n]), func(string, string, bool) {})
		if cut := len(log) - n; err == nil && cut != 0 && !entryBoundary(log, cut) {
			t.Errorf("a log cut to %d bytes scanned without an error", cut)
		}
	}
	recs := map[string]string{"bb": "\x02d-from-the-hash", "h": "\x02kept"}
	if hour, ok := UndoLogHour("ns:ratelimit:{rl.p3}:fx:4711:12"); !ok || hour != "ns:ratelimit:{rl.p3}:fx:4711" {
		t.Fatalf("UndoLogHour: %q %v", hour, ok)
	}
	if err := ApplyUndoLog(string(log), recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs["a"] != "\x02s2" || recs[""] != "" || recs["h"] != "\x02kept" {
		t.Errorf("records %q: the last entry of an id stands, a deletion deletes the hash's record", recs)
	}
	for _, k := range []string{"ns:{rl.p3}:fx:4711", "ns:{rl.p3}:fxk", "ns:{rl.p3}:fx:47a:1", "ns:{rl.p3}:pb:1:2"} {
		if _, ok := UndoLogHour(k); ok {
			t.Errorf("%s read as an undo log", k)
		}
	}
}

// entryBoundary reports whether log[:n] ends where an entry ends.
func entryBoundary(log []byte, n int) bool {
	ends := map[int]bool{}
	i := 0
	_ = scanUndoLog(string(log), func(id, val string, del bool) {
		i += len(appendUndoEntry(nil, id, val, del))
		ends[i] = true
	})
	return ends[n]
}

func FuzzUndoLog(f *testing.F) {
	f.Add([]byte(appendUndoEntry(appendUndoEntry(nil, "id", "\x02rec", false), "id", "", true)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{3, 'a', 'b'})
	f.Fuzz(func(t *testing.T, log []byte) {
		// Any bytes: entries or an error, never a panic; the entries re-encoded scan the same.
		var again []byte
		var first []string
		err := scanUndoLog(string(log), func(id, val string, del bool) {
			again = appendUndoEntry(again, id, val, del)
			first = append(first, fmt.Sprintf("%q %q %v", id, val, del))
		})
		if err != nil {
			return
		}
		var second []string
		if err := scanUndoLog(string(again), func(id, val string, del bool) {
			second = append(second, fmt.Sprintf("%q %q %v", id, val, del))
		}); err != nil || fmt.Sprint(first) != fmt.Sprint(second) {
			t.Fatalf("%x: entries %v re-encoded scan as %v (%v)", log, first, second, err)
		}
	})
}

func TestUndoBucketsMatchTheTrimScript(t *testing.T) {
	if want := fmt.Sprintf("UNDO_BUCKETS = %d ", undoBuckets); !strings.Contains(applyLua, want) {
		t.Fatalf("apply.lua does not say %q", want)
	}
}

// TestUndoReadsHashesWrittenBefore: a store written before the logs holds its undo records in
// one hash per hour; a correction of such an output still undoes it, and a record logged after
// it in the same hour stands over it.
func TestUndoReadsHashesWrittenBefore(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	d1 := l.delivered("n1", "pf1", "u1", tPFEra, false)
	d2 := l.delivered("n1", "pf1", "u2", tPFEra+60, false)
	apply(t, s, l.batch())
	// Rewrite the logs as the hashes of before.
	pfx := s.prefix(0)
	keys, err := rdb.Keys(ctx, pfx+kUndo+"*:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("undo logs: %v %v", keys, err)
	}
	for _, k := range keys {
		hour, ok := UndoLogHour(k)
		recs := map[string]string{}
		for _, e := range rdb.LRange(ctx, k, 0, -1).Val() {
			if err := ApplyUndoLog(e, recs); !ok || err != nil {
				t.Fatalf("%s: %v %v", k, ok, err)
			}
		}
		for id, r := range recs {
			rdb.HSet(ctx, hour, id, r)
		}
		rdb.Del(ctx, k)
	}
	if n, _ := rdb.HLen(ctx, pfx+undoKey(tPFEra)).Result(); n != 2 {
		t.Fatalf("the hour's hash holds %d records, want 2", n)
	}
	// Each step is a batch after the last; used is the portfolio's count an hour in.
	off := l.off
	step := func(add func(l *log)) {
		l := &log{off: off}
		add(l)
		apply(t, s, l.batch())
		off = l.off
	}
	retract := func(key, id string, at events.UnixTime) func(*log) {
		return func(l *log) { l.add(&events.Correction{Key: key, Retracts: []string{id}}, at) }
	}
	used := func() int64 {
		st, err := s.Limit(ctx, PortfolioScope("pf1"), tPFEra+Hour)
		if err != nil {
			t.Fatal(err)
		}
		return st.Used
	}
	step(retract("n1/u2", d2, tPFEra+120))
	if n := used(); n != 1 {
		t.Fatalf("after retracting d2 (a hash record): used %d, want 1", n)
	}
	// A record logged over the hash's: d2 delivered again (same id) at another time.
	step(func(l *log) {
		l.delivered("n1", "pf1", "u2", tPFEra+180, false)
		l.evs[0].ID = d2
	})
	step(retract("n1/u1", d1, tPFEra+240))
	if n := used(); n != 1 {
		t.Fatalf("after retracting d1 (a hash record): used %d, want 1 (u2 delivered again)", n)
	}
	step(retract("n1/u2", d2, tPFEra+300))
	if n := used(); n != 0 {
		t.Fatalf("after retracting d2 again (its logged record over the hash's deletion): used %d, want 0", n)
	}
}

// TestCorrectionOfAnOutputBelowTheMark: a batch given again in part (its first outputs at or below
// the stored high-water mark) that retracts one of those outputs undoes the stored record: the
// batch's copy of the output is not applied again, so load reads the record after all.
func TestCorrectionOfAnOutputBelowTheMark(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	l := &log{}
	d1 := l.delivered("n1", "pf1", "u1", tPFEra, false)
	apply(t, s, projections.Batch{Events: l.evs[:1]})
	l.add(&events.Correction{Key: "n1/u1", Retracts: []string{d1}}, tPFEra+60)
	st := apply(t, s, l.batch())
	if st.Skipped != 1 || st.Retracted != 1 {
		t.Errorf("skipped %d retracted %d, want 1 and 1", st.Skipped, st.Retracted)
	}
	if u, _ := s.Limit(ctx, PortfolioScope("pf1"), tPFEra+Hour); u.Used != 0 {
		t.Fatalf("used %d after the correction, want 0", u.Used)
	}
}

// TestOwnOutputs: only the outputs before the first correction retracting them are the batch's
// own.
func TestOwnOutputs(t *testing.T) {
	c := func(o int64) *events.Cause { return &events.Cause{Offset: o} }
	evs := []events.Event{{ID: "x", Cause: c(1)}, {ID: "corr1", Cause: c(2)}, {ID: "y", Cause: c(3)}, {ID: "z"}, {ID: "corr2", Cause: c(4)}}
	own := ownOutputs(evs, map[string]int{"x": 1, "y": 1, "z": 4, "w": 4})
	if len(own) != 1 || own["x"].Offset != 1 {
		t.Errorf("own %v, want x alone (y comes after its first correction, z has no cause, w is not output)", own)
	}
}
