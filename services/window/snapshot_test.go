package window

import (
	"bytes"
	"errors"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// A snapshot taken anywhere and restored gives exactly the outputs of an uninterrupted run, and a
// restored engine snapshots to the same bytes.
func TestSnapshotRestoreContinuesIdentically(t *testing.T) {
	for _, seed := range seeds(t) {
		in := shuffleWithin(seed, genTraffic(seed, 50, 12), 20*hour)
		want, _ := run(in)
		for _, cutAt := range []int{len(in) / 3, 2 * len(in) / 3} {
			e, _ := New(Config{})
			var out []events.Event
			var err error
			for i, ev := range in[:cutAt] {
				if out, err = e.Apply(ev, int64(i), out); err != nil {
					t.Fatal(err)
				}
			}
			var snap bytes.Buffer
			if err := e.Snapshot(&snap); err != nil {
				t.Fatal(err)
			}
			r, err := Restore(bytes.NewReader(snap.Bytes()), Config{})
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := r.Snapshot(&again); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snap.Bytes(), again.Bytes()) {
				t.Fatalf("seed %d: restored engine snapshots differently", seed)
			}
			if r.Pairs() != e.Pairs() || r.StreamTime() != e.StreamTime() {
				t.Fatalf("seed %d: restored %d pairs at %d, had %d at %d", seed, r.Pairs(), r.StreamTime(), e.Pairs(), e.StreamTime())
			}
			for i, ev := range in[cutAt:] {
				if out, err = r.Apply(ev, int64(cutAt+i), out); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(encodeAll(t, want), encodeAll(t, out)) {
				t.Fatalf("seed %d: output after restore at %d differs from the uninterrupted run", seed, cutAt)
			}
		}
	}
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	e, _ := New(Config{})
	in := genTraffic(1, 20, 6)
	var err error
	for i, ev := range in {
		if _, err = e.Apply(ev, int64(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var snap bytes.Buffer
	if err := e.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := snap.Bytes()
	cases := map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte("XXXX"), b[4:]...),
		"truncated": b[:len(b)/2],
		"version":   append([]byte("CVMW\x09"), b[5:]...),
		"trailing":  append(append([]byte(nil), b...), 0),
	}
	for name, bad := range cases {
		if _, err := Restore(bytes.NewReader(bad), Config{}); !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: want ErrSnapshot, got %v", name, err)
		}
	}
	// Version 1 (before pairs were stored as records) is a cache this build cannot use: the
	// aggregator tells it from damage and replays the log.
	if _, err := Restore(bytes.NewReader(append([]byte("CVMW\x01"), b[5:]...)), Config{}); !errors.Is(err, ErrSnapshotVersion) {
		t.Errorf("version 1: want ErrSnapshotVersion, got %v", err)
	}
	if _, err := Restore(bytes.NewReader(b[:len(b)/2]), Config{}); errors.Is(err, ErrSnapshotVersion) {
		t.Errorf("truncated: reported as another version: %v", err)
	}
	if _, err := Restore(bytes.NewReader(b), Config{Partition: 7}); !errors.Is(err, ErrSnapshot) {
		t.Errorf("other partition: want ErrSnapshot, got %v", err)
	}
}

// Cause indexes count each input's outputs from 0, whatever the slice passed to Apply holds.
func TestCauseIndexesStartAtZeroPerInput(t *testing.T) {
	h := configured(t, "UTC")
	h.out = append(h.out, events.Event{ID: "unrelated"})
	outs := h.apply(statusEvent(pmpStart(), "wamid.c", events.StatusDelivered, &events.MetaPricing{PricingModel: "PMP", Category: events.CategoryMarketing, Type: "regular"}))
	if len(outs) < 2 {
		t.Fatalf("want several outputs, got %d", len(outs))
	}
	for i, ev := range outs {
		if ev.Cause == nil || int(ev.Cause.Index) != i {
			t.Fatalf("output %d has cause %+v", i, ev.Cause)
		}
	}
}

// Any single damaged byte is refused by Restore or gives an engine that works: records are
// checked when read, never first when their pair is next touched.
func TestRestoreOfDamagedSnapshotFailsOrWorks(t *testing.T) {
	in := genTraffic(3, 5, 4)
	e, _ := New(Config{})
	for i, ev := range in[:len(in)/2] {
		if _, err := e.Apply(ev, int64(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var snap bytes.Buffer
	if err := e.Snapshot(&snap); err != nil {
		t.Fatal(err)
	}
	b := snap.Bytes()
	for i := range b {
		for _, flip := range []byte{0x01, 0xff} {
			bad := append([]byte(nil), b...)
			bad[i] ^= flip
			r, err := Restore(bytes.NewReader(bad), Config{})
			if err != nil {
				if !errors.Is(err, ErrSnapshot) {
					t.Fatalf("byte %d ^ %#x: %v is not ErrSnapshot", i, flip, err)
				}
				continue
			}
			for j, ev := range in[len(in)/2:] {
				_, _ = r.Apply(ev, int64(len(in)/2+j), nil) // must not panic
			}
			if err := r.Snapshot(&bytes.Buffer{}); err != nil {
				t.Fatalf("byte %d ^ %#x: snapshot after restore: %v", i, flip, err)
			}
		}
	}
}
