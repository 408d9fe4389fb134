//go:build unix

package bench

import "syscall"

// processCPU is the process's user and system CPU time so far, in
// milliseconds: on a shared machine, what a run cost is steadier than how
// long it took.
func processCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}
