package simd

// Dot returns the inner product of a and b, which must have equal lengths
// (it panics otherwise). Safe for concurrent use.
//
// The reference loop (the generic path adds in 4 partial sums):
//
//	var s float32
//	for i := range a {
//		s += a[i] * b[i]
//	}
//	return s
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("simd: Dot of slices of different lengths")
	}
	return active.dot(a, b)
}

func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}
