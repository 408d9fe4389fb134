package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// maxSimRef is the float64 oracle: per query row, the best scaled inner
// product and the scaled sum of |products| of the row's entries (the
// largest, which bounds every entry's float32 error).
func maxSimRef(q []float32, n int, x []float32, m, d int, inv []float32) (want, mass []float64) {
	g, gmass := gramRef(q, n, x, m, d)
	want = make([]float64, n)
	mass = make([]float64, n)
	for i := 0; i < n; i++ {
		want[i] = math.Inf(-1)
		for j := 0; j < m; j++ {
			s, a := g[i*m+j], gmass[i*m+j]
			if inv != nil {
				s *= float64(inv[j])
				a *= math.Abs(float64(inv[j]))
			}
			want[i] = max(want[i], s)
			mass[i] = max(mass[i], a)
		}
	}
	return want, mass
}

// maxSimInputs draws a query of n points, m points x and their inverse
// norms inv, at dimension d.
func maxSimInputs(rng *rand.Rand, n, m, d int) (q, x, inv []float32) {
	q = make([]float32, n*d)
	x = make([]float32, m*d)
	inv = make([]float32, m)
	fill(rng, q, -1, 1)
	fill(rng, x, -1, 1)
	fill(rng, inv, 0.5, 2)
	return q, x, inv
}

// checkMaxSim packs a random query and runs MaxSim on guarded windows at
// offset off against the float64 oracle, with and without inv.
func checkMaxSim(t *testing.T, seed uint64, n, m, d, off int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0))
	q := make([]float32, n*d)
	fill(rng, q, -1, 1)
	var mq MaxSimQuery
	mq.Pack(q, n, d)
	x, xbuf := guarded(m*d, off)
	fill(rng, x, -1, 1)
	for _, scaled := range []bool{false, true} {
		var inv []float32
		if scaled {
			inv, _ = guarded(m, (off*5)%16)
			fill(rng, inv, 0.1, 3)
		}
		dst, buf := guarded(mq.Lanes(), (off*3)%16)
		MaxSim(dst, &mq, x, m, inv)
		what := fmt.Sprintf("MaxSim %dx%dx%d off %d inv %v seed %d", n, m, d, off, scaled, seed)
		checkGuards(t, buf, (off*3)%16, mq.Lanes(), what)
		checkGuards(t, xbuf, off, m*d, what+" (x)")
		want, mass := maxSimRef(q, n, x, m, d, inv)
		for i := 0; i < n; i++ {
			if math.IsInf(want[i], -1) {
				if !math.IsInf(float64(dst[i]), -1) {
					t.Fatalf("%s: dst[%d] = %v, want -Inf", what, i, dst[i])
				}
				continue
			}
			if e := math.Abs(float64(dst[i]) - want[i]); e > 1e-5*mass[i]+1e-30 {
				t.Fatalf("%s: dst[%d] = %v, want %v (err %.3g > 1e-5·%.3g)", what, i, dst[i], want[i], e, mass[i])
			}
		}
	}
}

// TestMaxSimSmall covers every tile height and vector count of both
// assembly paths (rows 0..30 of X against 0..40 query rows) at depths
// around the 4-step unroll.
func TestMaxSimSmall(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		seed := uint64(5000)
		for n := 0; n <= 40; n += 1 + n/8 {
			for m := 0; m <= 30; m++ {
				for _, d := range []int{0, 1, 3, 4, 5, 8, 17} {
					seed++
					checkMaxSim(t, seed, n, m, d, int(seed%16))
				}
			}
		}
	})
}

// TestMaxSimShapes: ColBERT's (32 query points, documents of 60–300 at
// d = 128), the compact workload's (≤ 16 points, d = 64), and panels
// around 16, 32 and 48 lanes at depths past the Gram's 256-deep panel.
func TestMaxSimShapes(t *testing.T) {
	shapes := [][3]int{{32, 60, 128}, {32, 181, 128}, {32, 300, 128}, {16, 16, 64}, {7, 4, 64},
		{15, 13, 33}, {17, 25, 31}, {31, 12, 257}, {33, 24, 65}, {47, 7, 520}, {48, 11, 16}, {49, 36, 128}, {100, 40, 9}}
	forEachPath(t, func(t *testing.T) {
		for i, s := range shapes {
			checkMaxSim(t, uint64(6000+i), s[0], s[1], s[2], i%16)
		}
	})
}

// TestMaxSimPaths: the assembly paths give the same entries as each other
// bit for bit (both sum by FMA in k order) and match the generic path
// within the tolerance.
func TestMaxSimPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(7000, 0))
	n, m, d := 37, 95, 128
	q, x, inv := maxSimInputs(rng, n, m, d)
	var mq MaxSimQuery
	mq.Pack(q, n, d)
	got := map[string][]float32{}
	forEachPath(t, func(t *testing.T) {
		dst := make([]float32, mq.Lanes())
		MaxSim(dst, &mq, x, m, inv)
		got[active.name] = dst[:n]
	})
	a, b := got[PathAVX512], got[PathAVX2]
	if a == nil || b == nil {
		t.Skip("needs both assembly paths")
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("seed 7000: row %d: avx512 %v, avx2 %v", i, a[i], b[i])
		}
	}
}

func TestMaxSimPanics(t *testing.T) {
	var mq MaxSimQuery
	mq.Pack(make([]float32, 3*4), 3, 4)
	for name, f := range map[string]func(){
		"short dst": func() { MaxSim(make([]float32, 3), &mq, make([]float32, 8), 2, nil) },
		"short x":   func() { MaxSim(make([]float32, 16), &mq, make([]float32, 7), 2, nil) },
		"short inv": func() { MaxSim(make([]float32, 16), &mq, make([]float32, 8), 2, make([]float32, 1)) },
		"negative":  func() { MaxSim(make([]float32, 16), &mq, nil, -1, nil) },
		"pack":      func() { mq.Pack(make([]float32, 5), 2, 3) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

// BenchmarkMaxSim: a ColBERT query (32 points) against a 180-point
// document at d = 128, against Gram plus a scalar row max, its
// replacement.
func BenchmarkMaxSim(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 0))
	n, m, d := 32, 180, 128
	q, x, inv := maxSimInputs(rng, n, m, d)
	var mq MaxSimQuery
	mq.Pack(q, n, d)
	dst := make([]float32, mq.Lanes())
	benchPaths(b, func(b *testing.B) {
		b.Run("fused", func(b *testing.B) {
			for b.Loop() {
				MaxSim(dst, &mq, x, m, inv)
			}
		})
		b.Run("gram", func(b *testing.B) {
			g := make([]float32, n*m)
			for b.Loop() {
				Gram(g, q, n, x, m, d)
				for i := 0; i < n; i++ {
					best := g[i*m] * inv[0]
					for j, v := range g[i*m+1 : (i+1)*m] {
						best = max(best, v*inv[j+1])
					}
					dst[i] = best
				}
			}
		})
	})
}
