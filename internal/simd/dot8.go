package simd

// MaxDotI8Len is the longest pair of vectors DotI8 takes: every product is
// at most 128·128 = 2^14 in magnitude, so 2^16 of them sum within int32.
const MaxDotI8Len = 1 << 16

// DotI8 returns the inner product of two int8 vectors, exactly, as an
// int32. They must have equal lengths of at most MaxDotI8Len (it panics
// otherwise). Safe for concurrent use; allocates nothing.
//
// It scores quantized first-stage codes (package index): 64 dimensions are
// one cache line instead of four.
//
// The reference loop:
//
//	var s int32
//	for i := range a {
//		s += int32(a[i]) * int32(b[i])
//	}
//	return s
func DotI8(a, b []int8) int32 {
	if len(a) != len(b) {
		panic("simd: DotI8 of slices of different lengths")
	}
	if len(a) > MaxDotI8Len {
		panic("simd: DotI8 of more than MaxDotI8Len elements")
	}
	return active.dotI8(a, b)
}

func dotI8Generic(a, b []int8) int32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += int32(a[i]) * int32(b[i])
		s1 += int32(a[i+1]) * int32(b[i+1])
		s2 += int32(a[i+2]) * int32(b[i+2])
		s3 += int32(a[i+3]) * int32(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += int32(a[i]) * int32(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}
