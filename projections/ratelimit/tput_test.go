package ratelimit

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// FuzzMinuteCounts: a minute's counts survive their encoding, which is empty exactly when they
// are all zero and has no trailing separators (one encoding per minute, so a replay and the live
// store write the same bytes); AddThroughput reads the same counts back per second.
func FuzzMinuteCounts(f *testing.F) {
	f.Add([]byte{0, 3, 0, 0, 1})
	f.Add([]byte{})
	f.Add(make([]byte, 120))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var c minuteCounts
		for i := 0; i < len(c) && 2*i+1 < len(raw); i++ {
			c[i] = int64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		}
		v := c.encode()
		zero := c == minuteCounts{}
		if (v == "") != zero {
			t.Fatalf("%v encodes as %q", c, v)
		}
		if v != "" && v[len(v)-1] == ',' {
			t.Fatalf("%v encodes as %q: a trailing zero", c, v)
		}
		back, err := decodeMinute(v)
		if err != nil || back != c {
			t.Fatalf("%v → %q → %v, %v", c, v, back, err)
		}
		const start = 1_760_000_040 // a minute's first second
		secs := map[events.UnixTime]int64{}
		if err := AddThroughput(secs, minuteField(start+59), v); err != nil {
			t.Fatal(err)
		}
		for i, n := range c {
			if secs[start+events.UnixTime(i)] != n {
				t.Fatalf("second %d: %d, want %d", i, secs[start+events.UnixTime(i)], n)
			}
		}
	})
}

func TestDecodeMinuteRejects(t *testing.T) {
	for _, v := range []string{"x", "1,,2,a", ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,1"} {
		if _, err := decodeMinute(v); err == nil {
			t.Errorf("decodeMinute(%q) accepted", v)
		}
	}
	for _, f := range []string{"m1760000041", "mx", "12a"} {
		if err := AddThroughput(map[events.UnixTime]int64{}, f, "1"); err == nil {
			t.Errorf("field %q accepted", f)
		}
	}
}

// TestThroughputReadsSecondFields: a store written before the minute fields (one field per
// second) is read exactly after the upgrade: queries and admissions add both forms, and a new
// batch adds its messages in minute fields beside the old ones, which it leaves alone.
func TestThroughputReadsSecondFields(t *testing.T) {
	rdb, ns := client(t)
	s := newStore(t, rdb, ns, 1)
	ctx := context.Background()
	t0 := tPFEra + 30
	key := s.prefix(0) + tputKey("n1", hourOf(t0))
	// As the store before the minute fields wrote it: 5 messages at t0, 2 at t0+1.
	if err := rdb.HSet(ctx, key, itoa(int64(t0)), 5, itoa(int64(t0+1)), 2).Err(); err != nil {
		t.Fatal(err)
	}
	l := &log{}
	for range 3 {
		l.dispatched("n1", "pf1", "u1", t0)
	}
	l.inbound("n1", "pf1", "u2", t0+61) // the next minute
	apply(t, s, l.batch())
	got, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		itoa(int64(t0)): "5", itoa(int64(t0 + 1)): "2",
		minuteField(t0): strings.Repeat(",", int(t0%60)) + "3", minuteField(t0 + 61): strings.Repeat(",", int((t0+61)%60)) + "1",
	}
	if len(got) != len(want) {
		t.Fatalf("hash %v, want %v", got, want)
	}
	for f, v := range want {
		if got[f] != v {
			t.Fatalf("hash %v, want %v", got, want)
		}
	}
	tp, err := s.Throughput(ctx, "n1", t0+61, DefaultMPS)
	if err != nil {
		t.Fatal(err)
	}
	if tp.Peak != 8 || tp.PeakAt != t0 || tp.Current != 1 {
		t.Errorf("throughput %+v, want peak 8 at %d, current 1", tp, t0)
	}
	for at, n := range map[events.UnixTime]int64{t0: 8, t0 + 1: 2, t0 + 61: 1, t0 + 2: 0} {
		snap, err := s.Admission(ctx, "n1", "u1", at)
		if err != nil {
			t.Fatal(err)
		}
		if snap.Second != n {
			t.Errorf("admission at %d: second %d, want %d", at, snap.Second, n)
		}
	}
}
