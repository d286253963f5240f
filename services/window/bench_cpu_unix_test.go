//go:build unix

package window

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used, in user and system mode, over all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
