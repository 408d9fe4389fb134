//go:build !amd64 || noasm

package simd

// dotsI8Arch scores no row: the generic loop does them all.
func dotsI8Arch(out []int32, q, codes []int8, idx []uint32) int { return 0 }
