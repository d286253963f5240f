package memlimit

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestParseAndFormat(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"3GiB", 3 << 30}, {"512MiB", 512 << 20}, {"1.5GiB", 3 << 29}, {"2000000000", 2e9}, {"2GB", 2e9},
		{" 64 KiB ", 64 << 10}, {"0", 0}, {"10B", 10},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1GiB", "3 apples", "1e30TiB"} {
		if n, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", bad, n)
		}
	}
	if got := Format(math.MaxInt64); got != "none" {
		t.Errorf("Format(MaxInt64) = %q, want none (the runtime's no limit)", got)
	}
	for n, want := range map[int64]string{3 << 30: "3GiB", 3 << 29: "1.5GiB", 1000: "1000B", 5 << 20: "5MiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
		if back, err := Parse(Format(n)); err != nil || back != n {
			t.Errorf("Parse(Format(%d)) = %d, %v", n, back, err)
		}
	}
}

func write(t *testing.T, root, name, body string) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAvailable(t *testing.T) {
	meminfo := "MemTotal:       24684132 kB\nMemFree:        20754036 kB\n"
	phys := int64(24684132) << 10

	root := t.TempDir() // no cgroup limit ("max"): physical memory
	write(t, root, "proc/meminfo", meminfo)
	write(t, root, "sys/fs/cgroup/memory.max", "max\n")
	if n, from := Available(root); n != phys || from != "physical memory" {
		t.Errorf("cgroup v2 without a limit: %d from %s, want %d from physical memory", n, from, phys)
	}

	root = t.TempDir() // cgroup v2 limit below physical memory
	write(t, root, "proc/meminfo", meminfo)
	write(t, root, "sys/fs/cgroup/memory.max", "4294967296\n")
	if n, from := Available(root); n != 4<<30 || from != "cgroup" {
		t.Errorf("cgroup v2 limit: %d from %s", n, from)
	}

	root = t.TempDir() // cgroup v1: an unlimited cgroup reports a huge number
	write(t, root, "proc/meminfo", meminfo)
	write(t, root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
	if n, from := Available(root); n != phys || from != "physical memory" {
		t.Errorf("cgroup v1 without a limit: %d from %s", n, from)
	}
	write(t, root, "sys/fs/cgroup/memory/memory.limit_in_bytes", "2147483648\n")
	if n, from := Available(root); n != 2<<30 || from != "cgroup" {
		t.Errorf("cgroup v1 limit: %d from %s", n, from)
	}

	if n, from := Available(t.TempDir()); n != 0 || from != "" {
		t.Errorf("nothing readable: %d from %q", n, from)
	}
}

func TestSet(t *testing.T) {
	gc, lim := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(gc); debug.SetMemoryLimit(lim) })
	t.Setenv("GOMEMLIMIT", "")
	os.Unsetenv("GOMEMLIMIT")

	if l, from := Set(400, 3<<30); l != 3<<30 || from != "flag" || debug.SetMemoryLimit(-1) != 3<<30 {
		t.Errorf("explicit limit: %d from %s, runtime has %d", l, from, debug.SetMemoryLimit(-1))
	}
	if got := debug.SetGCPercent(400); got != 400 {
		t.Errorf("GC percent %d, want 400", got)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	l, from := Set(0, 0)
	if avail, _ := Available("/"); avail > 0 {
		if want := int64(float64(avail) * Share); l != want || debug.SetMemoryLimit(-1) != want {
			t.Errorf("default: %d from %s, want %d (%.2f of %d)", l, from, want, Share, avail)
		}
	}

	t.Setenv("GOMEMLIMIT", "1GiB") // the environment's choice stands (the runtime read it at start)
	debug.SetMemoryLimit(1 << 30)
	if l, from := Set(0, 0); l != 1<<30 || from != "GOMEMLIMIT" {
		t.Errorf("with GOMEMLIMIT: %d from %s", l, from)
	}
}
