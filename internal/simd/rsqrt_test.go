package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

const rsqrtTol = 2e-7

func checkRsqrtValue(x, got float32) error {
	want := 1 / math.Sqrt(float64(x))
	if !sameSpecial(got, want) {
		return fmt.Errorf("rsqrt(%v) = %v, want %v", x, got, want)
	}
	if math.IsNaN(want) || math.IsInf(want, 0) {
		return nil
	}
	if want == 0 {
		if got != 0 {
			return fmt.Errorf("rsqrt(%v) = %v, want 0", x, got)
		}
		return nil
	}
	if e := relErr(got, want); !(e <= rsqrtTol) {
		return fmt.Errorf("rsqrt(%v) = %v, want %v (rel err %.3g > %g)", x, got, want, e, rsqrtTol)
	}
	return nil
}

func TestRsqrtSizes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			off := (n * 5) % 16
			seed := uint64(n)
			rng := rand.New(rand.NewPCG(seed, 8))
			src, _ := guarded(n, (off+3)%16)
			for i := range src {
				src[i] = float32(math.Exp(rng.Float64()*160 - 80))
			}
			dst, buf := guarded(n, off)
			Rsqrt(dst, src)
			checkGuards(t, buf, off, n, fmt.Sprintf("Rsqrt n=%d seed %d", n, seed))
			for i := range src {
				if err := checkRsqrtValue(src[i], dst[i]); err != nil {
					t.Fatalf("n=%d seed %d i=%d: %v", n, seed, i, err)
				}
			}
			// In place.
			orig := append([]float32(nil), src...)
			Rsqrt(src, src)
			for i := range src {
				if err := checkRsqrtValue(orig[i], src[i]); err != nil {
					t.Fatalf("in place n=%d seed %d i=%d: %v", n, seed, i, err)
				}
			}
		}
	})
}

func TestRsqrtSpecial(t *testing.T) {
	specials := []float32{
		0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), -1, -1e-30, 1, 4, 0.25, 0.5, 2,
		math.Float32frombits(1), math.Float32frombits(0x007fffff), math.Float32frombits(0x00800000),
		math.MaxFloat32, 1e-38, 1e38,
	}
	forEachPath(t, func(t *testing.T) {
		var src []float32
		for r := 0; r < 3; r++ {
			src = append(src, specials...)
		}
		dst := make([]float32, len(src))
		Rsqrt(dst, src)
		for i := range src {
			if err := checkRsqrtValue(src[i], dst[i]); err != nil {
				t.Errorf("i=%d: %v", i, err)
			}
		}
	})
}

// TestRsqrtSweep walks all positive float32 bit patterns, subnormals
// included, with a prime stride and reports the worst relative error.
func TestRsqrtSweep(t *testing.T) {
	var src []float32
	for b := uint32(1); b < 0x7f800000; b += 1777 {
		src = append(src, math.Float32frombits(b))
	}
	dst := make([]float32, len(src))
	forEachPath(t, func(t *testing.T) {
		Rsqrt(dst, src)
		worst := 0.0
		for i, x := range src {
			if err := checkRsqrtValue(x, dst[i]); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			worst = max(worst, relErr(dst[i], 1/math.Sqrt(float64(x))))
		}
		t.Logf("%d values, worst relative error %.3g", len(src), worst)
	})
}

func BenchmarkRsqrt(b *testing.B) {
	const n = 77 * 197
	rng := rand.New(rand.NewPCG(1, 4))
	src := make([]float32, n)
	dst := make([]float32, n)
	fill(rng, src, 0.25, 4.25)
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			Rsqrt(dst, src)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
	})
}
