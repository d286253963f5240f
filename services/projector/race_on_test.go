//go:build race

package projector

// raceEnabled shrinks the kill -9 test under the race detector, which slows the child ~10×.
const raceEnabled = true
