package memlimit

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func minorFaults(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// TestPrefault: after Prefault, allocating that much in small objects takes almost no page
// faults; the same allocation past the prefaulted memory takes one per fresh page. It runs in a
// process of its own: the heap the other tests leave would serve the allocations.
func TestPrefault(t *testing.T) {
	if os.Getenv("MEMLIMIT_PREFAULT_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPrefault$", "-test.v")
		cmd.Env = append(os.Environ(), "MEMLIMIT_PREFAULT_CHILD=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in its own process:\n%s", out)
		if err != nil {
			t.Fatal(err)
		}
		return
	}
	keepSettings(t)
	// A process that collected before, as a replay has when it starts: the scavenger's pacing
	// then comes from that heap.
	for range 20 {
		junk := make([][]byte, 10_000)
		for i := range junk {
			junk[i] = make([]byte, 1000)
			junk[i][0] = 1
		}
		runtime.GC()
	}
	stop := Floor(100, 2<<30, 8<<30)
	defer stop()
	if got := Prefault(32 << 20); got != (Backed{}) {
		t.Errorf("Prefault of 32 MiB populated %+v, want none (not worth it)", got)
	}
	const n = 256 << 20
	backed := Prefault(n)
	t.Logf("Prefault(%d): %+v", n, backed)
	got := backed.Bytes
	if got == 0 {
		t.Skip("the kernel cannot populate memory (MADV_POPULATE_WRITE needs Linux 5.14)")
	}
	page := int64(os.Getpagesize())
	if got < n-page || got > n {
		t.Errorf("populated %d bytes, want %d", got, n)
	}
	const objects, size = 200_000, 1000 // 200 MB: 49k pages
	pages := int64(objects * size / page)
	alloc := func(n int) ([][]byte, int64) {
		f0 := minorFaults(t)
		keep := make([][]byte, n)
		for i := range keep {
			keep[i] = make([]byte, size)
			keep[i][0] = 1 // fresh memory is known zero, so make did not touch it
		}
		return keep, minorFaults(t) - f0
	}
	keep1, within := alloc(objects)
	keep2, _ := alloc(80_000) // the rest of the prefaulted memory, and some
	keep3, beyond := alloc(objects)
	t.Logf("allocating %d pages: %d faults within the prefaulted memory, %d beyond it (race detector: %v)", pages, within, beyond, raceEnabled)
	// The race detector's shadow memory faults whether or not the heap was prefaulted.
	if !raceEnabled && within > pages/10 {
		t.Errorf("%d faults allocating %d pages of prefaulted memory, want under a tenth", within, pages)
	}
	if beyond-within < pages*8/10 {
		t.Errorf("%d faults beyond the prefaulted memory against %d within: want at least %d more (one a fresh page)", beyond, within, pages*8/10)
	}
	runtime.KeepAlive(keep1)
	runtime.KeepAlive(keep2)
	runtime.KeepAlive(keep3)
}

// fakePopulate is a populateFunc that touches nothing: a small-page chunk takes small, a
// huge-page chunk takes huge(i) for the i-th huge chunk (from 0), and the kernel takes the
// request for huge pages unless refuse.
type fakePopulate struct {
	small  time.Duration
	huge   func(i int) time.Duration
	refuse bool

	mu        sync.Mutex
	hugeCalls int
}

func (f *fakePopulate) populate(c []byte, huge bool) (backed, asHuge bool) {
	if !huge || f.refuse {
		time.Sleep(f.small * time.Duration(len(c)) / chunk)
		return true, false
	}
	f.mu.Lock()
	i := f.hugeCalls
	f.hugeCalls++
	f.mu.Unlock()
	time.Sleep(f.huge(i) * time.Duration(len(c)) / chunk)
	return true, true
}

// TestPopulateAdaptive: huge pages for the rest when the probe finds them cheaper, none after
// the probe when it finds them dearer, and none as soon as they turn dear (the hypervisor's
// memory). The chunks are not touched: the fake only sleeps.
func TestPopulateAdaptive(t *testing.T) {
	const chunks = 24
	b := make([]byte, chunks*chunk)
	whole := int64(len(b)) / int64(os.Getpagesize()) * int64(os.Getpagesize())
	cheap := func(int) time.Duration { return 200 * time.Microsecond }
	dear := func(int) time.Duration { return 40 * time.Millisecond }
	for _, tc := range []struct {
		name             string
		allowed          bool
		f                *fakePopulate
		minHuge, maxHuge int64 // bytes asked for as huge pages, the probe's included
		wantProbes       bool
	}{
		// All but the small probe and the head before the first huge-page boundary.
		{"cheaper", true, &fakePopulate{small: 4 * time.Millisecond, huge: cheap}, whole - chunk - hugePage, whole - chunk, true},
		{"dearer", true, &fakePopulate{small: 4 * time.Millisecond, huge: dear}, chunk, chunk, true},
		// The chunks before, the one that found it dear, and one the other worker had started.
		{"turning dear", true, &fakePopulate{small: 4 * time.Millisecond, huge: func(i int) time.Duration {
			if i < 6 {
				return cheap(i)
			}
			return dear(i)
		}}, 7 * chunk, 8 * chunk, true},
		{"not allowed", false, &fakePopulate{small: time.Millisecond, huge: cheap}, 0, 0, false},
		{"refused", true, &fakePopulate{small: time.Millisecond, huge: cheap, refuse: true}, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := populateAdaptive(b, tc.allowed, 2, tc.f.populate)
			t.Logf("%+v", got)
			if got.Bytes != whole {
				t.Errorf("backed %d bytes, want all %d", got.Bytes, whole)
			}
			if got.Huge < tc.minHuge || got.Huge > tc.maxHuge {
				t.Errorf("huge pages asked for %d bytes (%.2f chunks), want %d to %d", got.Huge, float64(got.Huge)/chunk, tc.minHuge, tc.maxHuge)
			}
			if probed := got.SmallProbe > 0 && got.HugeProbe > 0; probed != tc.wantProbes {
				t.Errorf("probe times %v and %v, want probed: %v", got.SmallProbe, got.HugeProbe, tc.wantProbes)
			}
		})
	}
}

// TestPopulateHugePages: asked for huge pages, the kernel backs the chunks with them
// (AnonHugePages in /proc/self/smaps), where it allows them at all. The memory is mapped afresh:
// memory already backed keeps its pages.
func TestPopulateHugePages(t *testing.T) {
	if !thpAllowed() {
		t.Skip("transparent huge pages are off (never)")
	}
	b, err := unix.Mmap(-1, 0, 8*chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(b) }()
	got := populateAdaptive(b, true, 2, func(c []byte, _ bool) (bool, bool) { return populateRange(c, true) })
	if got.Bytes < int64(len(b))-int64(os.Getpagesize()) {
		t.Fatalf("backed %d bytes of %d", got.Bytes, len(b))
	}
	hugeKB := anonHugeKB(t, b)
	t.Logf("%+v; AnonHugePages over the buffer's mappings: %d kB", got, hugeKB)
	if got.Huge > 0 && hugeKB == 0 {
		t.Errorf("huge pages asked for %d bytes, and the kernel backs none of the buffer with them", got.Huge)
	}
}

// anonHugeKB sums AnonHugePages over the mappings of /proc/self/smaps that overlap b.
func anonHugeKB(t *testing.T, b []byte) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	lo := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	hi := lo + uint64(len(b))
	var sum int64
	var in bool
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if start, end, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			s, err1 := strconv.ParseUint(start, 16, 64)
			e, err2 := strconv.ParseUint(end, 16, 64)
			in = err1 == nil && err2 == nil && s < hi && e > lo
			continue
		}
		if in && f[0] == "AnonHugePages:" && len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += n
		}
	}
	return sum
}
