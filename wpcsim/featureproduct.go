package wpcsim

// projectBlockRows is how many rows of W one pass keeps hot: 64 rows of
// d = 512 float32 are 128 KiB, which stays in L2 while every point streams
// past it.
const projectBlockRows = 64

// project sets dst[j*n+i] = <x_j, w_i> for the m×d rows of x and the n×d
// rows of w: the product X·Wᵀ of a chunk of points with a random-feature
// matrix. It is the one place φ spends its multiply-adds, kept on its own so
// that a SIMD or GEMM kernel can replace it. The pure-Go version tiles W by
// projectBlockRows and computes 2 points × 4 rows per inner loop (eight
// float32 accumulators, six loads per eight multiply-adds).
func project(dst, x []float32, m int, w []float32, n, d int) {
	for i0 := 0; i0 < n; i0 += projectBlockRows {
		i1 := min(i0+projectBlockRows, n)
		j := 0
		for ; j+2 <= m; j += 2 {
			x0 := x[j*d : (j+1)*d]
			x1 := x[(j+1)*d : (j+2)*d]
			out0 := dst[j*n : (j+1)*n]
			out1 := dst[(j+1)*n : (j+2)*n]
			i := i0
			for ; i+4 <= i1; i += 4 {
				dot2x4(out0[i:i+4], out1[i:i+4], x0, x1, w[i*d:(i+4)*d])
			}
			for ; i < i1; i++ {
				wi := w[i*d : (i+1)*d]
				out0[i] = dotf32(x0, wi)
				out1[i] = dotf32(x1, wi)
			}
		}
		if j < m {
			x0 := x[j*d : (j+1)*d]
			out0 := dst[j*n : (j+1)*n]
			for i := i0; i < i1; i++ {
				out0[i] = dotf32(x0, w[i*d:(i+1)*d])
			}
		}
	}
}

// dot2x4 sets out0[r] = <x0, w_r> and out1[r] = <x1, w_r> for the four
// consecutive rows w_0..w_3 of w (each len(x0) long).
func dot2x4(out0, out1, x0, x1, w []float32) {
	d := len(x0)
	x1 = x1[:d]
	w0 := w[0*d : 1*d]
	w1 := w[1*d : 2*d]
	w2 := w[2*d : 3*d]
	w3 := w[3*d : 4*d]
	var a0, a1, a2, a3, b0, b1, b2, b3 float32
	for k := range x0 {
		p, q := x0[k], x1[k]
		c0, c1, c2, c3 := w0[k], w1[k], w2[k], w3[k]
		a0 += p * c0
		a1 += p * c1
		a2 += p * c2
		a3 += p * c3
		b0 += q * c0
		b1 += q * c1
		b2 += q * c2
		b3 += q * c3
	}
	out0 = out0[:4]
	out1 = out1[:4]
	out0[0], out0[1], out0[2], out0[3] = a0, a1, a2, a3
	out1[0], out1[1], out1[2], out1[3] = b0, b1, b2, b3
}

// dotf32 is <a, b> in float32 with four partial sums.
func dotf32(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}
