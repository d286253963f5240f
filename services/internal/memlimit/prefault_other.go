//go:build !linux

package memlimit

// Prefault populates nothing outside Linux; see the Linux version.
func Prefault(n int64) Backed { return Backed{} }
