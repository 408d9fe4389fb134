package simd

import (
	"fmt"
	"github.com/wpcdb/wpcdb/internal/raceflag"
	"math"
	"math/rand/v2"
	"testing"
)

// gramRef is the float64 oracle: the exact-ish Gram matrix and, per entry,
// the sum of |products| that scales the float32 error.
func gramRef(q []float32, n int, x []float32, m, d int) (want, mass []float64) {
	want = make([]float64, n*m)
	mass = make([]float64, n*m)
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			var s, a float64
			for k := 0; k < d; k++ {
				p := float64(q[i*d+k]) * float64(x[j*d+k])
				s += p
				a += math.Abs(p)
			}
			want[i*m+j] = s
			mass[i*m+j] = a
		}
	}
	return want, mass
}

// checkGram runs Gram on fresh guarded windows at offset off and compares
// with the float64 oracle.
func checkGram(t *testing.T, seed uint64, n, m, d, off int, special bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0))
	q, _ := guarded(n*d, off)
	x, _ := guarded(m*d, (off*7)%16)
	fill(rng, q, -1, 1)
	fill(rng, x, -1, 1)
	if special && n*d > 0 && m*d > 0 {
		// A NaN in Q poisons a row; ±Inf in X a column (NaN where it meets
		// both signs or a zero).
		q[rng.IntN(n*d)] = float32(math.NaN())
		x[rng.IntN(m*d)] = float32(math.Inf(1))
		x[rng.IntN(m*d)] = float32(math.Inf(-1))
	}
	dst, buf := guarded(n*m, (off*3)%16)
	Gram(dst, q, n, x, m, d)
	checkGuards(t, buf, (off*3)%16, n*m, fmt.Sprintf("Gram %dx%dx%d seed %d", n, m, d, seed))
	want, mass := gramRef(q, n, x, m, d)
	for i := range want {
		if !sameSpecial(dst[i], want[i]) {
			t.Fatalf("Gram %dx%dx%d off %d seed %d: dst[%d,%d] = %v, want %v", n, m, d, off, seed, i/m, i%m, dst[i], want[i])
		}
		if math.IsNaN(want[i]) || math.IsInf(want[i], 0) {
			continue
		}
		if e := math.Abs(float64(dst[i]) - want[i]); e > 1e-5*mass[i]+1e-30 {
			t.Fatalf("Gram %dx%dx%d off %d seed %d: dst[%d,%d] = %v, want %v (err %.3g > 1e-5·%.3g)", n, m, d, off, seed, i/m, i%m, dst[i], want[i], e, mass[i])
		}
	}
}

func TestGramSmall(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		seed := uint64(1)
		for n := 0; n <= 9; n++ {
			for m := 0; m <= 9; m++ {
				for d := 0; d <= 40; d++ {
					seed++
					checkGram(t, seed, n, m, d, int(seed%16), false)
				}
			}
		}
	})
}

// TestGramPanels covers the tiling edges: full and partial panels of X (16
// and 48 wide, ragged and whole vectors), row blocks of Q around the
// micro-kernel heights (6, 9), and depths around the vector width and the
// 256-deep panel.
func TestGramPanels(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		seed := uint64(1000)
		for _, n := range []int{1, 5, 6, 7, 8, 9, 10, 13, 19, 29} {
			for _, m := range []int{15, 16, 17, 31, 32, 33, 47, 48, 49, 65, 97} {
				for _, d := range []int{1, 7, 8, 16, 17, 64, 255, 256, 257, 520} {
					seed++
					checkGram(t, seed, n, m, d, int(seed%16), false)
				}
			}
		}
	})
}

func TestGramBig(t *testing.T) {
	shapes := [][3]int{{77, 197, 512}, {5, 3, 1536}, {1, 1000, 3}, {20, 100, 1535}, {33, 64, 1024}}
	forEachPath(t, func(t *testing.T) {
		for i, s := range shapes {
			checkGram(t, uint64(2000+i), s[0], s[1], s[2], 1+i, false)
		}
	})
}

func TestGramMisaligned(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for off := 1; off <= 15; off++ {
			checkGram(t, uint64(3000+off), 15, 33+off, 64+off, off, false)
		}
	})
}

func TestGramSpecial(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		seed := uint64(4000)
		for _, s := range [][3]int{{1, 1, 1}, {3, 5, 7}, {14, 32, 16}, {15, 40, 300}, {7, 33, 257}} {
			for rep := 0; rep < 5; rep++ {
				seed++
				checkGram(t, seed, s[0], s[1], s[2], int(seed%16), true)
			}
		}
	})
}

func TestGramPanics(t *testing.T) {
	for _, tc := range []struct {
		name      string
		dst, q, x int
		n, m, d   int
	}{
		{"short dst", 5, 6, 9, 2, 3, 3},
		{"short q", 6, 5, 9, 2, 3, 3},
		{"short x", 6, 6, 8, 2, 3, 3},
		{"negative", 0, 0, 0, -1, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic")
				}
			}()
			Gram(make([]float32, tc.dst), make([]float32, tc.q), tc.n, make([]float32, tc.x), tc.m, tc.d)
		})
	}
}

func TestGramAllocs(t *testing.T) {
	if raceflag.Enabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	const n, m, d = 77, 197, 512
	q := make([]float32, n*d)
	x := make([]float32, m*d)
	dst := make([]float32, n*m)
	forEachPath(t, func(t *testing.T) {
		if a := testing.AllocsPerRun(5, func() { Gram(dst, q, n, x, m, d) }); a != 0 {
			t.Errorf("Gram %dx%dx%d allocates %v per call", n, m, d, a)
		}
	})
}

// BenchmarkGram reports GFLOP/s (2·n·m·d per call) at the paper's shape:
// one text query (77×512) against one image (197 points) and against a
// batch of 200 images stacked (m = 39400), plus a small shape.
func BenchmarkGram(b *testing.B) {
	for _, s := range [][3]int{{77, 197, 512}, {77, 39400, 512}, {8, 16, 64}} {
		n, m, d := s[0], s[1], s[2]
		rng := rand.New(rand.NewPCG(1, 2))
		q := make([]float32, n*d)
		x := make([]float32, m*d)
		dst := make([]float32, n*m)
		fill(rng, q, -1, 1)
		fill(rng, x, -1, 1)
		b.Run(fmt.Sprintf("%dx%dx%d", n, m, d), func(b *testing.B) {
			benchPaths(b, func(b *testing.B) {
				if active == generic && m > 1000 {
					b.Skip("generic path too slow for the batch shape")
				}
				b.ReportAllocs()
				b.SetBytes(int64(4 * (n*d + m*d)))
				for b.Loop() {
					Gram(dst, q, n, x, m, d)
				}
				flops := 2 * float64(n) * float64(m) * float64(d) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		})
	}
}
