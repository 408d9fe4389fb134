package index

import (
	"math"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// Quantized codes: a graph walk scores nodes with int8 codes of their
// vectors, one scale per vector, instead of the float32 vectors: at
// dimension 64 a code is one cache line instead of four, and a walk is
// bound by those cache misses. By default the codes only steer the walk;
// the nodes it keeps are scored again with the float32 vectors, so a
// search's results and scores are the float scan's (see HNSW.walk). A
// graph that keeps codes alone (HNSW.dropVectors, TieredOptions.CodesOnly)
// returns the estimates.
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

// ResidentBytes is the memory a Tiered index of dimension dim with
// options o takes, per vector: in the buffer its float32 vector (or with
// o.CodesOnly its code, scale and code sum), squared norm, ID and map
// entry; in the graph its code and scale (when the
// dimension has codes), its float32 vector unless o.CodesOnly, its
// squared norm, ID, level and state, its layer-0 links (2M+1 uint32), its
// upper-layer slices (a header each, and on average 1/(M−1) layers of M
// links above layer 0) and its map entry (about 16 bytes in Go's map);
// plus about 2 bytes an ID in the index's roaring bitmap. The scratch of
// searches (4 bytes a node per concurrent walk) is not counted.
func ResidentBytes(dim, inGraph, buffered int, o TieredOptions) int64 {
	o.HNSW.EnsureDefaults()
	const mapEntry, idSet = 16, 2
	vec := int64(4 * dim)
	flat := vec + 4 + 4 + mapEntry
	if o.CodesOnly && quantizable(dim) {
		flat = int64(4*((dim+3)/4)) + 4 + 4 + 4 + 4 + mapEntry // code, scale, code sum, norm, ID
	}
	node := int64(4+4+1+1) + int64(2*o.HNSW.M+1)*4 + 24 + (24+4*int64(o.HNSW.M))/int64(o.HNSW.M-1) + mapEntry
	if quantizable(dim) {
		node += int64(dim + 4)
	}
	if !o.CodesOnly || !quantizable(dim) {
		node += vec
	}
	return int64(inGraph)*(node+idSet) + int64(buffered)*(flat+idSet)
}
