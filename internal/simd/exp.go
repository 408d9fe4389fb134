package simd

import "math"

// Exp sets dst[i] = e^src[i] for every i < len(src), in float32. dst must be
// at least as long as src; dst and src may be the same slice, but must not
// otherwise overlap. Safe for concurrent use.
//
// Accuracy: relative error ≤ 4e-7 (about 3 ulp) for src in
// [-87.3365, 88.7228]. Outside it the result is +0 below (a result that would
// be subnormal is flushed to zero on purpose: no path ever produces a
// denormal, which is slow and worthless in a kernel sum) and +Inf above.
// NaN gives NaN.
//
// The reference loop (Cephes expf: n = round(x·log2 e), r = x − n·ln 2 in two
// parts, e^r by a degree-7 polynomial, times 2^n in two halves so n = 128
// cannot overflow the exponent field):
//
//	for i, x := range src {
//		switch {
//		case x < expLo:
//			dst[i] = 0
//		case x > expHi:
//			dst[i] = float32(math.Inf(1))
//		default:
//			dst[i] = expf(x) // NaN stays NaN
//		}
//	}
func Exp(dst, src []float32) {
	if len(dst) < len(src) {
		panic("simd: Exp dst shorter than src")
	}
	active.exp(dst[:len(src)], src)
}

const (
	// expHi is the largest float32 whose e^x is finite (88.72283...).
	expHi = 88.72283172607422
	// expLo is the smallest float32 whose e^x is a normal float32
	// (-87.33654...); e^x below it is flushed to +0.
	expLo = -87.33654022216797

	expLog2e = 1.44269504088896341
	expC1    = 0.693359375    // ln 2, high part: few bits, so n·C1 is exact
	expC2    = -2.12194440e-4 // ln 2 − C1
	expP0    = 1.9875691500e-4
	expP1    = 1.3981999507e-3
	expP2    = 8.3334519073e-3
	expP3    = 4.1665795894e-2
	expP4    = 1.6666665459e-1
	expP5    = 5.0000001201e-1
)

func expGeneric(dst, src []float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		switch {
		case x < expLo:
			dst[i] = 0
		case x > expHi:
			dst[i] = float32(math.Inf(1))
		default:
			dst[i] = expf(x)
		}
	}
}

// expf is e^x for x in [expLo, expHi] or NaN.
func expf(x float32) float32 {
	n := float32(math.RoundToEven(float64(x * expLog2e)))
	r := x - n*expC1
	r -= n * expC2
	p := float32(expP0)
	p = p*r + expP1
	p = p*r + expP2
	p = p*r + expP3
	p = p*r + expP4
	p = p*r + expP5
	y := p*(r*r) + r + 1
	if n != n {
		return y // NaN
	}
	// Scale by 2^n as 2^n1 · 2^n2 with both halves in [-63, 64].
	ni := int32(n)
	n1 := ni >> 1
	n2 := ni - n1
	y *= math.Float32frombits(uint32(n1+127) << 23)
	y *= math.Float32frombits(uint32(n2+127) << 23)
	return y
}
