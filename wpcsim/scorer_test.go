package wpcsim_test

import (
	"errors"
	"github.com/wpcdb/wpcdb/internal/raceflag"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func toCloud(c wpctest.Cloud) wpcsim.Cloud {
	return wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points}
}

func toOracle(t *testing.T, k wpcsim.Kernel, norm wpcsim.Norm, raw bool) wpctest.Oracle {
	t.Helper()
	o := wpctest.Oracle{Sum: norm == wpcsim.NormSum, Raw: raw}
	for _, term := range k.Terms {
		o.Terms = append(o.Terms, wpctest.Term{Kind: term.Kind.String(), Alpha: term.Alpha, Param: term.Param})
	}
	return o
}

func checkScore(o wpctest.Oracle, mode wpcsim.ScoreMode, q, x wpctest.Cloud, got float64) string {
	return o.CheckScore(mode.String(), q, x, got)
}

var testKernels = []string{
	"linear",
	"gaussian(0.5)",
	"imq(0.5)",
	"0.667*linear+0.333*gaussian(0.5)",
	"2*gaussian(1.5) + 0.25*imq(2) + linear",
	"maxsim",
	"3*maxsim",
}

func TestScoreMatchesOracle(t *testing.T) {
	const seed = 20261126
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	shapes := []struct{ n, m, d int }{
		{1, 1, 1}, {1, 3, 2}, {3, 1, 5}, {4, 7, 3}, {8, 16, 64}, {5, 9, 17}, {13, 11, 33}, {2, 40, 128},
		{32, 181, 128}, {41, 30, 64}, // ColBERT's query and document; MaxSim panels of 32 + 16 lanes
	}
	for _, spec := range testKernels {
		k, err := wpcsim.ParseKernel(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, norm := range []wpcsim.Norm{wpcsim.NormMean, wpcsim.NormSum} {
			for _, raw := range []bool{false, true} {
				modes := []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD}
				if k.IsMaxSim() {
					modes = modes[:1]
				}
				for _, mode := range modes {
					cfg := wpcsim.Config{Kernel: k, Norm: norm, RawPoints: raw, Score: mode}
					sim, err := wpcsim.New(cfg)
					if err != nil {
						t.Fatal(err)
					}
					o := toOracle(t, k, norm, raw)
					for _, sh := range shapes {
						q := wpctest.RandomCloud(rng, sh.n, sh.d, wpctest.Shape{})
						x := wpctest.RandomCloud(rng, sh.m, sh.d, wpctest.Shape{})
						sc, err := sim.NewScorer(toCloud(q))
						if err != nil {
							t.Fatal(err)
						}
						got, err := sc.Score(toCloud(x))
						if err != nil {
							t.Fatal(err)
						}
						if msg := checkScore(o, mode, q, x, got); msg != "" {
							t.Errorf("seed %d kernel %s norm %s raw %v shape %v: %s", seed, spec, norm, raw, sh, msg)
						}
					}
				}
			}
		}
	}
}

// TestPaperShape checks the full paper shape (77 query × 197 item points at
// d = 512) for the paper's kernel and for imq, in every score mode.
func TestPaperShape(t *testing.T) {
	if testing.Short() {
		t.Skip("paper shape is slow under -short")
	}
	const seed = 77197512
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	q := wpctest.RandomCloud(rng, 77, 512, wpctest.Shape{})
	items := []wpctest.Cloud{
		wpctest.RandomCloud(rng, 197, 512, wpctest.Shape{}),
		wpctest.RandomCloud(rng, 197, 512, wpctest.Shape{NegFrac: 0.5}),
	}
	for _, spec := range []string{wpcsim.DefaultKernelSpec, "imq(0.5)", "maxsim"} {
		k, _ := wpcsim.ParseKernel(spec)
		modes := []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD}
		if k.IsMaxSim() {
			modes = modes[:1]
		}
		for _, mode := range modes {
			sim, err := wpcsim.New(wpcsim.Config{Kernel: k, Score: mode})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := sim.NewScorer(toCloud(q))
			if err != nil {
				t.Fatal(err)
			}
			o := toOracle(t, k, wpcsim.NormMean, false)
			for i, x := range items {
				got, err := sc.Score(toCloud(x))
				if err != nil {
					t.Fatal(err)
				}
				if msg := checkScore(o, mode, q, x, got); msg != "" {
					t.Errorf("seed %d kernel %s mode %s item %d: %s", seed, spec, mode, i, msg)
				}
			}
		}
	}
}

func TestScoreBatchMatchesScore(t *testing.T) {
	const seed = 4242
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		sim, _ := wpcsim.New(wpcsim.Config{Score: mode})
		q := wpctest.RandomCloud(rng, 6, 24, wpctest.Shape{})
		sc, err := sim.NewScorer(toCloud(q))
		if err != nil {
			t.Fatal(err)
		}
		// Enough points to span several packed Gram chunks, with sizes that
		// do not divide the chunk evenly.
		var items []wpcsim.Cloud
		for i := 0; i < 70; i++ {
			items = append(items, toCloud(wpctest.RandomCloud(rng, 1+rng.IntN(300), 24, wpctest.Shape{})))
		}
		prefix := []float64{-7}
		batch, err := sc.ScoreBatch(items, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) != len(items)+1 || batch[0] != -7 {
			t.Fatalf("ScoreBatch must append: got len %d first %v", len(batch), batch[0])
		}
		for i, x := range items {
			one, err := sc.Score(x)
			if err != nil {
				t.Fatal(err)
			}
			if one != batch[i+1] {
				t.Errorf("mode %s item %d: batch %v != single %v", mode, i, batch[i+1], one)
			}
		}
	}
}

func TestScoreBatchRefusesWholeBatch(t *testing.T) {
	sim, _ := wpcsim.New(wpcsim.Config{})
	sc, _ := sim.NewScorer(wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}})
	good := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{0, 1}}
	bad := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{0, float32(math.NaN())}}
	out, err := sc.ScoreBatch([]wpcsim.Cloud{good, good, bad}, nil)
	if err == nil || !errors.Is(err, wpcsim.ErrInvalidCloud) {
		t.Fatalf("want ErrInvalidCloud, got %v", err)
	}
	if !strings.Contains(err.Error(), "item 2") || !strings.Contains(err.Error(), "points[0][1]") {
		t.Errorf("error must name the item and field: %v", err)
	}
	if len(out) != 0 {
		t.Errorf("a refused batch returns no scores, got %v", out)
	}
	wrongDim := wpcsim.Cloud{Dim: 3, Weights: []float32{1}, Points: []float32{0, 1, 0}}
	if _, err := sc.Score(wrongDim); err == nil || !strings.Contains(err.Error(), "dimension 3") {
		t.Errorf("wrong dimension: got %v", err)
	}
}

// TestCosineZeroSelf: a cloud whose weights cancel has g(X,X) = 0 up to
// rounding; its cosine with anything is 0, not noise divided by noise.
func TestCosineZeroSelf(t *testing.T) {
	for _, spec := range []string{"linear", "gaussian(0.5)", "imq(1)", wpcsim.DefaultKernelSpec} {
		k, _ := wpcsim.ParseKernel(spec)
		sim, _ := wpcsim.New(wpcsim.Config{Kernel: k, Score: wpcsim.ScoreCosine})
		q := wpcsim.Cloud{Dim: 3, Weights: []float32{1, 2}, Points: []float32{1, 0, 0, 0.3, 1, 0}}
		sc, _ := sim.NewScorer(q)
		// Same point twice with opposite weights, and a pair separated by
		// float32 noise.
		zero := wpcsim.Cloud{Dim: 3, Weights: []float32{5, -5}, Points: []float32{0.2, 0.4, 1, 0.2, 0.4, 1}}
		tiny := wpcsim.Cloud{Dim: 3, Weights: []float32{5, -5}, Points: []float32{0.2, 0.4, 1, 0.2, 0.4, 1.0000001}}
		for name, x := range map[string]wpcsim.Cloud{"zero": zero, "tiny": tiny} {
			self, err := sim.Self(x)
			if err != nil {
				t.Fatal(err)
			}
			if self.G > 1e-6*self.Mass {
				t.Fatalf("%s %s: test cloud is not near zero: %+v", spec, name, self)
			}
			got, err := sc.Score(x)
			if err != nil {
				t.Fatal(err)
			}
			if got != 0 {
				t.Errorf("%s %s: cosine %v, want 0", spec, name, got)
			}
		}
		// And as the query.
		sz, _ := sim.NewScorer(zero)
		if got, _ := sz.Score(q); got != 0 {
			t.Errorf("%s: zero query: cosine %v, want 0", spec, got)
		}
	}
}

func TestCosineAndMMDProperties(t *testing.T) {
	const seed = 99
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	q := toCloud(wpctest.RandomCloud(rng, 9, 16, wpctest.Shape{}))
	x := toCloud(wpctest.RandomCloud(rng, 13, 16, wpctest.Shape{}))
	cos, _ := wpcsim.New(wpcsim.Config{Score: wpcsim.ScoreCosine})
	mmd, _ := wpcsim.New(wpcsim.Config{Score: wpcsim.ScoreMMD})
	score := func(s *wpcsim.Similarity, a, b wpcsim.Cloud) float64 {
		sc, err := s.NewScorer(a)
		if err != nil {
			t.Fatal(err)
		}
		v, err := sc.Score(b)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if c := score(cos, q, q); math.Abs(c-1) > 1e-6 {
		t.Errorf("cosine(Q,Q) = %v, want 1", c)
	}
	if d := score(mmd, q, q); d > 1e-3*math.Sqrt(score(mmd, q, x)) {
		t.Errorf("mmd(Q,Q) = %v, want ~0", d)
	}
	if a, b := score(mmd, q, x), score(mmd, x, q); math.Abs(a-b) > 1e-6*a {
		t.Errorf("mmd not symmetric: %v vs %v", a, b)
	}
	// Splitting a point into two halves of its weight changes no score.
	split := wpcsim.Cloud{Dim: x.Dim, Weights: append([]float32{}, x.Weights...), Points: append([]float32{}, x.Points...)}
	split.Weights[0] /= 2
	split.Weights = append(split.Weights, split.Weights[0])
	split.Points = append(split.Points, x.Points[:x.Dim]...)
	sum, _ := wpcsim.New(wpcsim.Config{Norm: wpcsim.NormSum})
	if a, b := score(sum, q, x), score(sum, q, split); math.Abs(a-b) > 1e-5*math.Abs(a)+1e-6 {
		t.Errorf("sum norm: splitting a point changed g: %v vs %v", a, b)
	}
}

func TestNormMeanIsSumOverNM(t *testing.T) {
	rng := wpctest.NewRand(7)
	q := toCloud(wpctest.RandomCloud(rng, 5, 8, wpctest.Shape{}))
	x := toCloud(wpctest.RandomCloud(rng, 11, 8, wpctest.Shape{}))
	mean, _ := wpcsim.New(wpcsim.Config{})
	sum, _ := wpcsim.New(wpcsim.Config{Norm: wpcsim.NormSum})
	sm, _ := mean.NewScorer(q)
	ss, _ := sum.NewScorer(q)
	a, _ := sm.Score(x)
	b, _ := ss.Score(x)
	if math.Abs(a*55-b) > 1e-6*math.Abs(b) {
		t.Errorf("mean·N·M = %v, sum = %v", a*55, b)
	}
}

func TestConfigValidate(t *testing.T) {
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		_, err := wpcsim.New(wpcsim.Config{Kernel: maxsim, Score: mode})
		if !errors.Is(err, wpcsim.ErrInvalidConfig) || !strings.Contains(err.Error(), "maxsim") || !strings.Contains(err.Error(), mode.String()) {
			t.Errorf("maxsim with %s: got %v", mode, err)
		}
	}
	if _, err := wpcsim.New(wpcsim.Config{Kernel: maxsim}); err != nil {
		t.Errorf("maxsim inner: %v", err)
	}
	bad := wpcsim.Kernel{Terms: []wpcsim.Term{{Alpha: -1, Kind: wpcsim.Linear}, {Alpha: 1, Kind: wpcsim.Gaussian}}}
	_, err := wpcsim.New(wpcsim.Config{Kernel: bad, Norm: 9})
	if err == nil || !strings.Contains(err.Error(), "α must be in [1e-06, 1e+06], got -1") || !strings.Contains(err.Error(), "unknown norm") {
		t.Errorf("want every problem reported: %v", err)
	}
	sim, _ := wpcsim.New(wpcsim.Config{})
	if got := sim.Config().Kernel.String(); got != wpcsim.DefaultKernelSpec {
		t.Errorf("default kernel %q", got)
	}
	for _, s := range []string{"mean", "sum"} {
		n, err := wpcsim.ParseNorm(s)
		if err != nil || n.String() != s {
			t.Errorf("ParseNorm(%q) = %v, %v", s, n, err)
		}
	}
	if _, err := wpcsim.ParseNorm("avg"); err == nil {
		t.Error("ParseNorm(avg) accepted")
	}
	for _, s := range []string{"inner", "cosine", "mmd"} {
		m, err := wpcsim.ParseScoreMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseScoreMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := wpcsim.ParseScoreMode("l2"); err == nil {
		t.Error("ParseScoreMode(l2) accepted")
	}
}

// BenchmarkExactPaperShape is the exact scorer at the paper's shape, the
// number compared with NumPy/OpenBLAS (bench/numpy_exact.py): one thread,
// the default SIMD path, one query of 77×512 against a batch of 200 items
// of 197×512, kernel 0.667*linear+0.333*gaussian(0.5), mean normalization.
// Run it with -cpu 1.
func BenchmarkExactPaperShape(b *testing.B) {
	rng := wpctest.NewRand(1)
	q := toCloud(wpctest.RandomCloud(rng, 77, 512, wpctest.Shape{}))
	items := make([]wpcsim.Cloud, 200)
	for i := range items {
		items[i] = toCloud(wpctest.RandomCloud(rng, 197, 512, wpctest.Shape{}))
	}
	sim, _ := wpcsim.New(wpcsim.Config{})
	sc, _ := sim.NewScorer(q)
	out := make([]float64, 0, len(items))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = sc.ScoreBatch(items, out[:0])
	}
	b.ReportMetric(float64(b.N*len(items))/b.Elapsed().Seconds(), "pairs/s")
}

func TestScoreWithSelfAndClone(t *testing.T) {
	rng := wpctest.NewRand(5)
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		sim, _ := wpcsim.New(wpcsim.Config{Score: mode})
		sc, _ := sim.NewScorer(toCloud(wpctest.RandomCloud(rng, 5, 8, wpctest.Shape{})))
		var items []wpcsim.Cloud
		var selfs []wpcsim.Self
		for i := 0; i < 7; i++ {
			x := toCloud(wpctest.RandomCloud(rng, 3+i, 8, wpctest.Shape{}))
			s, err := sim.Self(x)
			if err != nil {
				t.Fatal(err)
			}
			items, selfs = append(items, x), append(selfs, s)
		}
		want, _ := sc.ScoreBatch(items, nil)
		got, err := sc.Clone().ScoreBatchWithSelf(items, selfs, nil)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: with self %v, without %v (%v)", mode, got, want, err)
		}
		if mode != wpcsim.ScoreInner {
			// A different self changes the score: it is really used.
			selfs[0].G *= 4
			moved, _ := sc.ScoreBatchWithSelf(items, selfs, nil)
			if moved[0] == want[0] {
				t.Errorf("%s: given self ignored", mode)
			}
		}
		if _, err := sc.ScoreBatchWithSelf(items, selfs[:1], nil); err == nil {
			t.Errorf("%s: mismatched selfs accepted", mode)
		}
	}
}

func TestScoreBatchDoesNotAllocate(t *testing.T) {
	if raceflag.Enabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	rng := wpctest.NewRand(8)
	for _, spec := range []string{wpcsim.DefaultKernelSpec, "imq(1)", "maxsim"} {
		k, _ := wpcsim.ParseKernel(spec)
		sim, _ := wpcsim.New(wpcsim.Config{Kernel: k})
		sc, _ := sim.NewScorer(toCloud(wpctest.RandomCloud(rng, 9, 32, wpctest.Shape{})))
		items := []wpcsim.Cloud{toCloud(wpctest.RandomCloud(rng, 20, 32, wpctest.Shape{})), toCloud(wpctest.RandomCloud(rng, 7, 32, wpctest.Shape{}))}
		out := make([]float64, 0, len(items))
		sc.ScoreBatch(items, out) // warm the scratch
		if a := testing.AllocsPerRun(20, func() { sc.ScoreBatch(items, out[:0]) }); a != 0 {
			t.Errorf("%s: ScoreBatch allocates %.1f times per call", spec, a)
		}
	}
}

// BenchmarkScorePatches: the exact rerank of Fashion-MNIST-patch-shaped
// clouds (16 raw points, d = 51, gaussian(4), cosine, selfs stored): 100
// items a batch, as one search's rerank at depth 100.
func BenchmarkScorePatches(b *testing.B) {
	rng := rand.New(rand.NewPCG(15, 2)) // fixed seed
	cloud := func() wpcsim.Cloud {
		c := wpcsim.Cloud{Dim: 51}
		for p := 0; p < 16; p++ {
			for k := 0; k < 49; k++ {
				c.Points = append(c.Points, float32(rng.Float64()))
			}
			c.Points = append(c.Points, float32(p%4)*8+4, float32(p/4)*8+4)
			c.Weights = append(c.Weights, float32(0.5+rng.Float64()))
		}
		return c
	}
	k, err := wpcsim.ParseKernel("gaussian(4)")
	if err != nil {
		b.Fatal(err)
	}
	sim, err := wpcsim.New(wpcsim.Config{Kernel: k, RawPoints: true, Score: wpcsim.ScoreCosine})
	if err != nil {
		b.Fatal(err)
	}
	items := make([]wpcsim.Cloud, 100)
	selfs := make([]wpcsim.Self, len(items))
	for i := range items {
		items[i] = cloud()
		selfs[i] = sim.SelfOfValid(items[i])
	}
	sc, err := sim.NewScorer(cloud())
	if err != nil {
		b.Fatal(err)
	}
	out := make([]float64, 0, len(items))
	b.ReportAllocs()
	for b.Loop() {
		out, _ = sc.ScoreBatchWithSelf(items, selfs, out[:0])
	}
}

// TestWideFarFromOrigin: raw points far from the origin and close to each
// other (squared norms ~46,000 against squared distances ~50, as pixel
// patches with positions are), signed weights that cancel, gaussian. The
// squared distance ||a||² + ||b||² − 2⟨a,b⟩ then cancels in its norms as
// well as in its Gram: both must be float64 for the bound of PAPER.md.
func TestWideFarFromOrigin(t *testing.T) {
	const seed = 20261204
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	k, err := wpcsim.ParseKernel("gaussian(8)")
	if err != nil {
		t.Fatal(err)
	}
	const d = 51
	base := make([]float32, d)
	for i := range base {
		base[i] = float32(100 + 50*rng.Float64())
	}
	cloud := func(m int) wpctest.Cloud {
		c := wpctest.Cloud{Dim: d, Weights: make([]float32, m), Points: make([]float32, m*d)}
		for i := 0; i < m; i++ {
			c.Weights[i] = float32(1 + rng.Float64())
			if i%2 == 1 {
				c.Weights[i] = -c.Weights[i-1] * float32(1+1e-3*rng.Float64())
			}
			for j := 0; j < d; j++ {
				c.Points[i*d+j] = base[j] + float32(rng.NormFloat64())
			}
		}
		return c
	}
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		sim, err := wpcsim.New(wpcsim.Config{Kernel: k, Norm: wpcsim.NormMean, RawPoints: true, Score: mode})
		if err != nil {
			t.Fatal(err)
		}
		o := toOracle(t, k, wpcsim.NormMean, true)
		for trial := 0; trial < 20; trial++ {
			q, x := cloud(16), cloud(16)
			sc, err := sim.NewScorer(toCloud(q))
			if err != nil {
				t.Fatal(err)
			}
			got, err := sc.Score(toCloud(x))
			if err != nil {
				t.Fatal(err)
			}
			if msg := checkScore(o, mode, q, x, got); msg != "" {
				t.Errorf("seed %d mode %s trial %d: %s", seed, mode, trial, msg)
			}
			batch, err := sc.ScoreBatch([]wpcsim.Cloud{toCloud(x)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if msg := checkScore(o, mode, q, x, batch[0]); msg != "" {
				t.Errorf("seed %d mode %s trial %d (batch): %s", seed, mode, trial, msg)
			}
		}
	}
}
