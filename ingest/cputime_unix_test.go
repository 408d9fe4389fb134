//go:build unix

package ingest_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used (user + system): a
// benchmark's cost on a machine shared with other work, where wall time
// also counts the waits for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
