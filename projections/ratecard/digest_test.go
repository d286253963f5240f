package ratecard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The digest follows the files' contents, not their names or where they were loaded from.
func TestDigest(t *testing.T) {
	disk := examples(t)
	embedded, err := Examples()
	if err != nil {
		t.Fatal(err)
	}
	if disk.Digest() == "" || disk.Digest() != embedded.Digest() {
		t.Fatalf("examples on disk %q, embedded %q: want one non-empty digest", disk.Digest(), embedded.Digest())
	}
	ents, err := os.ReadDir("examples")
	if err != nil {
		t.Fatal(err)
	}
	renamed, edited := t.TempDir(), t.TempDir()
	changed := false
	for i, e := range ents {
		b, err := os.ReadFile(filepath.Join("examples", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		// Renamed but in the same order: the same book.
		name := string(rune('a'+i)) + "-" + e.Name()
		if err := os.WriteFile(filepath.Join(renamed, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if !changed && strings.Contains(s, "rate,India,marketing,,0.0107\n") {
			s, changed = strings.Replace(s, "rate,India,marketing,,0.0107\n", "rate,India,marketing,,0.015\n", 1), true
		}
		if err := os.WriteFile(filepath.Join(edited, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatal("no India marketing rate of 0.0107 in the examples to edit")
	}
	for _, c := range []struct {
		dir  string
		same bool
	}{{renamed, true}, {edited, false}} {
		b, err := Load(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		if (b.Digest() == disk.Digest()) != c.same {
			t.Errorf("copy in %s (same content %v): digest %q, examples %q", c.dir, c.same, b.Digest(), disk.Digest())
		}
	}
}
