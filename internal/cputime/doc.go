// Package cputime reads the process's CPU time: on a machine shared with
// other work, what a benchmark or a run cost is steadier than how long it
// took (wall time also counts the waits for a core). bench reports it
// beside wall time, and the benchmarks in go test report it per op.
package cputime
