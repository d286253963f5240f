package memlimit

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
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
	if n := Prefault(32 << 20); n != 0 {
		t.Errorf("Prefault of 32 MiB populated %d bytes, want none (not worth it)", n)
	}
	const n = 256 << 20
	got := Prefault(n)
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
