package miniredis

import (
	"math/rand"
	"reflect"
	"strconv"
	"testing"
)

// TestSortedSetOrderKept applies random sorted-set writes through the RedisDB methods the
// commands use and checks, at random reads, that the order kept between reads equals sorting
// the set (what upstream does on every read), that lex order is offered exactly when every score
// is the same, and that the splice alone kept it: no order was sorted again.
func TestSortedSetOrderKept(t *testing.T) {
	m := NewMiniRedis()
	db := m.db(0)
	rng := rand.New(rand.NewSource(1))
	ssRebuilds = 0
	for step := 0; step < 50000; step++ {
		key := "k" + strconv.Itoa(rng.Intn(3))
		member := "m" + strconv.Itoa(rng.Intn(200))
		score := float64(rng.Intn(20))
		if key == "k2" {
			score = 0 // a lex set
		}
		switch r := rng.Intn(20); {
		case r < 8:
			db.ssetAdd(key, score, member)
		case r < 12:
			if db.exists(key) {
				db.ssetRem(key, member)
			}
		case r < 14 && key != "k2":
			db.ssetIncrby(key, member, float64(rng.Intn(5)-2))
		case r == 14 && rng.Intn(10) == 0:
			db.del(key, true)
		default:
			ss := db.sortedsetKeys[key]
			want := ss.byScore(asc)
			got := db.ssetSorted(key)
			if len(want) == 0 && len(got) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: %s kept order\n%v\nwant\n%v", step, key, got, want)
			}
			if _, lex := db.ssetLexSorted(key); lex != sameScores(want) {
				t.Fatalf("step %d: %s lex order offered %v, every score the same %v", step, key, lex, sameScores(want))
			}
		}
	}
	if ssRebuilds != 0 {
		t.Fatalf("%d orders sorted again instead of spliced", ssRebuilds)
	}
}
