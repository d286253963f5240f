//go:build unix

package dev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive lock on dir for this process, so two `convmeter dev` never share
// one broker data directory. The lock goes with the process; release closes it earlier.
func lockDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dev: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("dev: another convmeter dev uses %s (lock %s held)", dir, path)
		}
		return nil, fmt.Errorf("dev: lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}
