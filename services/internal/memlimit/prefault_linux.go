package memlimit

import (
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Prefault makes the Go heap hold about n bytes that the kernel has already backed with memory,
// so that the allocations which follow reuse them instead of taking a page fault for every fresh
// 4 KiB. It allocates n bytes, has the kernel populate them for writing (MADV_POPULATE_WRITE,
// Linux 5.14, in parallel on every CPU), drops them and collects, leaving them free in the heap.
// It returns what it populated: nothing when n is below 64 MiB or the kernel cannot populate.
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
// Huge pages go further where the kernel gives them as cheaply as small ones (populateAdaptive):
// the same memory is backed with a 512th of the faults, and the replay then misses the TLB less
// on its maps and caches spread over 2 GB. Replays run back to back on the 2-core VM, each one's
// 1.9 GB all in huge pages, spent a tenth less user CPU (3.9 s against 4.4) and ran at
// 294k-300k records/s against 256k-264k. That VM's hypervisor takes back free memory, though, so
// there only the first 100-180 MB come cheap and the rest are small pages, with no difference
// measured.
//
// Only a batch job that will use the memory soon should call it, under Floor (GOGC off): the
// runtime's scavenger returns free heap memory beyond what the heap goal calls for to the kernel,
// in the background, and with GOGC on that goal would be a small multiple of the little that is
// live when Prefault returns.
func Prefault(n int64) Backed {
	const minimum = 64 << 20
	if n < minimum {
		return Backed{}
	}
	backed := populateAdaptive(make([]byte, n), thpAllowed(), runtime.GOMAXPROCS(0), populateRange)
	runtime.GC() // frees the bytes: their pages stay in the heap, backed
	return backed
}

const (
	hugePage = 2 << 20  // a transparent huge page (x86-64, and arm64 with 4 KiB pages)
	chunk    = 16 << 20 // the unit of populating, and of each probe
)

// thpAllowed reports whether the kernel may back a region with transparent huge pages when asked
// (MADV_HUGEPAGE): the mode is "always" or "madvise", not "never".
func thpAllowed() bool {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && !strings.Contains(string(mode), "[never]")
}

// populateAdaptive backs b's whole pages for writing in chunks, workers at a time, and returns
// what it backed, populating each range with populate (populateRange but in tests). With huge
// allowed, it first populates one chunk with small pages and one with huge pages at once
// (MADV_HUGEPAGE, 2 MiB-aligned), and asks for huge pages for the rest only if they came at most
// as dear; it stops asking as soon as a huge chunk costs more than half as much again as the
// small probe did.
//
// Why measure: a huge page is usually the cheaper (one fault, one clear of 2 MiB: 0.23 CPU-s
// for 1.9 GB against 0.6 with small pages, on the 2-core VM), but under a hypervisor that takes
// back the guest's free memory (virtio-balloon free page reporting, which reports free blocks of
// 2 MiB and more), the huge pages come from memory the host must back again: 3.9-4.3 CPU-s for
// the same 1.9 GB on that VM after it sat idle for 8 s, while small pages came from free memory
// the host still backed.
func populateAdaptive(b []byte, huge bool, workers int, populate populateFunc) Backed {
	page := uintptr(os.Getpagesize())
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := int((page - base%page) % page) // large objects are page-aligned; this is for safety
	b = b[skip : skip+(len(b)-skip)/int(page)*int(page)]
	var out Backed
	if len(b) == 0 {
		return out
	}
	// The head before the first huge-page boundary, with small pages; then chunks from there.
	head := min(int((hugePage-(base+uintptr(skip))%hugePage)%hugePage), len(b))
	if ok, _ := populate(b[:head], false); ok {
		out.Bytes += int64(head)
	}
	b = b[head:]
	var chunks [][]byte
	for len(b) > 0 {
		n := min(chunk, len(b))
		chunks = append(chunks, b[:n])
		b = b[n:]
	}
	var useHuge atomic.Bool
	var limit time.Duration // the most a huge chunk may take
	if huge && len(chunks) >= 4 {
		var ts, th time.Duration
		var okS, okH, asHuge bool
		var wg sync.WaitGroup
		wg.Go(func() { ts, okS, _ = timed(populate, chunks[0], false) })
		wg.Go(func() { th, okH, asHuge = timed(populate, chunks[1], true) })
		wg.Wait()
		if okS {
			out.Bytes += chunk
		}
		if okH {
			out.Bytes += chunk
			if asHuge {
				out.Huge += chunk
			}
		}
		out.SmallProbe, out.HugeProbe = ts, th
		useHuge.Store(okS && okH && asHuge && th <= ts)
		limit = ts * 3 / 2
		chunks = chunks[2:]
	}
	var next atomic.Int64
	var bytes, hugeBytes atomic.Int64
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(chunks) {
					return
				}
				c := chunks[i]
				d, ok, asHuge := timed(populate, c, useHuge.Load())
				if !ok {
					continue
				}
				bytes.Add(int64(len(c)))
				if asHuge {
					hugeBytes.Add(int64(len(c)))
					if d*chunk > limit*time.Duration(len(c)) {
						useHuge.Store(false)
					}
				}
			}
		})
	}
	wg.Wait()
	out.Bytes += bytes.Load()
	out.Huge += hugeBytes.Load()
	return out
}

// timed populates c with populate and returns how long that took as well.
func timed(populate populateFunc, c []byte, huge bool) (d time.Duration, backed, asHuge bool) {
	start := time.Now()
	backed, asHuge = populate(c, huge)
	return time.Since(start), backed, asHuge
}

// populateFunc backs c as populateRange does.
type populateFunc func(c []byte, huge bool) (backed, asHuge bool)

// populateRange has the kernel back c's pages for writing, asking for huge pages when huge (c
// should then start on a huge-page boundary). It reports whether c is backed, and whether huge
// pages were asked for and the kernel took the request (a kernel without THP refuses it).
func populateRange(c []byte, huge bool) (backed, asHuge bool) {
	if len(c) == 0 {
		return true, false
	}
	asHuge = huge && unix.Madvise(c, unix.MADV_HUGEPAGE) == nil
	return unix.Madvise(c, unix.MADV_POPULATE_WRITE) == nil, asHuge
}
