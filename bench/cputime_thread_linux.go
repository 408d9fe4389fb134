package bench

import "syscall"

// threadCPU is the calling OS thread's user and system CPU time so far, in
// milliseconds (the caller locks its goroutine to the thread).
func threadCPU() float64 {
	const rusageThread = 1 // RUSAGE_THREAD
	var ru syscall.Rusage
	if syscall.Getrusage(rusageThread, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}
