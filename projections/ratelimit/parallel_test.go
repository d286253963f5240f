package ratelimit

import (
	"fmt"
	"sync"
	"testing"
)

// Apply is safe to call concurrently for different partitions (the projector's Parallel): two
// partitions applied at once by one Store give the state of applying them one after the other.
func TestConcurrentPartitionsEqualSequential(t *testing.T) {
	rdb, ns := client(t)
	for seed := range uint64(2) {
		seq := newStore(t, rdb, fmt.Sprintf("%sseq%d:", ns, seed), 2)
		par := newStore(t, rdb, fmt.Sprintf("%spar%d:", ns, seed), 2)
		logs := []*log{randomLog(0, seed, 2000), randomLog(1, seed+10, 2000)}
		for _, l := range logs {
			applyInBatches(t, seq, l, 250)
		}
		var wg sync.WaitGroup
		for _, l := range logs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				applyInBatches(t, par, l, 250)
			}()
		}
		wg.Wait()
		a := dump(t, rdb, seq.ns)
		if len(a) == 0 {
			t.Fatal("empty state")
		}
		if d := diff(a, dump(t, rdb, par.ns)); d != "" {
			t.Fatalf("seed %d: concurrent partitions differ from sequential:\n%s", seed, d)
		}
	}
}
