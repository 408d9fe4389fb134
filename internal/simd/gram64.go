package simd

import "sync"

// Gram64 sets dst[i*m+j] = <q_i, x_j> summed in float64, for the n×d
// float64 rows of q and the m×d float32 rows of x (row-major). Each
// product of a float32 value with a float32 value widened into q is exact
// in float64; only the sums round, in an order that depends on the path.
// It is the Gram of raw points under a gaussian or imq kernel, where
// ||a||² + ||b||² - 2<a,b> cancels and float32 sums would lose the
// distance. Panics if a dimension is negative or a slice is shorter than
// its matrix. Safe for concurrent use; allocates nothing.
func Gram64(dst, q []float64, n int, x []float32, m, d int) {
	if n < 0 || m < 0 || d < 0 {
		panic("simd: Gram64 with a negative dimension")
	}
	if len(dst) < n*m || len(q) < n*d || len(x) < m*d {
		panic("simd: Gram64 slice shorter than its matrix")
	}
	if n == 0 || m == 0 {
		return
	}
	if d == 0 {
		clear(dst[:n*m])
		return
	}
	active.gram64(dst, q, n, x, m, d)
}

// gram64Generic takes rows two by two against item points two by two:
// four independent sums share each load (one sum per entry would be bound
// by the latency of the float64 add).
func gram64Generic(dst, q []float64, n int, x []float32, m, d int) {
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
				u1, v0, v1 := a1[k], float64(b0[k]), float64(b1[k])
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
				v := float64(b0[k])
				s0 += u0 * v
				s1 += a1[k] * v
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
				s += u * float64(b[k])
			}
			r[j] = s
		}
	}
}

// Norms64 sets dst[j] = ||x_j||² summed in float64 for the m×d float32
// rows of x: the squared norms beside a [Gram64], in the same precision
// (each square exact, only the sums round). A NaN or ±Inf coordinate makes
// its row's norm NaN or +Inf, so a finite result proves the row finite.
// Panics if a dimension is negative or a slice is shorter than its matrix.
// Safe for concurrent use; allocates nothing.
//
// The generic path:
//
//	for j := range m {
//		var s float64
//		for _, v := range x[j*d : j*d+d] {
//			s += float64(v) * float64(v)
//		}
//		dst[j] = s
//	}
func Norms64(dst []float64, x []float32, m, d int) {
	if m < 0 || d < 0 {
		panic("simd: Norms64 with a negative dimension")
	}
	if len(dst) < m || len(x) < m*d {
		panic("simd: Norms64 slice shorter than its matrix")
	}
	if m == 0 {
		return
	}
	if d == 0 {
		clear(dst[:m])
		return
	}
	active.norms64(dst, x, m, d)
}

// norms64Generic keeps four running sums per row (one sum would be bound
// by the latency of the float64 add).
func norms64Generic(dst []float64, x []float32, m, d int) {
	for j := range dst[:m] {
		r := x[j*d : j*d+d]
		var s0, s1, s2, s3 float64
		k := 0
		for ; k+4 <= len(r); k += 4 {
			a, b, c, e := float64(r[k]), float64(r[k+1]), float64(r[k+2]), float64(r[k+3])
			s0 += a * a
			s1 += b * b
			s2 += c * c
			s3 += e * e
		}
		for ; k < len(r); k++ {
			s0 += float64(r[k]) * float64(r[k])
		}
		dst[j] = (s0 + s1) + (s2 + s3)
	}
}

// Dist64 sets dst[i*m+j] = float32(scale · max(0, qn[i] + xn[j] − 2⟨q_i, x_j⟩))
// for the n×d float64 rows of q and the m×d float32 rows of x
// (row-major), qn and xn being their squared norms in float64 (see
// [Norms64]): the scaled squared distances of raw points under a gaussian
// or imq kernel, with the Gram and the cancelling sum in float64 as
// [Gram64] computes them, rounded to float32 once at the end. The clamp
// keeps a NaN. Panics if a dimension is negative or a slice is shorter
// than its matrix. Safe for concurrent use; allocates nothing beyond a
// pooled float64 block on the paths that compose [Gram64] with the
// epilogue.
//
// The generic path, after g = Gram64(q, x):
//
//	v := qn[i] + xn[j] - 2*g[i*m+j]
//	if v < 0 {
//		v = 0
//	}
//	dst[i*m+j] = float32(scale * v)
func Dist64(dst []float32, q, qn []float64, n int, x []float32, xn []float64, m, d int, scale float64) {
	if n < 0 || m < 0 || d < 0 {
		panic("simd: Dist64 with a negative dimension")
	}
	if len(dst) < n*m || len(q) < n*d || len(x) < m*d || len(qn) < n || len(xn) < m {
		panic("simd: Dist64 slice shorter than its matrix")
	}
	if n == 0 || m == 0 {
		return
	}
	active.dist64(dst, q, qn, n, x, xn, m, d, scale)
}

// dist64Pool holds the float64 Gram blocks of dist64Compose.
var dist64Pool = sync.Pool{New: func() any { return new([]float64) }}

// dist64Compose makes a Dist64 from a Gram64 kernel and the generic
// epilogue (the generic and AVX2 paths; the AVX-512 kernel fuses the
// epilogue into its registers).
func dist64Compose(gram func(dst, q []float64, n int, x []float32, m, d int)) func(dst []float32, q, qn []float64, n int, x []float32, xn []float64, m, d int, scale float64) {
	return func(dst []float32, q, qn []float64, n int, x []float32, xn []float64, m, d int, scale float64) {
		buf := dist64Pool.Get().(*[]float64)
		if cap(*buf) < n*m {
			*buf = make([]float64, n*m)
		}
		g := (*buf)[:n*m]
		if d == 0 {
			clear(g)
		} else {
			gram(g, q, n, x, m, d)
		}
		xn = xn[:m]
		for i := 0; i < n; i++ {
			row, out := g[i*m:i*m+m], dst[i*m:i*m+m]
			for j, gij := range row {
				v := qn[i] + xn[j] - 2*gij
				if v < 0 {
					v = 0
				}
				out[j] = float32(scale * v)
			}
		}
		dist64Pool.Put(buf)
	}
}
