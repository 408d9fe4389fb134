package simd

//go:generate go run ./asm/gen.go -out .

// Gram computes the Gram matrix of two point sets: dst[i*m+j] = <q_i, x_j>,
// where Q is n×d and X is m×d, both row-major (dst = Q·Xᵀ, n×m row-major).
// Any d ≥ 0 is allowed; d = 0 gives zeros. It panics if a dimension is
// negative or a slice is shorter than its matrix. dst must not overlap q or
// x. Safe for concurrent use; allocates nothing in steady state.
//
// The reference loop (the generic path adds in 4 partial sums):
//
//	for i := 0; i < n; i++ {
//		for j := 0; j < m; j++ {
//			var s float32
//			for k := 0; k < d; k++ {
//				s += q[i*d+k] * x[j*d+k]
//			}
//			dst[i*m+j] = s
//		}
//	}
//
// The assembly paths pack X into k-major panels and run a register-blocked
// broadcast-FMA micro-kernel (BLIS style); the sum order differs, and the
// result agrees with an exact sum to about 1e-6·Σ_k |q_ik·x_jk|.
func Gram(dst, q []float32, n int, x []float32, m int, d int) {
	if n < 0 || m < 0 || d < 0 {
		panic("simd: Gram with a negative dimension")
	}
	if len(dst) < n*m || len(q) < n*d || len(x) < m*d {
		panic("simd: Gram slice shorter than its matrix")
	}
	if n == 0 || m == 0 {
		return
	}
	active.gram(dst, q, n, x, m, d)
}

func gramGeneric(dst, q []float32, n int, x []float32, m, d int) {
	for i := 0; i < n; i++ {
		qi := q[i*d : i*d+d]
		row := dst[i*m : i*m+m]
		for j := range row {
			row[j] = dotGeneric(qi, x[j*d:j*d+d])
		}
	}
}
