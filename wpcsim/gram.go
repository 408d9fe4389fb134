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
	// d2 holds unscaled squared distances (simd.Dist64) when reduce
	// needs them for several gaussian or imq terms of a wide similarity.
	d2 []float32
}

// compute sets the block of <q_i, x_j> for query rows i0..i1 against all
// of x's points: with the SIMD GEMM of internal/simd, or when wide with
// simd.Gram64 from q's float64 copy (hat64, widened once by prepare) and
// x's float32 points (widened in registers). The float64 Gram was a
// scalar loop taking 72% of a search's CPU on Fashion-MNIST-patch-shaped
// clouds (16 raw points, d = 51, gaussian(4); BenchmarkSearchPatches).
//
// A wide block's f32 copy is filled only when withF32 (a linear term reads
// it; the gaussian and imq maps read f64).
func (gm *gramMatrix) compute(wide, withF32 bool, q *prepared, i0, i1 int, x *prepared) {
	n, m, d := i1-i0, x.n, q.d
	if !wide {
		gm.f32 = grow(gm.f32, n*m)
		simd.Gram(gm.f32, q.hat[i0*d:i1*d], n, x.hat, m, d)
		return
	}
	if cap(gm.f64) < n*m {
		gm.f64 = make([]float64, n*m)
	}
	gm.f64 = gm.f64[:n*m]
	simd.Gram64(gm.f64, q.hat64[i0*d:i1*d], n, x.hat, m, d)
	if !withF32 {
		return
	}
	gm.f32 = grow(gm.f32, n*m)
	for i, s := range gm.f64 {
		gm.f32[i] = float32(s)
	}
}
