package billing

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// TestVersionsChanges: versions.changes (which hands back the arena as it is, compacts it in
// place, or copies, depending on how the batch touched its ids) gives the deletes and puts of a
// plain model (per id in first-touch order: the stored version, deleted if the batch changed it,
// and the last version, put if it is not the stored one) for random histories of puts and
// retractions over ids with and without a stored version.
func TestVersionsChanges(t *testing.T) {
	type rec struct{ id, v string }
	r := rand.New(rand.NewPCG(7, 11))
	for n := 0; n < 5000; n++ {
		nids := 1 + r.IntN(12)
		prior := map[string]rec{}
		for i := 0; i < nids; i++ {
			if r.IntN(4) == 0 {
				id := fmt.Sprint("id", i)
				prior[id] = rec{id, "stored"}
			}
		}
		v := newVersions[rec](r.IntN(4))
		var order []string
		first := map[string]bool{}
		cur := map[string]*rec{}
		for id, x := range prior {
			cur[id] = &x
		}
		nop := func(*rec, int64) {}
		for k, ops := 0, r.IntN(20); k < ops; k++ {
			id := fmt.Sprint("id", r.IntN(nids))
			if !first[id] {
				first[id] = true
				order = append(order, id)
			}
			if r.IntN(3) == 0 {
				v.retract(id, prior, nop)
				cur[id] = nil
				continue
			}
			x := rec{id, fmt.Sprint("v", k)}
			v.put(id, x, prior, nop)
			cur[id] = &x
		}
		var wantDel, wantPut []rec
		for _, id := range order {
			st, stored := prior[id]
			c := cur[id]
			changed := c == nil || !stored || *c != st
			if stored && changed {
				wantDel = append(wantDel, st)
			}
			if c != nil && changed {
				wantPut = append(wantPut, *c)
			}
		}
		del, put := v.changes()
		if !slices.Equal(del, wantDel) || !slices.Equal(put, wantPut) {
			t.Fatalf("history %d: changes del %v put %v, want del %v put %v", n, del, put, wantDel, wantPut)
		}
	}
}

// TestApplyHighWater: Apply skips each event at or below its source partition's mark (the
// prior's, or an earlier event's of the batch) and returns the marks that moved, as a map of
// marks does, with 1 to 20 source partitions in a batch.
func TestApplyHighWater(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	pr, _ := NewPricer(smallBook(t))
	for n := 0; n < 500; n++ {
		sources := 1 + r.IntN(20)
		prior := Prior{HW: map[int32]events.Cause{}}
		for s := 0; s < sources; s++ {
			if r.IntN(2) == 0 {
				prior.HW[int32(s)] = events.Cause{Partition: int32(s), Offset: r.Int64N(10), Index: r.Int32N(3)}
			}
		}
		var batch []events.Event
		for k, m := 0, r.IntN(100); k < m; k++ {
			s := int32(r.IntN(sources))
			batch = append(batch, events.Event{ID: fmt.Sprint("e", k), Type: events.TypeCorrection,
				Cause: &events.Cause{Partition: s, Offset: r.Int64N(12), Index: r.Int32N(3)}, Data: &events.Correction{}})
		}
		hw := maps.Clone(prior.HW)
		want, skipped := map[int32]events.Cause{}, 0
		for _, e := range batch {
			if last, ok := hw[e.Cause.Partition]; ok && !e.Cause.After(last) {
				skipped++
				continue
			}
			hw[e.Cause.Partition], want[e.Cause.Partition] = *e.Cause, *e.Cause
		}
		p := Apply(pr, batch, prior)
		if !maps.Equal(p.HW, want) || p.Skipped != skipped || p.Applied != len(batch)-skipped {
			t.Fatalf("batch %d: HW %v skipped %d applied %d; want %v, %d, %d", n, p.HW, p.Skipped, p.Applied, want, skipped, len(batch)-skipped)
		}
	}
}
