//go:build amd64 && !noasm

package simd

// dotI8AVX2 returns the exact inner product of the first n int8s of a and
// b, n a multiple of 16 (at most MaxDotI8Len). The AVX-512 path uses it
// too: on Zen 4/5 the 256-bit sign-extend and multiply-add are full speed,
// and a 64-byte code is two steps either way.
//
//go:noescape
func dotI8AVX2(a, b *int8, n int) int32

func dotI8Asm(a, b []int8) int32 {
	b = b[:len(a)]
	n := len(a) &^ 15
	var s int32
	if n > 0 {
		s = dotI8AVX2(&a[0], &b[0], n)
	}
	for i := n; i < len(a); i++ {
		s += int32(a[i]) * int32(b[i])
	}
	return s
}
