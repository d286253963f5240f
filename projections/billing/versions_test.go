package billing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
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
