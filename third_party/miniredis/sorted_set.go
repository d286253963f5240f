package miniredis

// The most KISS way to implement a sorted set. Luckily we don't care about
// performance that much.

import (
	"sort"
)

type direction int

const (
	unsorted direction = iota
	asc
	desc
)

type sortedSet map[string]float64

type ssElem struct {
	score  float64
	member string
}
type ssElems []ssElem

type byScore ssElems

func (sse byScore) Len() int      { return len(sse) }
func (sse byScore) Swap(i, j int) { sse[i], sse[j] = sse[j], sse[i] }
func (sse byScore) Less(i, j int) bool {
	if sse[i].score != sse[j].score {
		return sse[i].score < sse[j].score
	}
	return sse[i].member < sse[j].member
}

func newSortedSet() sortedSet {
	return sortedSet{}
}

func (ss *sortedSet) card() int {
	return len(*ss)
}

func (ss *sortedSet) set(score float64, member string) {
	(*ss)[member] = score
}

func (ss *sortedSet) get(member string) (float64, bool) {
	v, ok := (*ss)[member]
	return v, ok
}

// elems gives the list of ssElem, ready to sort.
func (ss *sortedSet) elems() ssElems {
	elems := make(ssElems, 0, len(*ss))
	for e, s := range *ss {
		elems = append(elems, ssElem{s, e})
	}
	return elems
}

func (ss *sortedSet) byScore(d direction) ssElems {
	elems := ss.elems()
	sort.Sort(byScore(elems))
	if d == desc {
		reverseElems(elems)
	}
	return ssElems(elems)
}

// rankByScore gives the (0-based) index of member, or returns false.
func (ss *sortedSet) rankByScore(member string, d direction) (int, bool) {
	if _, ok := (*ss)[member]; !ok {
		return 0, false
	}
	for i, e := range ss.byScore(d) {
		if e.member == member {
			return i, true
		}
	}
	// Can't happen
	return 0, false
}

func reverseSlice(o []string) {
	for i := range make([]struct{}, len(o)/2) {
		other := len(o) - 1 - i
		o[i], o[other] = o[other], o[i]
	}
}

func reverseElems(o ssElems) {
	for i := range make([]struct{}, len(o)/2) {
		other := len(o) - 1 - i
		o[i], o[other] = o[other], o[i]
	}
}

// ssOrder is the score order of one sorted set, kept between reads (convmeter patch: upstream
// sorted the whole set on every range read, so a range query cost O(n log n) and a workload that
// reads a large set after each batch of writes grew quadratically). It is updated lazily: the
// writes since the last read are only noted, with each member's score as of that read, and the
// next read splices them into the order it kept: O(k log n) searches and one copy of the n
// elements, for k changed members, instead of sorting all n again.
type ssOrder struct {
	elems ssElems // (score, member) ascending as of the last read; never modified in place
	// changed holds the members added, rescored or removed since, with their place in elems.
	changed map[string]ssWas
	// same: every element has the same score, so elems is in member (lex) order.
	same bool
}

// ssWas is a changed member's score at the last read, if it was in the set then.
type ssWas struct {
	score float64
	in    bool
}

func newSSOrder(ss sortedSet) *ssOrder {
	o := &ssOrder{elems: ss.byScore(asc)}
	o.same = sameScores(o.elems)
	return o
}

func sameScores(es ssElems) bool {
	for _, e := range es {
		if e.score != es[0].score {
			return false
		}
	}
	return true
}

// touch notes that member is about to be added, rescored or removed; score and in are its
// score before the change and whether it was in the set.
func (o *ssOrder) touch(member string, score float64, in bool) {
	if _, ok := o.changed[member]; ok {
		return // its score as of the last read is noted already
	}
	if o.changed == nil {
		o.changed = map[string]ssWas{}
	}
	o.changed[member] = ssWas{score, in}
}

// search returns the index of the first element of es not less than e.
func search(es ssElems, e ssElem) int {
	return sort.Search(len(es), func(i int) bool { return !elemLess(es[i], e) })
}

// sorted returns the elements of ss (the set o orders) in score order, splicing in the changes
// noted since the last call. The slice is shared: callers must not modify it.
func (o *ssOrder) sorted(ss sortedSet) ssElems {
	if len(o.changed) == 0 {
		return o.elems
	}
	// The old places of the changed members (cut) and the new elements (added), in order.
	var cut []int
	added := make(ssElems, 0, len(o.changed))
	for m, was := range o.changed {
		if was.in {
			i := search(o.elems, ssElem{was.score, m})
			if i == len(o.elems) || o.elems[i].member != m {
				return o.rebuild(ss) // changed behind the order's back: cannot happen
			}
			cut = append(cut, i)
		}
		if s, ok := ss[m]; ok {
			added = append(added, ssElem{s, m})
		}
	}
	sort.Ints(cut)
	sort.Sort(byScore(added))
	out := make(ssElems, 0, len(ss))
	from := 0 // the next element of o.elems to copy
	// copyTo copies the kept elements of o.elems before index end.
	copyTo := func(end int) {
		for len(cut) > 0 && cut[0] < end {
			out = append(out, o.elems[from:cut[0]]...)
			from = cut[0] + 1
			cut = cut[1:]
		}
		if from < end {
			out = append(out, o.elems[from:end]...)
			from = end
		}
	}
	for _, e := range added {
		// No kept element equals e (its member changed), so e goes before the first greater.
		copyTo(search(o.elems, e))
		out = append(out, e)
	}
	copyTo(len(o.elems))
	if len(out) != len(ss) {
		return o.rebuild(ss) // changed behind the order's back: cannot happen
	}
	o.elems, o.changed = out, nil
	o.same = sameScores(out)
	return out
}

// ssRebuilds counts the orders sorted again because they were changed behind their back (the
// tests check it stays 0: the splice is what keeps the order).
var ssRebuilds int

// rebuild sorts ss again, as upstream does on every read.
func (o *ssOrder) rebuild(ss sortedSet) ssElems {
	ssRebuilds++
	*o = *newSSOrder(ss)
	return o.elems
}

func elemLess(a, b ssElem) bool {
	if a.score != b.score {
		return a.score < b.score
	}
	return a.member < b.member
}

// scoreRange returns the sub-slice of es (in score order) withSSRange returns, by binary search.
func scoreRange(es ssElems, min float64, minIncl bool, max float64, maxIncl bool) ssElems {
	lo := sort.Search(len(es), func(i int) bool {
		if minIncl {
			return es[i].score >= min
		}
		return es[i].score > min
	})
	es = es[lo:]
	hi := sort.Search(len(es), func(i int) bool {
		if maxIncl {
			return es[i].score > max
		}
		return es[i].score >= max
	})
	return es[:hi]
}

// lexRange returns the sub-slice of es (in member order) whose members withLexRange keeps, by
// binary search.
func lexRange(es ssElems, min string, minIncl bool, max string, maxIncl bool) ssElems {
	if max == "-" || min == "+" {
		return nil
	}
	if min != "-" {
		es = es[sort.Search(len(es), func(i int) bool {
			if minIncl {
				return es[i].member >= min
			}
			return es[i].member > min
		}):]
	}
	if max != "+" {
		es = es[:sort.Search(len(es), func(i int) bool {
			if maxIncl {
				return es[i].member > max
			}
			return es[i].member >= max
		})]
	}
	return es
}
