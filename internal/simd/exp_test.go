package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

const expTol = 4e-7

// checkExpValue compares one Exp result with float64 math.Exp under the
// documented contract.
func checkExpValue(x, got float32) error {
	switch {
	case x != x:
		if got == got {
			return fmt.Errorf("exp(NaN) = %v, want NaN", got)
		}
	case x < expLo:
		if math.Float32bits(got) != 0 {
			return fmt.Errorf("exp(%v) = %v (bits %#x), want +0", x, got, math.Float32bits(got))
		}
	case x > expHi:
		if !math.IsInf(float64(got), 1) {
			return fmt.Errorf("exp(%v) = %v, want +Inf", x, got)
		}
	default:
		want := math.Exp(float64(x))
		if e := relErr(got, want); !(e <= expTol) {
			return fmt.Errorf("exp(%v) = %v, want %v (rel err %.3g > %g)", x, got, want, e, expTol)
		}
	}
	return nil
}

func TestExpSizes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			off := n % 16
			seed := uint64(n)
			rng := rand.New(rand.NewPCG(seed, 7))
			src, _ := guarded(n, (off+5)%16)
			fill(rng, src, -90, 90)
			dst, buf := guarded(n, off)
			Exp(dst, src)
			checkGuards(t, buf, off, n, fmt.Sprintf("Exp n=%d seed %d", n, seed))
			for i := range src {
				if err := checkExpValue(src[i], dst[i]); err != nil {
					t.Fatalf("n=%d off=%d seed %d, i=%d: %v", n, off, seed, i, err)
				}
			}
		}
	})
}

func TestExpMisalignedInPlace(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for off := 1; off <= 15; off++ {
			n := 100 + off
			seed := uint64(100 + off)
			rng := rand.New(rand.NewPCG(seed, 7))
			s, buf := guarded(n, off)
			fill(rng, s, -80, 80)
			orig := append([]float32(nil), s...)
			Exp(s, s)
			checkGuards(t, buf, off, n, fmt.Sprintf("Exp in place off=%d seed %d", off, seed))
			for i := range s {
				if err := checkExpValue(orig[i], s[i]); err != nil {
					t.Fatalf("in place off=%d seed %d, i=%d: %v", off, seed, i, err)
				}
			}
		}
	})
}

// expSpecials are the edges of the contract and of the algorithm.
var expSpecials = []float32{
	float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
	math.Float32frombits(1), math.Float32frombits(0x80000001), // ±smallest subnormal → 1
	expHi, math.Nextafter32(expHi, 100), math.Nextafter32(expHi, 0),
	expLo, math.Nextafter32(expLo, -100), math.Nextafter32(expLo, 0),
	-87.3, 88.7, -100, 100, -1e30, 1e30, math.MaxFloat32, -math.MaxFloat32,
	0.34657359, -0.34657359, 0.34657362, 1, -1, 0.5, 10, -10,
}

func TestExpSpecial(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		// Repeat the specials across a vector's lanes and a tail.
		src := make([]float32, 0, 3*len(expSpecials))
		for r := 0; r < 3; r++ {
			src = append(src, expSpecials...)
		}
		dst := make([]float32, len(src))
		Exp(dst, src)
		for i := range src {
			if err := checkExpValue(src[i], dst[i]); err != nil {
				t.Errorf("i=%d: %v", i, err)
			}
		}
	})
}

// TestExpSweep walks float32 bit patterns across [expLo, expHi] with a
// prime stride (about 1.2M values) and reports the worst relative error.
func TestExpSweep(t *testing.T) {
	var src []float32
	const stride = 3989
	for b := uint32(0); b <= math.Float32bits(expHi); b += stride {
		src = append(src, math.Float32frombits(b))
	}
	for b := uint32(0x80000000); b <= math.Float32bits(expLo); b += stride {
		src = append(src, math.Float32frombits(b))
	}
	dst := make([]float32, len(src))
	forEachPath(t, func(t *testing.T) {
		Exp(dst, src)
		worst, at := 0.0, float32(0)
		for i, x := range src {
			if err := checkExpValue(x, dst[i]); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			if e := relErr(dst[i], math.Exp(float64(x))); x >= expLo && x <= expHi && e > worst {
				worst, at = e, x
			}
		}
		t.Logf("%d values, worst relative error %.3g (%.2f ulp of 2^-23) at x=%v", len(src), worst, worst/0x1p-23, at)
	})
}

func BenchmarkExp(b *testing.B) {
	const n = 77 * 197
	rng := rand.New(rand.NewPCG(1, 3))
	src := make([]float32, n)
	dst := make([]float32, n)
	fill(rng, src, -8, 0)
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			Exp(dst, src)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
	})
}
