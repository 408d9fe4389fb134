package wpcsim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGram64 checks the blocked float64 Gram against the plain triple loop,
// on every shape of odd and even row counts (the blocks' tails) and d = 0.
func TestGram64(t *testing.T) {
	rng := rand.New(rand.NewPCG(64, 1)) // fixed seed
	for _, d := range []int{0, 1, 3, 51} {
		for n := 1; n <= 5; n++ {
			for m := 1; m <= 5; m++ {
				q := make([]float32, n*d)
				x := make([]float32, m*d)
				for i := range q {
					q[i] = float32(rng.NormFloat64() * 30)
				}
				for i := range x {
					x[i] = float32(rng.NormFloat64() * 30)
				}
				var gm gramMatrix
				gm.compute(true, q, n, x, m, d)
				for i := 0; i < n; i++ {
					for j := 0; j < m; j++ {
						var want, abs float64
						for k := 0; k < d; k++ {
							p := float64(q[i*d+k]) * float64(x[j*d+k])
							want += p
							abs += math.Abs(p)
						}
						got := gm.f64[i*m+j]
						if math.Abs(got-want) > 1e-12*abs {
							t.Fatalf("d=%d n=%d m=%d: [%d,%d] = %v, want %v", d, n, m, i, j, got, want)
						}
						if gm.f32[i*m+j] != float32(got) {
							t.Fatalf("d=%d n=%d m=%d: f32[%d,%d] = %v, want %v", d, n, m, i, j, gm.f32[i*m+j], float32(got))
						}
					}
				}
			}
		}
	}
}
