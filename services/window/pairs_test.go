package window

import (
	"bytes"
	"math/rand/v2"
	"strconv"
	"testing"
)

// The pair table behaves as a map from key to record across puts, deletes, index growth and
// arena compaction.
func TestPairTableIsAMap(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		rng := rand.New(rand.NewPCG(seed, seed))
		tb := newPairTable()
		tb.chunkCap = 4096 // many chunks, so cleaning runs often
		want := map[string][]byte{}
		keys := 3000
		for op := 0; op < 60000; op++ {
			k := "1001/" + strconv.Itoa(rng.IntN(keys))
			switch rng.IntN(3) {
			case 0:
				tb.del(k)
				delete(want, k)
			default:
				body := appendStr(nil, k)
				n := rng.IntN(200)
				if rng.IntN(500) == 0 {
					n = 5000 // larger than a chunk
				}
				body = append(body, bytes.Repeat([]byte{byte(op)}, n)...)
				tb.put(k, body)
				want[k] = body
			}
			if op%5000 == 0 || op == 59999 {
				if tb.Len() != len(want) {
					t.Fatalf("seed %d op %d: %d records, want %d", seed, op, tb.Len(), len(want))
				}
				for i := 0; i < keys; i++ {
					k := "1001/" + strconv.Itoa(i)
					if got := tb.get(k); !bytes.Equal(got, want[k]) {
						t.Fatalf("seed %d op %d: %s = %x, want %x", seed, op, k, got, want[k])
					}
					if w, ok := want[k]; ok {
						if ks := tb.keysOf(hashKey(k), nil); len(ks) != 1 || ks[0] != k {
							t.Fatalf("seed %d: keysOf(%s) = %v (record %d bytes)", seed, k, ks, len(w))
						}
					}
				}
				if n := len(tb.sorted()); n != len(want) {
					t.Fatalf("seed %d: sorted lists %d records, want %d", seed, n, len(want))
				}
			}
		}
		live := 0
		for _, b := range want {
			live += uvarintLen(uint64(len(b))) + len(b)
		}
		if tb.liveBytes() != live {
			t.Fatalf("seed %d: %d live bytes counted, %d stored", seed, tb.liveBytes(), live)
		}
		if tb.dead*4 > tb.used && tb.used > 2*tb.chunkCap {
			t.Fatalf("seed %d: %d of %d arena bytes are garbage", seed, tb.dead, tb.used)
		}
		for c, chunk := range tb.chunks {
			if chunk != nil && len(chunk) > tb.chunkCap && len(chunk) != cap(chunk) {
				t.Fatalf("seed %d: oversized chunk %d shares its space", seed, c)
			}
		}
	}
}
