package simd

import "math"

// CosAdd sets dst[i] = cos(p[i] + b[i]) for every i < len(p), in float32:
// the random-feature cosine of a row of projections p and phases b. dst and
// b must be at least as long as p; dst may be the same slice as p or b, but
// must not otherwise overlap them. Safe for concurrent use.
//
// Accuracy: the sum x = p[i] + b[i] is rounded to float32 first, and
// |dst[i] − cos(x)| ≤ 2e-7 (absolute) for |x| ≤ 65536 ([CosMax]); against
// the exact cos(p[i] + b[i]) add the rounding of the sum, at most
// ulp(x)/2·|sin x| (6e-8 per unit of |x|). Beyond CosMax every path falls
// back to float64 math.Cos of x, so the result is still correct to float32;
// NaN or ±Inf give NaN.
//
// The reference loop (cos x = (−1)^n · sin r with n = round(x/π + ½) and
// r = x − (2n − 1)·π/2 in [−π/2, π/2], sin r by an odd degree-9 polynomial
// fitted to minimax on [0, π/2 + 0.02]; the assembly reduces in three FMA
// steps, the Go twin in float64):
//
//	for i, v := range p {
//		x := v + b[i]
//		if |x| ≤ CosMax {
//			dst[i] = cosf(x)
//		} else {
//			dst[i] = float32(math.Cos(float64(x))) // NaN for NaN and ±Inf
//		}
//	}
func CosAdd(dst, p, b []float32) {
	if len(dst) < len(p) || len(b) < len(p) {
		panic("simd: CosAdd dst or b shorter than p")
	}
	active.cosAdd(dst[:len(p)], p, b[:len(p)], 0, false)
}

// CosAddAcc adds w·cos(p[i] + b[i]) to acc[i] for every i < len(p): one
// point's share of a random-feature sum, without storing the cosines. acc
// and b must be at least as long as p, and acc must not overlap p or b.
// The cosine is CosAdd's, with the same accuracy; the paths with FMA round
// the product and the sum once, the Go twin twice. Safe for concurrent use.
//
// The reference loop:
//
//	for i, v := range p {
//		acc[i] += w * cos(v+b[i]) // cos as in CosAdd
//	}
func CosAddAcc(acc []float32, w float32, p, b []float32) {
	if len(acc) < len(p) || len(b) < len(p) {
		panic("simd: CosAddAcc acc or b shorter than p")
	}
	active.cosAdd(acc[:len(p)], p, b[:len(p)], w, true)
}

// CosMax is the largest |p + b| that CosAdd reduces in float32; beyond it
// (rare for random features, whose projections are a few units) the
// kernels fall back to float64 math.Cos.
const CosMax = 65536

const (
	cosInvPi = 0.318309886183790671537767526745 // 1/π
	// π/2 in three float32 parts for the assembly's FMA reduction.
	cosP1 = 1.57079637050628662109375 // float32(π/2)
	cosP2 = -4.371138828673793e-08    // float32(π/2 − P1)
	cosP3 = -1.7151245100058819e-15   // float32(π/2 − P1 − P2)
	cosC3 = -1.6666656733e-01         // sin r ≈ r + r³(C3 + r²(C5 + r²(C7 + r²·C9)))
	cosC5 = 8.3329929039e-03
	cosC7 = -1.9804849580e-04
	cosC9 = 2.5961753636e-06
)

func cosAddGeneric(dst, p, b []float32, w float32, acc bool) {
	dst, b = dst[:len(p)], b[:len(p)]
	for i, v := range p {
		c := cosOne(v + b[i])
		if acc {
			dst[i] += float32(w * c)
		} else {
			dst[i] = c
		}
	}
}

// cosOne is cos(x) as CosAdd defines it: cosf within CosMax, math.Cos
// beyond.
func cosOne(x float32) float32 {
	if math.Abs(float64(x)) <= CosMax {
		return cosf(x)
	}
	return float32(math.Cos(float64(x)))
}

// cosf is cos(x) for |x| ≤ CosMax.
func cosf(x float32) float32 {
	n := float32(math.RoundToEven(float64(float32(x*cosInvPi) + 0.5)))
	m := 2*n - 1
	// x − m·π/2: the float64 product and difference are exact enough
	// (|m| < 2^16) that r is rounded once.
	r := float32(float64(x) - float64(m)*(math.Pi/2))
	s := r * r
	u := float32(cosC9)
	u = float32(u*s) + cosC7
	u = float32(u*s) + cosC5
	u = float32(u*s) + cosC3
	y := r + float32(float32(u*r)*s)
	if int32(n)&1 != 0 {
		y = -y
	}
	return y
}

// cosFixup redoes, in Go, the elements an assembly pass left out of range:
// in CosAdd mode the assembly stored x itself there (|x| > CosMax or NaN,
// never a cosine), in CosAddAcc mode it left acc unchanged.
func cosFixup(dst, p, b []float32, w float32, acc bool) {
	for i, v := range p {
		if acc {
			if x := v + b[i]; !(math.Abs(float64(x)) <= CosMax) {
				dst[i] += float32(w * float32(math.Cos(float64(x))))
			}
		} else if x := dst[i]; !(math.Abs(float64(x)) <= CosMax) {
			dst[i] = float32(math.Cos(float64(x)))
		}
	}
}
