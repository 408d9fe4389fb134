//go:build unix

package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// lockHolder returns the pid of the process holding the POSIX lock that
// Pebble takes on path (its LOCK file), or 0 when unknown.
func lockHolder(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	spec := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &spec); err != nil || spec.Type == unix.F_UNLCK {
		return 0
	}
	return int(spec.Pid)
}
