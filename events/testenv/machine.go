package testenv

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// MachineBusy is the CPU time the whole machine has spent busy (every state of /proc/stat's cpu
// line but idle and iowait), summed over its cores, or 0 where /proc/stat cannot be read.
// Benchmarks divide its change by the wall time of a phase to report how many cores the phase
// kept busy, the broker's and Redis's work included: a phase that leaves cores idle is bound by
// waiting, not by CPU.
func MachineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) < 5 || string(f[0]) != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 7 { // guest and guest_nice are already counted in user and nice
			break
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux architecture Go supports.
const clockTicks = 100

// PIDCPU is the CPU time process pid has used, user and system (from /proc/PID/stat), or 0
// where that cannot be read. Benchmarks take the broker's from it when they know its pid
// (CONVMETER_KAFKA_PID, which scripts/bench-aggregator.sh sets for the broker it started).
func PIDCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: fields are counted after its end.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14 of the whole line
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}
