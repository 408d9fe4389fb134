package simd

import "math"

// Rsqrt sets dst[i] = 1/sqrt(src[i]) for every i < len(src), in float32
// (for the inverse multiquadric kernel c/sqrt(c²+δ²)). dst must be at least
// as long as src; dst and src may be the same slice, but must not otherwise
// overlap. Safe for concurrent use.
//
// Accuracy: relative error ≤ 2e-7 against float64 1/sqrt for every positive
// input, subnormals included; 1/sqrt(±0) = ±Inf, 1/sqrt(+Inf) = +0, negative
// or NaN gives NaN. (AVX-512: the 14-bit estimate plus one Newton step in
// FMA form; AVX2: a correctly rounded sqrt and divide, because the 12-bit
// estimate plus one Newton step misses 2e-7.)
//
// The reference loop:
//
//	for i, x := range src {
//		dst[i] = float32(1 / math.Sqrt(float64(x)))
//	}
func Rsqrt(dst, src []float32) {
	if len(dst) < len(src) {
		panic("simd: Rsqrt dst shorter than src")
	}
	active.rsqrt(dst[:len(src)], src)
}

func rsqrtGeneric(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = float32(1 / math.Sqrt(float64(x)))
	}
}
