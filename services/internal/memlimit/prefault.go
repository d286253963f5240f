package memlimit

import "time"

// Backed is what Prefault populated: Bytes in all, Huge of them in regions where the kernel was
// asked for huge pages.
type Backed struct {
	Bytes, Huge int64
	// SmallProbe and HugeProbe are how long populating one 16 MiB chunk took with small pages and
	// with huge pages, the measure the choice was made on (zero when huge pages were not tried).
	SmallProbe, HugeProbe time.Duration
}
