package wpcsim

import "github.com/wpcdb/wpcdb/internal/simd"

// project sets dst[j*n+i] = <x_j, w_i> for the m×d rows of x and the n×d
// rows of w: the product X·Wᵀ of a cloud's points with a random-feature
// matrix, where φ spends its multiply-adds. It is the SIMD GEMM of
// internal/simd.
func project(dst, x []float32, m int, w []float32, n, d int) {
	simd.Gram(dst, x, m, w, n, d)
}
