package bench

import "github.com/wpcdb/wpcdb/internal/cputime"

// processCPU is the process's user and system CPU time so far, in
// milliseconds: on a shared machine, what a run cost is steadier than how
// long it took.
func processCPU() float64 { return float64(cputime.Process()) / 1e6 }
