package index

import (
	"math"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// Quantized codes: a graph walk scores nodes with int8 codes of their
// vectors, one scale per vector, instead of the float32 vectors: at
// dimension 64 a code is one cache line instead of four, and a walk is
// bound by those cache misses. The codes only steer the walk; the nodes
// it keeps are scored again with the float32 vectors, so a search's
// results and scores are the float scan's (see HNSW.walk).
//
// The error bound (TestQuantizedDotBound): with v = s·c + e, |e_i| ≤ s/2,
// and q = t·b + f, |f_i| ≤ t/2,
//
//	|<q, v> − t·s·<b, c>| = |<f, v> + <q, e> − <f, e>|
//	                      ≤ t/2·|v|₁ + s/2·|q|₁ + d·t·s/4.

// quantize writes v's code into dst (len(v) values) and returns its scale
// s: v_i ≈ s·dst_i within s/2, s = max|v_i|/127. A zero vector (or one
// holding an infinity, which validated vectors never do) gets scale 0 and
// a zero code.
func quantize(dst []int8, v []float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	if m == 0 || m > math.MaxFloat32 || m != m {
		clear(dst[:len(v)])
		return 0
	}
	inv := 127 / m
	for i, x := range v {
		dst[i] = int8(math.Round(float64(x * inv))) // |x·inv| ≤ 127 (+ rounding)
	}
	return m / 127
}

// quantDot is the estimate of <q, v> from their codes and scales.
func quantDot(qc []int8, qs float32, vc []int8, vs float32) float32 {
	return qs * vs * float32(simd.DotI8(qc, vc))
}

// quantWalk turns the walk by codes on (false only in benchmarks that
// compare it with the float32 walk).
var quantWalk = true

// quantizable reports whether vectors of dimension dim get codes.
func quantizable(dim int) bool { return dim <= simd.MaxDotI8Len }

// ResidentBytes is the memory the vectors of a Tiered index of dimension
// dim take, the graph's links not counted: 4·dim bytes per vector, and for
// one in the graph also its code and scale (dim + 4 bytes).
func ResidentBytes(dim, inGraph, buffered int) int64 {
	per := int64(4 * dim)
	code := int64(0)
	if quantizable(dim) {
		code = int64(dim + 4)
	}
	return int64(inGraph)*(per+code) + int64(buffered)*per
}
