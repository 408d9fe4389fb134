package simd

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// cosTol is CosAdd's documented absolute error for |x| ≤ CosMax.
const cosTol = 2e-7

// checkCosValue compares one CosAdd result for x = p + b (already rounded
// to float32) with float64 math.Cos under the documented contract.
func checkCosValue(x, got float32) error {
	want := math.Cos(float64(x))
	if !(math.Abs(float64(x)) <= CosMax) {
		// The fallback: float64 cos rounded to float32, NaN for NaN and ±Inf.
		if w := float32(want); math.Float32bits(got) != math.Float32bits(w) && !(got != got && w != w) {
			return fmt.Errorf("cos(%v) = %v, want %v (fallback)", x, got, w)
		}
		return nil
	}
	if e := math.Abs(float64(got) - want); !(e <= cosTol) {
		return fmt.Errorf("cos(%v) = %v, want %v (abs err %.3g > %g)", x, got, want, e, cosTol)
	}
	return nil
}

// cosInputs fills p with projections in [-lo, lo) and b with phases in
// [0, 2π), as a random-feature row has them.
func cosInputs(rng *rand.Rand, p, b []float32, span float64) {
	fill(rng, p, -span, span)
	fill(rng, b, 0, 2*math.Pi)
}

func TestCosAddSizes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			off := n % 16
			seed := uint64(n)
			rng := rand.New(rand.NewPCG(seed, 11))
			p, _ := guarded(n, (off+3)%16)
			b, _ := guarded(n, (off+7)%16)
			cosInputs(rng, p, b, 40)
			dst, buf := guarded(n, off)
			CosAdd(dst, p, b)
			checkGuards(t, buf, off, n, fmt.Sprintf("CosAdd n=%d seed %d", n, seed))
			for i := range p {
				if err := checkCosValue(p[i]+b[i], dst[i]); err != nil {
					t.Fatalf("n=%d off=%d seed %d, i=%d: %v", n, off, seed, i, err)
				}
			}
		}
	})
}

func TestCosAddAccSizes(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, n := range sizes() {
			off := n % 16
			seed := uint64(n)
			rng := rand.New(rand.NewPCG(seed, 13))
			p, _ := guarded(n, (off+5)%16)
			b, _ := guarded(n, (off+9)%16)
			cosInputs(rng, p, b, 40)
			acc, buf := guarded(n, off)
			fill(rng, acc, -3, 3)
			orig := append([]float32(nil), acc...)
			const w = -0.75
			CosAddAcc(acc, w, p, b)
			checkGuards(t, buf, off, n, fmt.Sprintf("CosAddAcc n=%d seed %d", n, seed))
			for i := range p {
				want := float64(orig[i]) + w*math.Cos(float64(p[i]+b[i]))
				// The cosine's error times |w|, plus the rounding of the sum.
				if e := math.Abs(float64(acc[i]) - want); !(e <= 0.75*cosTol+4e-7) {
					t.Fatalf("n=%d off=%d seed %d, i=%d: acc = %v, want %v (abs err %.3g)", n, off, seed, i, acc[i], want, e)
				}
			}
		}
	})
}

// TestCosAddInPlace checks dst = p and dst = b at every misalignment.
func TestCosAddInPlace(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for off := 1; off <= 15; off++ {
			n := 100 + off
			seed := uint64(200 + off)
			rng := rand.New(rand.NewPCG(seed, 11))
			for _, intoP := range []bool{true, false} {
				p, pbuf := guarded(n, off)
				b, bbuf := guarded(n, 16-off)
				cosInputs(rng, p, b, 100)
				x := make([]float32, n)
				for i := range x {
					x[i] = p[i] + b[i]
				}
				dst, buf := p, pbuf
				if !intoP {
					dst, buf = b, bbuf
				}
				CosAdd(dst, p, b)
				checkGuards(t, buf, guardLenOff(buf, dst), n, fmt.Sprintf("CosAdd in place off=%d seed %d", off, seed))
				for i := range x {
					if err := checkCosValue(x[i], dst[i]); err != nil {
						t.Fatalf("in place (into p: %v) off=%d seed %d, i=%d: %v", intoP, off, seed, i, err)
					}
				}
			}
		}
	})
}

// guardLenOff returns the offset of win in buf past the leading guard.
func guardLenOff(buf, win []float32) int {
	return cap(buf) - cap(win) - guardLen
}

// cosSpecials are the edges of the contract and of the algorithm: zeros,
// multiples of π/2 (where n rounds half-way), the CosMax boundary, huge
// values and non-finite ones.
var cosSpecials = []float32{
	float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
	math.Float32frombits(1), math.Float32frombits(0x80000001),
	math.Pi / 2, -math.Pi / 2, math.Pi, -math.Pi, 3 * math.Pi / 2, 2 * math.Pi, 1e-20, 1, -1, 0.5,
	CosMax, -CosMax, math.Nextafter32(CosMax, 1e9), math.Nextafter32(-CosMax, -1e9), math.Nextafter32(CosMax, 0),
	65535.5, -65535.5, 1e5, -1e5, 1e8, 1e30, -1e30, math.MaxFloat32, -math.MaxFloat32,
	12345.678, 40000 * math.Pi, 20861.5 * math.Pi,
}

func TestCosAddSpecial(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		// Repeat the specials across a vector's lanes and a tail, in p
		// with b = 0 and in b with p = 0, and split between the two.
		var p, b []float32
		for r := 0; r < 3; r++ {
			for _, v := range cosSpecials {
				p, b = append(p, v), append(b, 0)
				p, b = append(p, 0), append(b, v)
			}
		}
		p, b = append(p, 65000, math.MaxFloat32), append(b, 1000, math.MaxFloat32) // sums past CosMax, and to +Inf
		dst := make([]float32, len(p))
		CosAdd(dst, p, b)
		for i := range p {
			if err := checkCosValue(p[i]+b[i], dst[i]); err != nil {
				t.Errorf("i=%d: %v", i, err)
			}
		}
		// The accumulating form falls back on the same lanes and leaves the
		// others' sums alone.
		acc := make([]float32, len(p))
		for i := range acc {
			acc[i] = 1
		}
		CosAddAcc(acc, 2, p, b)
		for i := range p {
			want := float32(1 + 2*float64(dst[i]))
			if got := acc[i]; math.Abs(float64(got-want)) > 1e-6 && !(got != got && want != want) {
				t.Errorf("acc i=%d x=%v: %v, want %v", i, p[i]+b[i], got, want)
			}
		}
	})
}

// TestCosAddSweep walks float32 bit patterns across [−CosMax, CosMax] with a
// prime stride (about 1.1M values) and reports the worst absolute error.
func TestCosAddSweep(t *testing.T) {
	var src []float32
	const stride = 3989
	for b := uint32(0); b <= math.Float32bits(CosMax); b += stride {
		src = append(src, math.Float32frombits(b), -math.Float32frombits(b))
	}
	zero := make([]float32, len(src))
	dst := make([]float32, len(src))
	forEachPath(t, func(t *testing.T) {
		CosAdd(dst, src, zero)
		worst, at := 0.0, float32(0)
		for i, x := range src {
			if err := checkCosValue(x, dst[i]); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			if e := math.Abs(float64(dst[i]) - math.Cos(float64(x))); e > worst {
				worst, at = e, x
			}
		}
		t.Logf("%d values, worst absolute error %.3g at x=%v", len(src), worst, at)
	})
}

func BenchmarkCosAdd(b *testing.B) {
	const n = 1024
	rng := rand.New(rand.NewPCG(1, 3))
	p := make([]float32, n)
	ph := make([]float32, n)
	dst := make([]float32, n)
	cosInputs(rng, p, ph, 8)
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			CosAdd(dst, p, ph)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
	})
}

func BenchmarkCosAddAcc(b *testing.B) {
	const n = 1024
	rng := rand.New(rand.NewPCG(1, 3))
	p := make([]float32, n)
	ph := make([]float32, n)
	acc := make([]float32, n)
	cosInputs(rng, p, ph, 8)
	benchPaths(b, func(b *testing.B) {
		b.SetBytes(4 * n)
		for b.Loop() {
			CosAddAcc(acc, 0.5, p, ph)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
	})
}
