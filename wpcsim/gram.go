package wpcsim

import "github.com/wpcdb/wpcdb/internal/simd"

// gramMatrix is a block of inner products between query and item points.
// f32 is always filled. f64 is filled too when the similarity needs
// ||a-b||² = ||a||² + ||b||² - 2<a,b> of raw (unnormalized) points for a
// gaussian or imq term: there the cancellation between terms of size
// ||a||² loses float32's precision, and PAPER.md's tolerance would be
// missed for long, nearby points. Normalized points keep every term near 1,
// where float32 is enough.
type gramMatrix struct {
	f32 []float32
	f64 []float64
	// q64 and x64 are scratch: the points widened to float64 once, so the
	// inner loop is float64 loads and multiply-adds only.
	q64, x64 []float64
}

// compute sets the n×m block of <q_i, x_j> for the n×d rows of q and the
// m×d rows of x: with the SIMD GEMM of internal/simd, or in float64 when
// wide.
func (gm *gramMatrix) compute(wide bool, q []float32, n int, x []float32, m, d int) {
	gm.f32 = grow(gm.f32, n*m)
	if !wide {
		simd.Gram(gm.f32, q, n, x, m, d)
		return
	}
	gm.f64 = grow64(gm.f64, n*m)
	gm.q64 = widen(gm.q64, q[:n*d])
	gm.x64 = widen(gm.x64, x[:m*d])
	gram64(gm.f64, gm.q64, n, gm.x64, m, d)
	for i, s := range gm.f64 {
		gm.f32[i] = float32(s)
	}
}

// widen returns src converted to float64 in dst's storage.
func widen(dst []float64, src []float32) []float64 {
	dst = grow64(dst, len(src))
	for i, v := range src {
		dst[i] = float64(v)
	}
	return dst
}

func grow64(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}

// gram64 sets dst[i*m+j] = <q_i, x_j> in float64 (each product of two
// float32 values is exact in float64; only the sums round). Rows are taken
// two by two against item points two by two: four independent sums share
// each load. The single-chain loop it replaces was bound by the latency of
// the float64 add and took 72% of a search's CPU on Fashion-MNIST patches
// (16 raw points, d = 51, gaussian kernel; BenchmarkSearchPatches).
func gram64(dst, q []float64, n int, x []float64, m, d int) {
	i := 0
	for ; i+1 < n; i += 2 {
		a0 := q[i*d : i*d+d]
		a1 := q[(i+1)*d : (i+1)*d+d]
		a1 = a1[:len(a0)]
		r0 := dst[i*m : i*m+m]
		r1 := dst[(i+1)*m : (i+1)*m+m]
		j := 0
		for ; j+1 < m; j += 2 {
			b0 := x[j*d : j*d+d]
			b1 := x[(j+1)*d : (j+1)*d+d]
			b0, b1 = b0[:len(a0)], b1[:len(a0)]
			var s00, s01, s10, s11 float64
			for k, u0 := range a0 {
				u1, v0, v1 := a1[k], b0[k], b1[k]
				s00 += u0 * v0
				s01 += u0 * v1
				s10 += u1 * v0
				s11 += u1 * v1
			}
			r0[j], r0[j+1], r1[j], r1[j+1] = s00, s01, s10, s11
		}
		if j < m {
			b0 := x[j*d : j*d+d]
			b0 = b0[:len(a0)]
			var s0, s1 float64
			for k, u0 := range a0 {
				s0 += u0 * b0[k]
				s1 += a1[k] * b0[k]
			}
			r0[j], r1[j] = s0, s1
		}
	}
	if i < n {
		a := q[i*d : i*d+d]
		r := dst[i*m : i*m+m]
		for j := range r {
			b := x[j*d : j*d+d]
			b = b[:len(a)]
			var s float64
			for k, u := range a {
				s += u * b[k]
			}
			r[j] = s
		}
	}
}
