package replay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/projections/billing"
)

// TestDiffLinesMatchesMapDiff checks the streaming line diff against the diff that holds the whole
// live side by id (what Compare did before): the same differences, counts and fields, over random
// sides with lines in step, changed, moved in time, on one side only, out of the time range, and
// pages of random sizes. It also checks that the streaming diff's order is the documented one.
func TestDiffLinesMatchesMapDiff(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		live, rebuilt := randomSides(r)
		from, to := events.UnixTime(0), events.UnixTime(0)
		if r.IntN(2) == 0 {
			from = events.UnixTime(r.IntN(40))
			to = from + events.UnixTime(1+r.IntN(60))
		}
		in := func(l billing.Settled) bool { return (from == 0 || l.At >= from) && (to == 0 || l.At < to) }

		var got []LineDiff
		nl, nr, err := diffLines(context.Background(), pages(r, "live", live), pages(r, "rebuilt", rebuilt), in,
			func(d LineDiff) { got = append(got, d) })
		if err != nil {
			t.Fatal(err)
		}
		want, wl, wr := mapDiff(live, rebuilt, in)
		if nl != wl || nr != wr {
			t.Fatalf("seed %d: lines live/rebuilt %d/%d, want %d/%d", seed, nl, nr, wl, wr)
		}
		if g, w := render(got), render(want); g != w {
			t.Fatalf("seed %d: diffs\n%s\nwant\n%s", seed, g, w)
		}
		rank := map[string]int{"changed": 0, "missing": 1, "extra": 2}
		for i := 1; i < len(got); i++ {
			if rank[got[i].Kind] < rank[got[i-1].Kind] {
				t.Fatalf("seed %d: %s after %s", seed, got[i].Kind, got[i-1].Kind)
			}
		}
	}
}

// TestDiffLinesReportsReadErrors checks that a side's read error stops the diff with the side named.
func TestDiffLinesReportsReadErrors(t *testing.T) {
	fail := &lineStream{side: "rebuilt", next: func(context.Context) ([]billing.Settled, error) {
		return nil, fmt.Errorf("connection reset")
	}}
	_, _, err := diffLines(context.Background(), pages(rand.New(rand.NewPCG(1, 1)), "live", nil), fail,
		func(billing.Settled) bool { return true }, func(LineDiff) {})
	if err == nil || err.Error() != "rebuilt: connection reset" {
		t.Fatalf("err = %v", err)
	}
}

// randomSides makes two sides of up to 60 lines, each sorted as the index orders them.
func randomSides(r *rand.Rand) (live, rebuilt []billing.Settled) {
	line := func(id int) billing.Settled {
		var l billing.Settled
		l.ID = fmt.Sprintf("e%03d", id)
		l.WAMID = "wamid." + l.ID
		l.At = events.UnixTime(r.IntN(50)) // ties on time are common
		l.Amount = 10_000
		l.Tier = "t1"
		return l
	}
	for id := range r.IntN(60) {
		l := line(id)
		switch r.IntN(6) {
		case 0: // live only
			live = append(live, l)
		case 1: // rebuilt only
			rebuilt = append(rebuilt, l)
		case 2: // a field changed
			m := l
			m.Amount += 5_000
			if r.IntN(2) == 0 {
				m.Tier = "t2"
			}
			live, rebuilt = append(live, l), append(rebuilt, m)
		case 3: // moved in time (maybe out of the range), maybe changed too
			m := l
			m.At = events.UnixTime(r.IntN(50))
			if r.IntN(3) == 0 {
				m.Billable = true
			}
			live, rebuilt = append(live, l), append(rebuilt, m)
		default: // equal
			live, rebuilt = append(live, l), append(rebuilt, l)
		}
	}
	for _, s := range [][]billing.Settled{live, rebuilt} {
		sort.Slice(s, func(i, j int) bool { return s[i].Key().Less(s[j].Key()) })
	}
	return live, rebuilt
}

// pages serves lines in pages of random sizes, as LineReader.Next does (an empty page ends it).
func pages(r *rand.Rand, side string, ls []billing.Settled) *lineStream {
	return &lineStream{side: side, next: func(context.Context) ([]billing.Settled, error) {
		n := min(1+r.IntN(7), len(ls))
		page := append([]billing.Settled(nil), ls[:n]...)
		ls = ls[n:]
		return page, nil
	}}
}

// mapDiff is the reference: the live side held by id, the rebuilt side looked up in it.
func mapDiff(live, rebuilt []billing.Settled, in func(billing.Settled) bool) (out []LineDiff, nLive, nRebuilt int64) {
	a := map[string]billing.Settled{}
	for _, l := range live {
		if in(l) {
			a[l.ID] = l
			nLive++
		}
	}
	var extra []LineDiff
	for _, l := range rebuilt {
		if !in(l) {
			continue
		}
		nRebuilt++
		old, ok := a[l.ID]
		if !ok {
			extra = append(extra, LineDiff{Kind: "extra", ID: l.ID, WAMID: l.WAMID})
			continue
		}
		delete(a, l.ID)
		if fs := lineFields(old, l); len(fs) > 0 {
			out = append(out, LineDiff{Kind: "changed", ID: l.ID, WAMID: l.WAMID, Fields: fs})
		}
	}
	for _, l := range a {
		out = append(out, LineDiff{Kind: "missing", ID: l.ID, WAMID: l.WAMID})
	}
	return append(out, extra...), nLive, nRebuilt
}

// render lists diffs one per line, sorted, so that the two orders compare.
func render(ds []LineDiff) string {
	ss := make([]string, len(ds))
	for i, d := range ds {
		ss[i] = fmt.Sprintf("%s %s %s %v", d.Kind, d.ID, d.WAMID, d.Fields)
	}
	sort.Strings(ss)
	return fmt.Sprint(ss)
}
