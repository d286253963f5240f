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
	ls := string(log)
	if a := testing.AllocsPerRun(100, func() { _ = scanUndoLog(ls, func(string, string, bool) {}) }); a != 0 {
		t.Errorf("scanning a log allocates %.0f times, want none", a)
	}
	for n := 1; n < len(log); n++ {
		err := scanUndoLog(string(log[:len(log)-n]), func(string, string, bool) {})
		if cut := len(log) - n; err == nil && cut != 0 && !entryBoundary(log, cut) {
			t.Errorf("a log cut to %d bytes scanned without an error", cut)
		}
	}
	recs := map[string]string{"bb": "\x02d-from-the-hash", "h": "\x02kept"}
	if hour, log, ok := UndoHour("ns:ratelimit:{rl.p3}:fx:4711:12"); !ok || !log || hour != "ns:ratelimit:{rl.p3}:fx:4711" {
		t.Fatalf("UndoHour of a log: %q %v %v", hour, log, ok)
	}
	if hour, log, ok := UndoHour("ns:ratelimit:{rl.p3}:fx:4711"); !ok || log || hour != "ns:ratelimit:{rl.p3}:fx:4711" {
		t.Fatalf("UndoHour of a hash: %q %v %v", hour, log, ok)
	}
	if err := ApplyUndoLog(string(log), recs); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs["a"] != "\x02s2" || recs[""] != "" || recs["h"] != "\x02kept" {
		t.Errorf("records %q: the last entry of an id stands, a deletion deletes the hash's record", recs)
	}
	for _, k := range []string{"ns:{rl.p3}:fxk", "ns:{rl.p3}:fx:47a:1", "ns:{rl.p3}:fx:47:b", "ns:{rl.p3}:fx:", "ns:{rl.p3}:pb:1:2"} {
		if _, _, ok := UndoHour(k); ok {
			t.Errorf("%s read as an undo key", k)
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

// TestUndoRecordsInHashAndLogs: a batch with many new records in an hour logs them, a batch with
// few sets them in the hour's hash (as namespaces written before the logs hold them all); a
// retraction in either kind of batch undoes a record from either place, and an id delivered again
// after its retraction is undone again.
func TestUndoRecordsInHashAndLogs(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	pfx := s.prefix(0)
	var off int64
	step := func(add func(l *log)) {
		l := &log{off: off}
		add(l)
		apply(t, s, l.batch())
		off = l.off
	}
	retract := func(l *log, user, id string) {
		l.add(&events.Correction{Key: "n1/" + user, Retracts: []string{id}}, tPFEra+3500)
	}
	check := func(what string, wantUsed, wantHashed int64) {
		t.Helper()
		st, err := s.Limit(ctx, PortfolioScope("pf1"), tPFEra+Hour)
		if err != nil {
			t.Fatal(err)
		}
		hashed, err := rdb.HLen(ctx, pfx+undoKey(tPFEra)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if st.Used != wantUsed || hashed != wantHashed {
			t.Fatalf("%s: used %d with %d records in the hour's hash, want %d and %d", what, st.Used, hashed, wantUsed, wantHashed)
		}
	}
	n := int64(undoLogMin + 100)
	var big []string
	step(func(l *log) {
		for i := range n {
			big = append(big, l.delivered("n1", "pf1", fmt.Sprintf("u%d", i), tPFEra+events.UnixTime(i%3000), false))
		}
	})
	if keys, err := rdb.Keys(ctx, pfx+kUndo+"*:*").Result(); err != nil || len(keys) != undoBuckets {
		t.Fatalf("a batch of %d records wrote %d logs (%v), want %d", n, len(keys), err, undoBuckets)
	}
	check("a large batch", n, 0)
	var d1 string
	step(func(l *log) { d1 = l.delivered("n1", "pf1", "v1", tPFEra+3100, false) })
	check("a small batch", n+1, 1)
	step(func(l *log) { retract(l, "u0", big[0]) })
	check("a logged record retracted in a small batch", n, 1)
	step(func(l *log) { retract(l, "v1", d1) })
	check("a hashed record retracted in a small batch", n-1, 0)
	step(func(l *log) {
		l.delivered("n1", "pf1", "u0", tPFEra+3300, false)
		l.evs[0].ID = big[0]
	})
	check("an id delivered again in a small batch, over its deletion in the logs", n, 1)
	step(func(l *log) {
		retract(l, "u0", big[0])
		for i := range int64(undoLogMin) {
			l.delivered("n1", "pf1", fmt.Sprintf("w%d", i), tPFEra+3400+events.UnixTime(i%100), false)
		}
	})
	check("the hashed record retracted in a large batch", n-1+undoLogMin, 0)
	step(func(l *log) { retract(l, "u0", big[0]) })
	check("retracted once more: nothing left to undo", n-1+undoLogMin, 0)
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
