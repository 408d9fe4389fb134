//go:build amd64 && !noasm

package simd

// dotsI8AVX2 sets out[i] to the inner product of the n int8s at q with the
// n at codes+idx[i]·n for i < m, n a positive multiple of 16 (at most
// MaxDotI8Len), stopping at the first row whose end passes ncodes; it
// returns the rows done. The loop per row is dotI8AVX2's (the AVX-512
// path uses it too, for the reason given there).
//
//go:noescape
func dotsI8AVX2(out *int32, q *int8, n int, codes *int8, ncodes int, idx *uint32, m int) int

// dotsI8Arch runs the assembly over idx when len(q) is a multiple of 16
// (64 and 784 are; other lengths take the generic loop), returning the
// rows done: all of them unless one lies beyond codes, which the generic
// loop then reports.
func dotsI8Arch(out []int32, q, codes []int8, idx []uint32) int {
	n := len(q)
	if n == 0 || n%16 != 0 {
		return 0
	}
	var c0 *int8
	if len(codes) > 0 {
		c0 = &codes[0]
	}
	return dotsI8AVX2(&out[0], &q[0], n, c0, len(codes), &idx[0], len(idx))
}
