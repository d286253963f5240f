package ratelimit

import (
	"reflect"
	"strconv"
	"testing"
)

// TestUndoRecordForms: every record round-trips; the shapes Reduce makes are written in the
// short v2 form, others in v1, and records stored in v1 by earlier versions still decode.
func TestUndoRecordForms(t *testing.T) {
	recs := []struct {
		u  undoRecord
		v2 bool
	}{
		{undoRecord{Kind: "d", Member: "pf:pf1|919800000001|001759881600|in-7/0", Time: 1759881600}, true},
		{undoRecord{Kind: "s", PN: "n1", Sec: 1759881601, Pair: "n1/919800000001", Pre: "", Post: "44:1759881601", Time: 1759881601}, true},
		{undoRecord{Kind: "s", PN: "n1", Sec: 1759881601, Pair: "n1/919800000001", Pre: "0:1759881601", Post: "0:1759881601",
			Hit: "919800000001|wamid.9|in-9/0", Time: 1759881601}, true},
		{undoRecord{Kind: "f", Field: "n1/919800000001|w", FPre: "", FPost: "1:2:3", PN: "n1", Sec: 1759881602, Time: 1759881602}, true},
		{undoRecord{Kind: "f", Field: "n1/919800000001|c|marketing", FPre: "c1:x", FPost: "", Time: -5}, true},
		// Shapes outside v2 fall back to v1.
		{undoRecord{Kind: "s", PN: "n2", Sec: 1759881601, Pair: "n1/919800000001", Time: 1759881601}, false},
		{undoRecord{Kind: "f", Field: "x|w", PN: "n1", Sec: 7, Time: 8}, false},
		{undoRecord{Kind: "i", PN: "n1", Sec: 7, Time: 7}, false},
	}
	for _, r := range recs {
		enc := r.u.encode()
		if got := len(enc) > 0 && enc[0] == undoV2; got != r.v2 {
			t.Errorf("%+v: v2 form %v, want %v", r.u, got, r.v2)
		}
		got, err := decodeUndo(enc)
		if err != nil || got != r.u {
			t.Errorf("round trip of %+v: got %+v, %v", r.u, got, err)
		}
		got, err = decodeUndo(r.u.encodeV1())
		if err != nil || got != r.u {
			t.Errorf("v1 round trip of %+v: got %+v, %v", r.u, got, err)
		}
	}
	// A v1 value as stored before v2 existed.
	old := "s\x1e\x1en1\x1e1759881601\x1en1/919800000001\x1e\x1e44:1759881601\x1e\x1e\x1e\x1e\x1e1759881601"
	got, err := decodeUndo(old)
	want := undoRecord{Kind: "s", PN: "n1", Sec: 1759881601, Pair: "n1/919800000001", Post: "44:1759881601", Time: 1759881601}
	if err != nil || got != want {
		t.Errorf("stored v1 record: got %+v, %v", got, err)
	}
	for _, bad := range []string{"\x02", "\x02s\x02a", "\x02x\x02", "\x02s\x02nopair\x1e\x1e\x1e"} {
		if _, err := decodeUndo(bad); err == nil {
			t.Errorf("decodeUndo(%q): no error", bad)
		}
	}
}

// TestParseInt: parseInt agrees with strconv.ParseInt.
func TestParseInt(t *testing.T) {
	for _, s := range []string{"", "0", "-0", "+7", "-", "+", "12a", "a", " 1", "1759881600", "-1759881600",
		"999999999999999999", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "00012"} {
		want, err := strconv.ParseInt(s, 10, 64)
		got, ok := parseInt(s)
		if ok != (err == nil) || (ok && got != want) {
			t.Errorf("parseInt(%q) = %d, %v; strconv: %d, %v", s, got, ok, want, err)
		}
	}
}

// TestUndoLogEqualsMap: the undo records Reduce logs (Changes.HLog) come to what it writes through
// H without the log, batch by batch and in every batch size, with corrections retracting outputs
// of the same batch and of earlier ones, and outputs repeated under a later cause (same id).
func TestUndoLogEqualsMap(t *testing.T) {
	for seed := range uint64(4) {
		l := randomLog(0, seed, 3000)
		for i := 0; i < len(l.evs); i += 37 { // a repeated output, its undo record set twice
			e := l.evs[i]
			c := *e.Cause
			c.Offset = l.off + 1
			l.off++
			e.Cause = &c
			l.evs = append(l.evs, e)
		}
		logged := 0
		for _, size := range []int{1, 7, 500, len(l.evs)} {
			v1, v2 := NewView(), NewView()
			for i := 0; i < len(l.evs); i += size {
				evs := l.evs[i:min(i+size, len(l.evs))]
				got, want := reduce(Config{}, v1, evs, false), reduce(Config{}, v2, evs, true)
				for key, fvs := range got.HLog {
					logged += len(fvs)
					m := got.H[key]
					if m == nil {
						m = map[string]HOp{}
						got.H[key] = m
					}
					seen := map[string]bool{}
					for _, fv := range fvs {
						if _, ok := m[fv.Field]; ok && !seen[fv.Field] {
							t.Fatalf("seed %d size %d: %s %s both logged and in H", seed, size, key, fv.Field)
						}
						seen[fv.Field] = true
						m[fv.Field] = HOp{OpSet, fv.Val}
					}
				}
				got.HLog = nil
				if len(want.HLog) != 0 {
					t.Fatalf("seed %d size %d: logged without the log", seed, size)
				}
				want.HLog = nil
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d size %d: changes with the undo log differ from H alone:\n got %+v\nwant %+v", seed, size, got, want)
				}
			}
		}
		if logged == 0 {
			t.Fatal("nothing logged")
		}
	}
}
