// Package memlimit sets the Go garbage collector's target and soft memory limit for the processes
// that keep much in memory: the aggregator (every live pair) and replay (the engines, the settled
// wamids of the retention, the batches in flight).
//
// They run with a high GC target (GOGC 400: scanning the pairs dominates at 100), so the heap may
// grow to five times what is live. The soft limit bounds that: below it the GC target holds, near
// it the collector runs as often as needed to stay under. A whole month replayed at GOGC 400
// peaks at about 8 GB with 1.6 GB live; in a container with less memory that would be an OOM kill.
//
// A replay, a batch job, also runs under Floor: no collection until the heap reaches a floor
// (DefaultFloor, 4 GiB), and Prefault has the memory it will allocate until then backed before it
// starts.
package memlimit

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Bytes is a byte count flag: a number with an optional unit (B, KiB, MiB, GiB, TiB, or KB, MB,
// GB, TB in powers of 1000): "3GiB", "512MiB", "2000000000".
type Bytes int64

func (b *Bytes) String() string {
	if b == nil || *b == 0 {
		return "0"
	}
	return Format(int64(*b))
}

// Set parses s (flag.Value).
func (b *Bytes) Set(s string) error {
	n, err := Parse(s)
	if err != nil {
		return err
	}
	*b = Bytes(n)
	return nil
}

var units = []struct {
	suffix string
	mult   int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1},
}

// Parse reads a byte count with an optional unit.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || v*float64(mult) > math.MaxInt64 {
		return 0, fmt.Errorf("%q is not a byte count (like 3GiB, 512MiB or 2000000000)", s)
	}
	return int64(v * float64(mult)), nil
}

// Format writes n in the largest binary unit it reaches, whole or with one decimal;
// math.MaxInt64, the runtime's "no limit", as "none".
func Format(n int64) string {
	if n == math.MaxInt64 {
		return "none"
	}
	for _, u := range units[:4] {
		if n >= u.mult {
			if n%u.mult == 0 {
				return strconv.FormatInt(n/u.mult, 10) + u.suffix
			}
			return strconv.FormatFloat(float64(n)/float64(u.mult), 'f', 1, 64) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Share is the part of the memory available to the process that the default limit takes.
const Share = 0.75

// Set applies gcPercent (GOGC; 0 or less leaves the runtime's) and a soft memory limit: limit
// when above 0; else GOMEMLIMIT when the environment sets it (the runtime read it at start), else
// Share of what the process may use (the cgroup's memory limit, or physical memory). It returns
// the limit in force (math.MaxInt64 when none) and where it came from.
func Set(gcPercent int, limit int64) (int64, string) {
	if gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}
	switch {
	case limit > 0:
		debug.SetMemoryLimit(limit)
		return limit, "flag"
	case os.Getenv("GOMEMLIMIT") != "":
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	avail, from := Available("/")
	if avail <= 0 {
		return debug.SetMemoryLimit(-1), "runtime"
	}
	l := int64(float64(avail) * Share)
	debug.SetMemoryLimit(l)
	return l, from
}

// Available returns the memory the process may use, reading the files under root ("/" but in
// tests): the cgroup v2 memory.max or v1 memory.limit_in_bytes when they set a limit below
// physical memory, else MemTotal of /proc/meminfo; 0 when none can be read.
func Available(root string) (int64, string) {
	total := memTotal(filepath.Join(root, "proc/meminfo"))
	for _, f := range []string{"sys/fs/cgroup/memory.max", "sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 { // "max": no limit
			continue
		}
		if total == 0 || n < total {
			return n, "cgroup"
		}
	}
	if total > 0 {
		return total, "physical memory"
	}
	return 0, ""
}

func memTotal(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}
