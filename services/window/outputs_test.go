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
