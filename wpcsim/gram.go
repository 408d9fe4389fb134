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
	if cap(gm.f64) < n*m {
		gm.f64 = make([]float64, n*m)
	}
	gm.f64 = gm.f64[:n*m]
	for i := 0; i < n; i++ {
		qi := q[i*d : (i+1)*d]
		for j := 0; j < m; j++ {
			xj := x[j*d : (j+1)*d]
			var s float64
			for k, v := range qi {
				s += float64(v) * float64(xj[k])
			}
			gm.f64[i*m+j] = s
			gm.f32[i*m+j] = float32(s)
		}
	}
}
