package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGram64 compares Gram64 with the float64 oracle on every path, on
// shapes covering the kernel's tails (m not a multiple of 4, d not a
// multiple of 4), with NaN around every operand: a kernel reading past a
// row or writing past dst fails.
func TestGram64(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6464, 0)) // fixed seed
		nan64 := math.NaN()
		for _, d := range []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 51, 64} {
			for n := 0; n <= 5; n++ {
				for m := 0; m <= 9; m++ {
					xw, _ := guarded(m*d, d%5)
					fill(rng, xw, -40, 40)
					qbuf := make([]float64, guardLen+n*d+guardLen)
					dbuf := make([]float64, guardLen+n*m+guardLen)
					for i := range qbuf {
						qbuf[i] = nan64
					}
					for i := range dbuf {
						dbuf[i] = -7
					}
					q := qbuf[guardLen : guardLen+n*d]
					for i := range q {
						q[i] = float64(float32(rng.Float64()*80 - 40))
					}
					dst := dbuf[guardLen : guardLen+n*m]
					Gram64(dst, q, n, xw, m, d)
					for i, v := range dbuf {
						if (i < guardLen || i >= guardLen+n*m) && v != -7 {
							t.Fatalf("n=%d m=%d d=%d: dst guard overwritten at %d", n, m, d, i)
						}
					}
					for i := 0; i < n; i++ {
						for j := 0; j < m; j++ {
							var want, abs float64
							for k := 0; k < d; k++ {
								p := q[i*d+k] * float64(xw[j*d+k])
								want += p
								abs += math.Abs(p)
							}
							if got := dst[i*m+j]; !(math.Abs(got-want) <= 1e-14*abs) {
								t.Fatalf("n=%d m=%d d=%d: [%d,%d] = %v, want %v", n, m, d, i, j, got, want)
							}
						}
					}
				}
			}
		}
	})
}

func BenchmarkGram64(b *testing.B) {
	const n, m, d = 16, 16, 51
	rng := rand.New(rand.NewPCG(1, 0))
	q := make([]float64, n*d)
	x := make([]float32, m*d)
	for i := range q {
		q[i] = rng.Float64()
	}
	fill(rng, x, 0, 1)
	dst := make([]float64, n*m)
	for _, name := range allPaths {
		b.Run(name, func(b *testing.B) {
			saved := active
			defer func() { active = saved }()
			if !setPath(name) {
				b.Skip("unsupported")
			}
			for b.Loop() {
				Gram64(dst, q, n, x, m, d)
			}
		})
	}
}
