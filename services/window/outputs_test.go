package window

import (
	"fmt"
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
	check := func(b []byte, what string) {
		t.Helper()
		got, want := newFNV128(), newFNV128()
		got.add(string(b))
		for _, c := range b {
			want.byte(c)
		}
		want.byte(0)
		if got != want {
			t.Fatalf("add of %s: %x, want %x", what, got, want)
		}
	}
	var b []byte
	for i := 0; i < 64; i++ {
		b = append(b, byte(i*37+11))
		check(b, fmt.Sprintf("%d bytes", len(b)))
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	check(all, "every byte value")
}
