package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestDot(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			for _, special := range []bool{false, true} {
				seed := uint64(n)
				rng := rand.New(rand.NewPCG(seed, 9))
				a, abuf := guarded(n, n%16)
				b, bbuf := guarded(n, (n*7+1)%16)
				fill(rng, a, -1, 1)
				fill(rng, b, -1, 1)
				if special && n > 0 {
					a[rng.IntN(n)] = float32(math.Inf(1))
					if n > 3 {
						b[rng.IntN(n)] = float32(math.NaN())
					}
				}
				got := Dot(a, b)
				checkGuards(t, abuf, n%16, n, "Dot a")
				checkGuards(t, bbuf, (n*7+1)%16, n, "Dot b")
				var want, mass float64
				for i := range a {
					p := float64(a[i]) * float64(b[i])
					want += p
					mass += math.Abs(p)
				}
				if !sameSpecial(got, want) {
					t.Fatalf("Dot n=%d seed %d special=%v = %v, want %v", n, seed, special, got, want)
				}
				if math.IsNaN(want) || math.IsInf(want, 0) {
					continue
				}
				if e := math.Abs(float64(got) - want); e > 1e-5*mass+1e-30 {
					t.Fatalf("Dot n=%d seed %d = %v, want %v (err %.3g)", n, seed, got, want, e)
				}
			}
		}
	})
}

func TestDotPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("Dot of unequal lengths did not panic")
		}
	}()
	Dot(make([]float32, 3), make([]float32, 4))
}

func BenchmarkDot(b *testing.B) {
	const n = 512
	rng := rand.New(rand.NewPCG(1, 5))
	x := make([]float32, n)
	y := make([]float32, n)
	fill(rng, x, -1, 1)
	fill(rng, y, -1, 1)
	var sink float32
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(8 * n)
		for b.Loop() {
			sink += Dot(x, y)
		}
	})
	_ = sink
}
