package billing

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestTouchOrder: touchOrder numbers keys by first touch, as a map from key to the count of keys
// before it does, with few keys (compared in turn) and many (a map), across the switch.
func TestTouchOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 5))
	for _, distinct := range []int{1, 3, touchScan, touchScan + 1, 50} {
		var o touchOrder[wmKey]
		want := map[wmKey]int{}
		for n := 0; n < 2000; n++ {
			k := wmKey{fmt.Sprint("W", r.IntN(distinct)), fmt.Sprint("2025-0", r.IntN(2))}
			w, seen := want[k]
			if !seen {
				w = len(want)
				want[k] = w
			}
			if i, first := o.of(k); i != w || first == seen {
				t.Fatalf("%d distinct: of(%v) = %d, %v; want %d, %v", distinct, k, i, first, w, !seen)
			}
		}
	}
}
