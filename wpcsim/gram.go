package wpcsim

// computeGram sets dst[i*m+j] = <q_i, x_j> for the n×d rows of q and the m×d
// rows of x. It accumulates in float32 with eight independent partial sums,
// the same association a SIMD kernel uses, which keeps the rounding error of
// a length-d dot product near sqrt(d/8) ulps instead of d.
func computeGram(dst, q []float32, n int, x []float32, m, d int) {
	for i := 0; i < n; i++ {
		qi := q[i*d : (i+1)*d]
		out := dst[i*m : (i+1)*m]
		for j := range out {
			out[j] = dot(qi, x[j*d:(j+1)*d])
		}
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	k := 0
	for ; k+8 <= len(a); k += 8 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
		s4 += a[k+4] * b[k+4]
		s5 += a[k+5] * b[k+5]
		s6 += a[k+6] * b[k+6]
		s7 += a[k+7] * b[k+7]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
