//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// ProcessCPU is the CPU time this process has used, user and system, over all its threads (the
// garbage collector's too). Benchmarks report work per CPU second with it: on a machine shared
// with other work, wall time also counts the time spent waiting for a core.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
