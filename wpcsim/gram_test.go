package wpcsim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestGramWide checks the float64 Gram of a prepared query tile against the
// plain float64 triple loop, on odd and even point counts, tiles that start
// past row 0, and d = 0.
func TestGramWide(t *testing.T) {
	rng := rand.New(rand.NewPCG(64, 1)) // fixed seed
	sim, err := New(Config{RawPoints: true, Kernel: Kernel{Terms: []Term{{Kind: Gaussian, Param: 4, Alpha: 1}}}})
	if err != nil {
		t.Fatal(err)
	}
	if !sim.wide {
		t.Fatal("raw points with a gaussian term must use the float64 Gram")
	}
	cloud := func(n, d int) Cloud {
		c := Cloud{Dim: d}
		for i := 0; i < n*d; i++ {
			c.Points = append(c.Points, float32(rng.NormFloat64()*30))
		}
		for i := 0; i < n; i++ {
			c.Weights = append(c.Weights, 1)
		}
		return c
	}
	for _, d := range []int{1, 3, 51} {
		for n := 1; n <= 5; n++ {
			for m := 1; m <= 6; m++ {
				qc, xc := cloud(n, d), cloud(m, d)
				var q, x prepared
				sim.prepare(&q, qc)
				sim.prepare(&x, xc)
				for i0 := 0; i0 < n; i0++ {
					var gm gramMatrix
					gm.compute(true, true, &q, i0, n, &x)
					for i := i0; i < n; i++ {
						for j := 0; j < m; j++ {
							var want, abs float64
							for k := 0; k < d; k++ {
								p := float64(qc.Points[i*d+k]) * float64(xc.Points[j*d+k])
								want += p
								abs += math.Abs(p)
							}
							got := gm.f64[(i-i0)*m+j]
							if math.Abs(got-want) > 1e-14*abs {
								t.Fatalf("d=%d n=%d m=%d i0=%d: [%d,%d] = %v, want %v", d, n, m, i0, i, j, got, want)
							}
							if gm.f32[(i-i0)*m+j] != float32(got) {
								t.Fatalf("d=%d n=%d m=%d: f32[%d,%d] = %v, want %v", d, n, m, i, j, gm.f32[(i-i0)*m+j], float32(got))
							}
						}
					}
				}
			}
		}
	}
}
