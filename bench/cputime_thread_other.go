//go:build !linux

package bench

// threadCPU is not measured here (0).
func threadCPU() float64 { return 0 }
