// Package wpctest holds test helpers shared by wpcdb's packages: clouds that
// look like a learned model's output, and an independent float64 oracle of
// PAPER.md's similarity. It does not import wpcsim, so that the oracle shares
// no code with what it checks.
package wpctest

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Cloud is a float32 cloud in the same flat layout as wpcsim.Cloud.
type Cloud struct {
	Dim     int
	Weights []float32
	Points  []float32
}

// Shape says how RandomCloud draws a cloud.
type Shape struct {
	// Clusters is the number of cluster centres (default 1 + M/8).
	Clusters int
	// MaxWeight bounds |w| (default 10).
	MaxWeight float64
	// NegFrac is the probability of a negative weight (default 0.4).
	NegFrac float64
}

// NewRand returns a PCG generator for a seed; tests print the seed.
func NewRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// RandomCloud draws m points of dimension d that look like a learned
// encoder's: clustered around a few centres, anisotropic (per-axis scales
// spread over two orders of magnitude), with signed weights whose magnitudes
// run from ~0.1 to MaxWeight and a NegFrac share negative.
func RandomCloud(rng *rand.Rand, m, d int, sh Shape) Cloud {
	if sh.Clusters <= 0 {
		sh.Clusters = 1 + m/8
	}
	if sh.MaxWeight == 0 {
		sh.MaxWeight = 10
	}
	if sh.NegFrac == 0 {
		sh.NegFrac = 0.4
	}
	scale := make([]float64, d)
	for k := range scale {
		scale[k] = math.Exp(rng.NormFloat64() * 0.8)
	}
	centres := make([][]float64, sh.Clusters)
	for c := range centres {
		centres[c] = make([]float64, d)
		for k := range centres[c] {
			centres[c][k] = rng.NormFloat64() * scale[k]
		}
	}
	out := Cloud{Dim: d, Weights: make([]float32, m), Points: make([]float32, m*d)}
	for i := 0; i < m; i++ {
		c := centres[rng.IntN(len(centres))]
		for k := 0; k < d; k++ {
			out.Points[i*d+k] = float32(c[k] + 0.5*rng.NormFloat64()*scale[k])
		}
		// log-uniform magnitude in [MaxWeight/100, MaxWeight]
		w := sh.MaxWeight * math.Pow(10, -2*rng.Float64())
		if rng.Float64() < sh.NegFrac {
			w = -w
		}
		out.Weights[i] = float32(w)
	}
	return out
}

// Term is one α·k of a kernel sum, as the oracle understands it.
type Term struct {
	Kind  string // "linear", "gaussian", "imq" or "maxsim"
	Alpha float64
	Param float64 // σ or c
}

// Oracle computes PAPER.md's similarity in float64 by its definition:
// kernels from ||a-b||² summed coordinate by coordinate, never from a Gram
// matrix.
type Oracle struct {
	Terms []Term
	Sum   bool // c = 1 instead of 1/(N·M)
	Raw   bool // points not normalized
}

type cloud64 struct {
	w []float64
	p [][]float64
}

func (o Oracle) convert(c Cloud) cloud64 {
	m := len(c.Weights)
	out := cloud64{w: make([]float64, m), p: make([][]float64, m)}
	for i := 0; i < m; i++ {
		out.w[i] = float64(c.Weights[i])
		row := make([]float64, c.Dim)
		var n2 float64
		for k := range row {
			row[k] = float64(c.Points[i*c.Dim+k])
			n2 += row[k] * row[k]
		}
		if !o.Raw {
			n := math.Max(math.Sqrt(n2), 1e-12)
			for k := range row {
				row[k] /= n
			}
		}
		out.p[i] = row
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for k := range a {
		s += a[k] * b[k]
	}
	return s
}

func dist2(a, b []float64) float64 {
	var s float64
	for k := range a {
		t := a[k] - b[k]
		s += t * t
	}
	return s
}

// G returns g(Q, X) and the mass m(Q, X) of PAPER.md's tolerance.
func (o Oracle) G(q, x Cloud) (g, mass float64) {
	Q, X := o.convert(q), o.convert(x)
	n, m := len(Q.w), len(X.w)
	for _, t := range o.Terms {
		if t.Kind == "maxsim" {
			c := 1.0
			if !o.Sum {
				c = 1 / float64(n)
			}
			var maxX float64
			for j := range X.p {
				maxX = math.Max(maxX, math.Sqrt(dot64(X.p[j], X.p[j])))
			}
			for i := range Q.p {
				best := math.Inf(-1)
				for j := range X.p {
					best = math.Max(best, dot64(Q.p[i], X.p[j]))
				}
				g += c * t.Alpha * Q.w[i] * best
				mass += c * t.Alpha * math.Abs(Q.w[i]) * math.Sqrt(dot64(Q.p[i], Q.p[i])) * maxX
			}
			continue
		}
		c := 1.0
		if !o.Sum {
			c = 1 / float64(n*m)
		}
		for i := range Q.p {
			for j := range X.p {
				var k, b float64
				switch t.Kind {
				case "linear":
					k = dot64(Q.p[i], X.p[j])
					b = math.Sqrt(dot64(Q.p[i], Q.p[i]) * dot64(X.p[j], X.p[j]))
				case "gaussian":
					k = math.Exp(-dist2(Q.p[i], X.p[j]) / (2 * t.Param * t.Param))
					b = 1
				case "imq":
					k = t.Param / math.Sqrt(t.Param*t.Param+dist2(Q.p[i], X.p[j]))
					b = 1
				default:
					panic("wpctest: unknown kernel " + t.Kind)
				}
				g += c * t.Alpha * Q.w[i] * X.w[j] * k
				mass += c * t.Alpha * math.Abs(Q.w[i]*X.w[j]) * b
			}
		}
	}
	return g, mass
}

// Within reports whether got matches want within PAPER.md's tolerance
// 1e-4·|want| + 1e-6·mass.
func Within(got, want, mass float64) bool {
	return math.Abs(got-want) <= 1e-4*math.Abs(want)+1e-6*mass
}

// Bound is PAPER.md's tolerance for a value with the given exact value and
// mass.
func Bound(want, mass float64) float64 { return 1e-4*math.Abs(want) + 1e-6*mass }

// CheckScore compares a score in mode "inner", "cosine" or "mmd" with the
// oracle under PAPER.md's tolerance for that mode and returns a description
// of the mismatch, or "" when it is within bounds. Near the cosine's
// zero-self-similarity threshold (g(X,X) within a factor 2 of 1e-6·m(X,X))
// either answer is accepted.
func (o Oracle) CheckScore(mode string, q, x Cloud, got float64) string {
	gqx, mqx := o.G(q, x)
	switch mode {
	case "inner":
		if !Within(got, gqx, mqx) {
			return fmt.Sprintf("inner: got %.10g want %.10g (diff %.3g, bound %.3g)", got, gqx, got-gqx, Bound(gqx, mqx))
		}
	case "cosine":
		gqq, mqq := o.G(q, q)
		gxx, mxx := o.G(x, x)
		near := func(g, m float64) bool { return g > 0.5e-6*m && g < 2e-6*m }
		if near(gqq, mqq) || near(gxx, mxx) {
			return ""
		}
		if gqq <= 1e-6*mqq || gxx <= 1e-6*mxx {
			if got != 0 {
				return fmt.Sprintf("cosine: got %g, want 0 for a zero self-similarity", got)
			}
			return ""
		}
		// PAPER.md bounds each g before dividing; propagate to the ratio.
		s := math.Sqrt(gqq * gxx)
		want := gqx / s
		tol := Bound(gqx, mqx)/s + math.Abs(want)*(Bound(gqq, mqq)/(2*gqq)+Bound(gxx, mxx)/(2*gxx))
		if math.Abs(got-want) > 1.5*tol+1e-12 {
			return fmt.Sprintf("cosine: got %.10g want %.10g (diff %.3g, bound %.3g)", got, want, got-want, tol)
		}
	case "mmd":
		gqq, mqq := o.G(q, q)
		gxx, mxx := o.G(x, x)
		want2 := math.Max(gqq, 0) + math.Max(gxx, 0) - 2*gqx
		mass := mqq + mxx + 2*mqx
		if got < 0 {
			return fmt.Sprintf("mmd: negative distance %g", got)
		}
		if got2 := got * got; math.Abs(got2-math.Max(want2, 0)) > Bound(want2, mass) {
			return fmt.Sprintf("mmd²: got %.10g want %.10g (bound %.3g)", got2, want2, Bound(want2, mass))
		}
	default:
		return "unknown score mode " + mode
	}
	return ""
}
