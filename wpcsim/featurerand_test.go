package wpcsim

import (
	"math"
	"testing"
)

// log64 is math.Log's algorithm without FMA: it must agree to one ulp on
// normal numbers. (Subnormals are out: the sampler never produces them, and
// amd64's assembly math.Log returns -709.09 for 5e-324, where log64 gives the
// right -744.44.)
func TestLog64(t *testing.T) {
	r := splitMix64{state: 1}
	check := func(x float64) {
		got, want := log64(x), math.Log(x)
		if got != want && math.Abs(got-want) > math.Abs(math.Nextafter(want, 0)-want) {
			t.Errorf("log64(%v) = %v, math.Log = %v", x, got, want)
		}
	}
	for i := 0; i < 100000; i++ {
		check(r.uniform())
		check(math.Ldexp(1+r.uniform(), int(r.next()%2000)-1000))
	}
	for _, x := range []float64{1, 2, 0.5, math.Sqrt2 / 2, 0x1p-1022, 0x1p-104, math.MaxFloat64, 0x1p-53} {
		check(x)
	}
}

// The polar sampler's first four moments match N(0, 1) within sampling
// error (n = 400k: standard errors ≈ 0.0016, 0.0022, 0.0039, 0.012).
func TestNormalSamplerMoments(t *testing.T) {
	s := normalSampler{rng: splitMix64{state: 7}}
	const n = 400000
	var m1, m2, m3, m4 float64
	for i := 0; i < n; i++ {
		x := s.next()
		m1 += x
		m2 += x * x
		m3 += x * x * x
		m4 += x * x * x * x
	}
	m1, m2, m3, m4 = m1/n, m2/n, m3/n, m4/n
	if math.Abs(m1) > 0.008 || math.Abs(m2-1) > 0.011 || math.Abs(m3) > 0.02 || math.Abs(m4-3) > 0.06 {
		t.Errorf("seed 7: moments %.4f %.4f %.4f %.4f, want 0 1 0 3", m1, m2, m3, m4)
	}
}

// project is a plain matrix product; check every tail shape against the
// float64 definition.
func TestProject(t *testing.T) {
	r := splitMix64{state: 11}
	for _, sh := range [][3]int{{1, 1, 1}, {2, 4, 8}, {3, 5, 7}, {5, 67, 33}, {64, 130, 512}, {7, 1, 3}} {
		m, n, d := sh[0], sh[1], sh[2]
		x := make([]float32, m*d)
		w := make([]float32, n*d)
		for i := range x {
			x[i] = float32(2*r.uniform() - 1)
		}
		for i := range w {
			w[i] = float32(2*r.uniform() - 1)
		}
		dst := make([]float32, m*n)
		project(dst, x, m, w, n, d)
		for j := 0; j < m; j++ {
			for i := 0; i < n; i++ {
				var want, abs float64
				for k := 0; k < d; k++ {
					p := float64(x[j*d+k]) * float64(w[i*d+k])
					want += p
					abs += math.Abs(p)
				}
				if got := float64(dst[j*n+i]); math.Abs(got-want) > float64(d)*0x1p-24*abs+1e-30 {
					t.Fatalf("shape m=%d n=%d d=%d: dst[%d][%d] = %v, want %v", m, n, d, j, i, got, want)
				}
			}
		}
	}
}
