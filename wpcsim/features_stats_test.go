package wpcsim_test

import (
	"math"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Statistical tests of the random features. Every sample and cloud comes
// from a fixed seed, so the tests are deterministic; the bounds are
// statistical (several standard errors) so that a correct estimator passes
// for any seeds and a biased or mis-scaled one fails.

type featPair struct{ q, x wpctest.Cloud }

func featPairs(seed uint64, n, m, d, count int) []featPair {
	rng := wpctest.NewRand(seed)
	out := make([]featPair, count)
	for i := range out {
		out[i] = featPair{wpctest.RandomCloud(rng, n, d, wpctest.Shape{}), wpctest.RandomCloud(rng, m, d, wpctest.Shape{})}
	}
	return out
}

// featErrors returns est − g for every (sample seed, pair).
func featErrors(t *testing.T, cfg wpcsim.Config, pairs []featPair, D int, seeds []uint64) []float64 {
	t.Helper()
	o := featOracle(cfg)
	want := make([]float64, len(pairs))
	for i, p := range pairs {
		want[i], _ = o.G(p.q, p.x)
	}
	var errs []float64
	for _, seed := range seeds {
		f := mustFeatureMap(t, cfg, pairs[0].q.Dim, wpcsim.FeatureOptions{D: D, Seed: seed})
		for i, p := range pairs {
			got, err := f.Estimate(featCloud(p.q), featCloud(p.x))
			if err != nil {
				t.Fatal(err)
			}
			errs = append(errs, got-want[i])
		}
	}
	return errs
}

func rms(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s / float64(len(v)))
}

func meanSD(v []float64) (mean, sd float64) {
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(v)-1))
}

func seedRange(lo, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(lo + i)
	}
	return out
}

// The error of <φ, φ> shrinks like 1/sqrt(D): sixteen times the features,
// a quarter of the RMS error.
func TestFeatureErrorShrinksWithD(t *testing.T) {
	// 20 seeds × 4 pairs: the ratio's standard error is about 12%; fewer
	// seeds make [2.5, 6] too tight (200 seeds give ratios 4.15–4.35).
	const nSeeds = 20
	const pairSeed = 21
	pairs := featPairs(pairSeed, 8, 9, 16, 4)
	for _, spec := range []string{"gaussian(0.5)", "imq(0.5)", "0.3*gaussian(1)+0.7*imq(2)"} {
		cfg := wpcsim.Config{Kernel: mustKernel(t, spec)}
		small := rms(featErrors(t, cfg, pairs, 256, seedRange(1000, nSeeds)))
		large := rms(featErrors(t, cfg, pairs, 4096, seedRange(2000, nSeeds)))
		ratio := small / large
		t.Logf("%s: RMS error %.4g at D=256, %.4g at D=4096, ratio %.2f (ideal 4)", spec, small, large, ratio)
		if ratio < 2.5 || ratio > 6 {
			t.Errorf("%s (pairs seed %d, sample seeds 1000.. and 2000.., %d each): RMS error ratio D=256/D=4096 = %.2f, want ≈ 4 (in [2.5, 6])",
				spec, pairSeed, nSeeds, ratio)
		}
	}
}

// The estimate is unbiased: over many samples its mean error is within a
// few standard errors of 0 (while a mis-scaled estimator would be off by a
// multiple of g).
func TestFeatureEstimateUnbiased(t *testing.T) {
	nSeeds := 400
	if testing.Short() {
		nSeeds = 150
	}
	const pairSeed = 31
	// Positive weights and one cluster: a sizeable g, so that a scale error
	// shows as bias.
	rng := wpctest.NewRand(pairSeed)
	q := wpctest.RandomCloud(rng, 10, 8, wpctest.Shape{Clusters: 1, MaxWeight: 1})
	x := wpctest.RandomCloud(rng, 12, 8, wpctest.Shape{Clusters: 1, MaxWeight: 1})
	for _, c := range []*wpctest.Cloud{&q, &x} {
		for i, w := range c.Weights {
			c.Weights[i] = float32(math.Abs(float64(w)))
		}
	}
	q.Points = append(q.Points[:0], x.Points[:len(q.Points)]...) // overlapping clouds
	for _, spec := range []string{"gaussian(0.5)", "imq(0.5)", "linear+gaussian(1)"} {
		for _, norm := range []wpcsim.Norm{wpcsim.NormMean, wpcsim.NormSum} {
			cfg := wpcsim.Config{Kernel: mustKernel(t, spec), Norm: norm}
			g, _ := featOracle(cfg).G(q, x)
			errs := featErrors(t, cfg, []featPair{{q, x}}, 128, seedRange(1, nSeeds))
			mean, sd := meanSD(errs)
			se := sd / math.Sqrt(float64(len(errs)))
			t.Logf("%s %s: g = %.4g, mean error %.3g, RMS %.3g, standard error %.3g", spec, norm, g, mean, rms(errs), se)
			if math.Abs(mean) > 4*se {
				t.Errorf("%s %s (clouds seed %d, sample seeds 1..%d, D=128): mean error %.3g exceeds 4 standard errors (%.3g); g = %.4g",
					spec, norm, pairSeed, nSeeds, mean, 4*se, g)
			}
			if 4*se > 0.1*math.Abs(g) {
				t.Errorf("%s %s: the test cannot see a 10%% bias (4·SE = %.3g, g = %.3g)", spec, norm, 4*se, g)
			}
		}
	}
}

// The rows of W sample the kernel's Fourier measure: the mean of
// cos(w·δ) over rows is k(δ) — c/sqrt(c²+|δ|²) for imq(c) (checking the
// scale-mixture sampler against the closed form), exp(−|δ|²/(2σ²)) for
// gaussian(σ).
func TestFeatureSampleMatchesKernel(t *testing.T) {
	const d, D, seed = 8, 60000, 5
	f := mustFeatureMap(t, wpcsim.Config{Kernel: mustKernel(t, "imq(0.5)+gaussian(0.7)+imq(2)")}, d, wpcsim.FeatureOptions{D: D, Seed: seed})
	s := f.Sample()
	kernels := []struct {
		name string
		k    func(r2 float64) float64
	}{
		{"imq(0.5)", func(r2 float64) float64 { return 0.5 / math.Sqrt(0.25+r2) }},
		{"gaussian(0.7)", func(r2 float64) float64 { return math.Exp(-r2 / (2 * 0.49)) }},
		{"imq(2)", func(r2 float64) float64 { return 2 / math.Sqrt(4+r2) }},
	}
	rng := wpctest.NewRand(77)
	for _, r := range []float64{0.05, 0.3, 0.7, 1.2, 2} {
		delta := make([]float64, d)
		var n2 float64
		for k := range delta {
			delta[k] = rng.NormFloat64()
			n2 += delta[k] * delta[k]
		}
		for k := range delta {
			delta[k] *= r / math.Sqrt(n2)
		}
		for tt, kern := range kernels {
			cs := make([]float64, D)
			for i := range cs {
				var p float64
				for k, dk := range delta {
					p += float64(s.W[tt][i*d+k]) * dk
				}
				cs[i] = math.Cos(p)
			}
			mean, sd := meanSD(cs)
			want := kern.k(r * r)
			if bound := 5*sd/math.Sqrt(D) + 1e-6; math.Abs(mean-want) > bound {
				t.Errorf("%s, |δ| = %g (sample seed %d, δ seed 77): mean cos(w·δ) over %d rows = %.5f, kernel = %.5f (bound %.5f)",
					kern.name, r, seed, D, mean, want, bound)
			}
		}
	}
}
