package window

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// TestMain makes every test of the package check each quiet recompute (shared facts replayed
// without outputs) against deriveAll, which builds every output: the property, fuzz and edge-case
// tests then prove the shortcut on all the traffic they make.
func TestMain(m *testing.M) {
	verifyRecompute = checkQuietRecompute
	os.Exit(m.Run())
}

// emptyNil returns st with its empty lists nil: a derivation that added and removed a
// conversation leaves an empty list where one that added none has none, the same state.
func emptyNil(st pairState) pairState {
	if len(st.convs) == 0 {
		st.convs = nil
	}
	if len(st.msgs) == 0 {
		st.msgs = nil
	}
	return st
}

// checkQuietRecompute panics when a quiet recompute's difference (what it retracts and emits) or
// its new state differs from the full derivation's.
func checkQuietRecompute(e *Engine, r *rules, p *pair, pos int, to int64, st *pairState, before, after []events.Event) {
	gone, fresh := e.difference(before, after)
	fresh = slices.Clone(fresh)
	fb, fa, fst := e.deriveAll(r, p, pos, to)
	if !reflect.DeepEqual(emptyNil(*st), emptyNil(fst)) {
		panic(fmt.Sprintf("window: quiet recompute of %s leaves state %+v; the full derivation %+v", p.key, *st, fst))
	}
	fgone, ffresh := e.difference(fb, fa)
	if !slices.Equal(gone, fgone) || len(fresh) != len(ffresh) {
		panic(fmt.Sprintf("window: quiet recompute of %s retracts %v and emits %d outputs; the full derivation retracts %v and emits %d", p.key, gone, len(fresh), fgone, len(ffresh)))
	}
	for i := range fresh {
		if fresh[i].ID != ffresh[i].ID || !sameContent(fresh[i], ffresh[i]) {
			panic(fmt.Sprintf("window: quiet recompute of %s emits %+v where the full derivation emits %+v", p.key, fresh[i], ffresh[i]))
		}
	}
}
