//go:build !unix

package dev

// lockDir is a no-op where flock is not available: do not run two `convmeter dev` on one data
// directory.
func lockDir(string) (func(), error) { return func() {}, nil }
