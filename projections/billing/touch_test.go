package billing

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
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

// TestDeliveryOrder: deliveryOrder (packed integers, then runs of one second by id) gives the (delivery
// time, id) order of a comparison sort, for times close together with many ties, spread over
// years, negative, and spanning more than 2^31 seconds (the comparison sort itself).
func TestDeliveryOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 9))
	for n := 0; n < 3000; n++ {
		ls := make([]Line, r.IntN(60))
		base := events.UnixTime(r.Int64N(1<<40) - 1<<39)
		span := []int64{1, 5, 3600, 1 << 30, 1 << 31, 1 << 40}[r.IntN(6)]
		for i, id := range r.Perm(len(ls)) {
			ls[i] = Line{ID: fmt.Sprintf("%x/%d", r.IntN(4), id), At: base + events.UnixTime(r.Int64N(span))}
		}
		want := make([]int32, len(ls))
		for i := range want {
			want[i] = int32(i)
		}
		slices.SortFunc(want, func(a, b int32) int {
			if c := cmp.Compare(ls[a].At, ls[b].At); c != 0 {
				return c
			}
			return strings.Compare(ls[a].ID, ls[b].ID)
		})
		if got := deliveryOrder(ls); !slices.Equal(got, want) {
			t.Fatalf("deliveryOrder of %+v = %v, want %v", ls, got, want)
		}
	}
}
