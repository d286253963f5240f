package window

import (
	"hash/fnv"
	"testing"
)

// The two-word FNV-1a equals the standard library's 128-bit FNV-1a.
func TestFNV128MatchesStdlib(t *testing.T) {
	for _, parts := range [][]string{{""}, {"a"}, {"message.delivered.v1", "1001/5511", "wamid.x", "1750000000"}} {
		h := newFNV128()
		ref := fnv.New128a()
		for _, p := range parts {
			h.add(p)
			ref.Write([]byte(p))
			ref.Write([]byte{0})
		}
		want := ref.Sum(nil)
		got := h.hex()
		const digits = "0123456789abcdef"
		for i, b := range want {
			if got[2*i] != digits[b>>4] || got[2*i+1] != digits[b&0xf] {
				t.Fatalf("%q: got %s, want %x", parts, got, want)
			}
		}
	}
}

// TestFNV128Add holds add (the loop on locals) to byte, the definition, over strings of every
// length up to 64 and every byte value.
func TestFNV128Add(t *testing.T) {
	var b []byte
	for i := 0; i < 64; i++ {
		b = append(b, byte(i*37+11))
		got, want := newFNV128(), newFNV128()
		got.add(string(b))
		for _, c := range b {
			want.byte(c)
		}
		want.byte(0)
		if got != want {
			t.Fatalf("add of %d bytes: %x, want %x", len(b), got, want)
		}
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	got, want := newFNV128(), newFNV128()
	got.add(string(all))
	for _, c := range all {
		want.byte(c)
	}
	want.byte(0)
	if got != want {
		t.Fatalf("add of every byte value: %x, want %x", got, want)
	}
}
