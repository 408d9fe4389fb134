package wpcsim

import "math"

// The random-feature sample must be the same on every platform and every Go
// release: a collection stores only (D, seed) and recomputes W and b on open,
// and a query's φ must use the very W its items were indexed with. So the
// generator and the normal sampler are defined here, not taken from
// math/rand (whose streams and NormFloat64 are not promised stable), and the
// arithmetic is written so that no compiler may fuse it into FMAs (an
// explicit float64(...) conversion forbids fusion, Go spec "Floating-point
// operators") and no assembly routine is involved (math.Log is assembly on
// amd64 and s390x; log64 below is its portable algorithm). Only +, -, *, /
// and math.Sqrt remain, all correctly rounded IEEE operations.

// splitMix64 is Steele, Lea and Flood's SplitMix64 generator (the seeding
// generator of xoshiro; passes BigCrush). Its whole state is one counter.
type splitMix64 struct{ state uint64 }

func (r *splitMix64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	return mix64(r.state)
}

// mix64 is SplitMix64's output function (a variant of MurmurHash3's
// finalizer).
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float64 uniform on [0, 1) with 53 random bits.
func (r *splitMix64) uniform() float64 {
	return float64(r.next()>>11) * 0x1p-53
}

// normalSampler draws standard normal float64 values with Marsaglia's polar
// method, keeping the second value of each pair for the next call.
type normalSampler struct {
	rng      splitMix64
	spare    float64
	hasSpare bool
}

func (s *normalSampler) next() float64 {
	if s.hasSpare {
		s.hasSpare = false
		return s.spare
	}
	for {
		u := 2*s.rng.uniform() - 1
		v := 2*s.rng.uniform() - 1
		q := float64(u*u) + float64(v*v)
		if q >= 1 || q == 0 {
			continue
		}
		m := math.Sqrt(-2 * log64(q) / q)
		s.spare, s.hasSpare = float64(v*m), true
		return float64(u * m)
	}
}

// streamSeed derives the state of an independent stream for nonlinear term
// t of a sample with the given seed. Streams: 0 = rows of W (standard
// normals), 1 = phases b, 2 = imq's per-row scales.
func streamSeed(seed uint64, t int, stream uint64) uint64 {
	return mix64(mix64(seed) ^ mix64(uint64(t)<<8|stream+1))
}

// log64 is the natural logarithm for finite x > 0 by the algorithm of
// FreeBSD's e_log.c, as in Go's portable math/log.go, with every product
// rounded explicitly so that no platform fuses it. It agrees with math.Log to
// within one ulp.
func log64(x float64) float64 {
	const (
		ln2Hi = 6.93147180369123816490e-01 // 3fe62e42 fee00000
		ln2Lo = 1.90821492927058770002e-10 // 3dea39ef 35793c76
		l1    = 6.666666666666735130e-01   // 3FE55555 55555593
		l2    = 3.999999999940941908e-01   // 3FD99999 9997FA04
		l3    = 2.857142874366239149e-01   // 3FD24924 94229359
		l4    = 2.222219843214978396e-01   // 3FCC71C5 1D8E78AF
		l5    = 1.818357216161805012e-01   // 3FC74664 96CB03DE
		l6    = 1.531383769920937332e-01   // 3FC39A09 D078C69F
		l7    = 1.479819860511658591e-01   // 3FC2F112 DF3E5244
	)
	f1, ki := math.Frexp(x)
	if f1 < math.Sqrt2/2 {
		f1 *= 2
		ki--
	}
	f := f1 - 1
	k := float64(ki)
	s := f / (2 + f)
	s2 := float64(s * s)
	s4 := float64(s2 * s2)
	t1 := float64(s2 * (l1 + float64(s4*(l3+float64(s4*(l5+float64(s4*l7)))))))
	t2 := float64(s4 * (l2 + float64(s4*(l4+float64(s4*l6)))))
	r := t1 + t2
	hfsq := float64(0.5 * float64(f*f))
	return float64(k*ln2Hi) - ((hfsq - (float64(s*(hfsq+r)) + float64(k*ln2Lo))) - f)
}
