package testenv

import (
	"runtime/metrics"
	"time"
)

// GC is what the garbage collector has cost this process so far: its CPU time (mark workers,
// assists, pauses and background sweeping, as runtime/metrics estimates them at each cycle's
// end) and the cycles it completed. Benchmarks subtract two readings to split a run's CPU.
func GC() (cpu time.Duration, cycles uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindFloat64 {
		cpu = time.Duration(s[0].Value.Float64() * float64(time.Second))
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		cycles = s[1].Value.Uint64()
	}
	return cpu, cycles
}
