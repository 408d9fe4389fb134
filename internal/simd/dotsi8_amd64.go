//go:build amd64 && !noasm

package simd

import "golang.org/x/sys/cpu"

// dotsI8AVX2 sets out[i] to the inner product of the n int8s at q with the
// n at codes+idx[i]·n for i < m, n a positive multiple of 16 (at most
// MaxDotI8Len), stopping at the first row whose end passes ncodes; it
// returns the rows done. The loop per row is dotI8AVX2's (the AVX-512
// path uses it too, for the reason given there).
//
//go:noescape
func dotsI8AVX2(out *int32, q *int8, n int, codes *int8, ncodes int, idx *uint32, m int) int

// dotsI8VNNI is dotsI8AVX2 for any n ≥ 1 with AVX-512 VNNI: per 64 bytes
// of a row, VPDPBUSD multiplies the query's bytes plus 128 (as uint8) by
// the row's int8s, a second VPDPBUSD by ones sums the row's int8s, and
// Σ(q+128)·c − 128·Σc is the exact Σq·c (the lanes' partial sums stay
// below 2^31 for n ≤ MaxDotI8Len); the last n mod 64 bytes are loaded
// under a mask, so no byte past a row is read. Four instructions per 64
// bytes, where the AVX2 loop takes sixteen. BenchmarkDotsI8 (24 random
// rows of 20,000, shared machine, medians of 6): 784 bytes 9.6 → 4.3 µs,
// 64 bytes 270 → 236 ns (there the rows' cache misses dominate).
//
//go:noescape
func dotsI8VNNI(out *int32, q *int8, n int, codes *int8, ncodes int, idx *uint32, m int) int

var hasVNNI = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VNNI

// dotsI8Arch runs the assembly over idx, returning the rows done: all of
// them unless one lies beyond codes, which the generic loop then reports.
// The AVX-512 path takes the VNNI kernel where the CPU has it; otherwise
// the AVX2 kernel, when len(q) is a multiple of 16 (64 and 784 are; other
// lengths take the generic loop).
func dotsI8Arch(out []int32, q, codes []int8, idx []uint32) int {
	n := len(q)
	if n == 0 {
		return 0
	}
	var c0 *int8
	if len(codes) > 0 {
		c0 = &codes[0]
	}
	if active == avx512 && hasVNNI {
		return dotsI8VNNI(&out[0], &q[0], n, c0, len(codes), &idx[0], len(idx))
	}
	if n%16 != 0 {
		return 0
	}
	return dotsI8AVX2(&out[0], &q[0], n, c0, len(codes), &idx[0], len(idx))
}
