package ratelimit

import (
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
