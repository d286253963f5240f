package memlimit

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prefault makes the Go heap hold about n bytes that the kernel has already backed with memory,
// so that the allocations which follow reuse them instead of taking a page fault for every fresh
// 4 KiB. It allocates n bytes, has the kernel populate them for writing (MADV_POPULATE_WRITE,
// Linux 5.14, one part per CPU in parallel), drops them and collects, leaving them free in the
// heap. It returns the bytes populated: 0 when n is below 64 MiB or the kernel cannot populate.
//
// Why: a fresh page costs a fault, and a fresh page read before it is written (the runtime
// updates some spans' heap bits, kept at their end, by read-modify-write) is first mapped to the
// zero page and faults again on the write, flushing the TLB of every CPU the process ran on.
// Measured with perf on `convmeter replay` of 1M records under Floor (2-core VM): page faults
// took 23% of its CPU, a third of that in such second faults (on the decoder's first writes into
// new events). Populating the 1.9 GB it was about to use took 0.54 s in one thread and
// 0.33-0.45 s in two, after which the replay ran at 250k-256k records/s (the populating
// counted) instead of 232k-240k.
//
// Only a batch job that will use the memory soon should call it, under Floor (GOGC off): the
// runtime's scavenger returns free heap memory beyond what the heap goal calls for to the kernel,
// in the background, and with GOGC on that goal would be a small multiple of the little that is
// live when Prefault returns.
func Prefault(n int64) int64 {
	const minimum = 64 << 20
	if n < minimum {
		return 0
	}
	populated := populate(make([]byte, n))
	runtime.GC() // frees the bytes: their pages stay in the heap, backed
	return populated
}

// populate has the kernel back b's whole pages for writing, one part per CPU in parallel, and
// returns the bytes it backed.
func populate(b []byte) int64 {
	page := uintptr(os.Getpagesize())
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := int((page - base%page) % page) // large objects are page-aligned; this is for safety
	b = b[skip : skip+(len(b)-skip)/int(page)*int(page)]
	parts := max(runtime.GOMAXPROCS(0), 1)
	size := len(b) / parts / int(page) * int(page)
	var wg sync.WaitGroup
	var populated atomic.Int64
	for i := range parts {
		lo, hi := i*size, (i+1)*size
		if i == parts-1 {
			hi = len(b)
		}
		wg.Go(func() {
			if unix.Madvise(b[lo:hi], unix.MADV_POPULATE_WRITE) == nil {
				populated.Add(int64(hi - lo))
			}
		})
	}
	wg.Wait()
	return populated.Load()
}
