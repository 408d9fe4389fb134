package wpcsim_test

import (
	"errors"
	"fmt"
	"github.com/wpcdb/wpcdb/internal/raceflag"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// featCloud and featOracle convert to and from wpctest's types.
func featCloud(c wpctest.Cloud) wpcsim.Cloud {
	return wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points}
}

func featOracle(cfg wpcsim.Config) wpctest.Oracle {
	o := wpctest.Oracle{Sum: cfg.Norm == wpcsim.NormSum, Raw: cfg.RawPoints}
	for _, term := range cfg.WithDefaults().Kernel.Terms {
		o.Terms = append(o.Terms, wpctest.Term{Kind: term.Kind.String(), Alpha: term.Alpha, Param: term.Param})
	}
	return o
}

func mustKernel(t testing.TB, spec string) wpcsim.Kernel {
	t.Helper()
	k, err := wpcsim.ParseKernel(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustFeatureMap(t testing.TB, cfg wpcsim.Config, dim int, opts wpcsim.FeatureOptions) *wpcsim.FeatureMap {
	t.Helper()
	f, err := wpcsim.NewFeatureMap(cfg, dim, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A linear kernel's φ is the (scaled) weighted centroid: the estimate is g
// itself, to float32 accuracy, under every norm and point normalization.
func TestFeatureLinearIsExact(t *testing.T) {
	for _, spec := range []string{"linear", "2.5*linear", "0.5*linear+linear"} {
		for _, norm := range []wpcsim.Norm{wpcsim.NormMean, wpcsim.NormSum} {
			for _, raw := range []bool{false, true} {
				cfg := wpcsim.Config{Kernel: mustKernel(t, spec), Norm: norm, RawPoints: raw}
				o := featOracle(cfg)
				for seed := uint64(1); seed <= 8; seed++ {
					rng := wpctest.NewRand(seed)
					d := 1 + rng.IntN(40)
					q := wpctest.RandomCloud(rng, 1+rng.IntN(30), d, wpctest.Shape{})
					x := wpctest.RandomCloud(rng, 1+rng.IntN(30), d, wpctest.Shape{})
					f := mustFeatureMap(t, cfg, d, wpcsim.FeatureOptions{Seed: seed})
					got, err := f.Estimate(featCloud(q), featCloud(x))
					if err != nil {
						t.Fatal(err)
					}
					want, mass := o.G(q, x)
					if !wpctest.Within(got, want, mass) {
						t.Errorf("%s norm=%s raw=%v seed=%d: estimate %.10g, g %.10g (diff %.3g, bound %.3g)",
							spec, norm, raw, seed, got, want, got-want, wpctest.Bound(want, mass))
					}
				}
			}
		}
	}
}

// For a linear kernel φ is exact, so the estimated cosine and mmd are the
// exact scores (within float32 noise).
func TestFeatureLinearScoreModes(t *testing.T) {
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		cfg := wpcsim.Config{Kernel: mustKernel(t, "linear"), Score: mode}
		sim, err := wpcsim.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for seed := uint64(1); seed <= 8; seed++ {
			rng := wpctest.NewRand(seed)
			q := featCloud(wpctest.RandomCloud(rng, 20, 16, wpctest.Shape{}))
			x := featCloud(wpctest.RandomCloud(rng, 25, 16, wpctest.Shape{}))
			f := mustFeatureMap(t, cfg, 16, wpcsim.FeatureOptions{})
			got, err := f.EstimateScore(q, x)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := sim.NewScorer(q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := sc.Score(x)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
				t.Errorf("%s seed=%d: estimate %.8g, exact %.8g", mode, seed, got, want)
			}
		}
	}
}

func TestFeatureLayout(t *testing.T) {
	cfg := wpcsim.Config{Kernel: mustKernel(t, "2*gaussian(1.5)+0.25*imq(2)+linear")}
	f := mustFeatureMap(t, cfg, 7, wpcsim.FeatureOptions{D: 5})
	want := []wpcsim.FeatureBlock{
		{Term: 0, Kind: wpcsim.Gaussian, Alpha: 2, Offset: 0, Len: 5},
		{Term: 1, Kind: wpcsim.IMQ, Alpha: 0.25, Offset: 5, Len: 5},
		{Term: 2, Kind: wpcsim.Linear, Alpha: 1, Offset: 10, Len: 7},
	}
	if got := f.Blocks(); !slices.Equal(got, want) {
		t.Errorf("Blocks() = %+v, want %+v", got, want)
	}
	if f.Dim() != 17 || f.PointDim() != 7 {
		t.Errorf("Dim() = %d, PointDim() = %d; want 17, 7", f.Dim(), f.PointDim())
	}
	// The blocks multiply out to the terms: the linear block alone is the
	// linear term of g.
	rng := wpctest.NewRand(3)
	q := featCloud(wpctest.RandomCloud(rng, 9, 7, wpctest.Shape{}))
	x := featCloud(wpctest.RandomCloud(rng, 11, 7, wpctest.Shape{}))
	pq, _ := f.Map(q, nil)
	px, _ := f.Map(x, nil)
	var lin float64
	for i := 10; i < 17; i++ {
		lin += float64(pq[i]) * float64(px[i])
	}
	wantLin, mass := featOracle(wpcsim.Config{Kernel: mustKernel(t, "linear")}).G(wpctest.Cloud(q), wpctest.Cloud(x))
	if !wpctest.Within(lin, wantLin, mass) {
		t.Errorf("linear block product %.10g, linear g %.10g", lin, wantLin)
	}
}

// Map is append-style and leaves dst alone on error.
func TestFeatureMapAppends(t *testing.T) {
	f := mustFeatureMap(t, wpcsim.Config{}, 8, wpcsim.FeatureOptions{D: 16})
	rng := wpctest.NewRand(4)
	c := featCloud(wpctest.RandomCloud(rng, 5, 8, wpctest.Shape{}))
	alone, err := f.Map(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := f.Map(c, []float32{42})
	if err != nil {
		t.Fatal(err)
	}
	if len(dst) != 1+f.Dim() || dst[0] != 42 || !slices.Equal(dst[1:], alone) {
		t.Errorf("Map appended %v to [42], want [42 %v]", dst, alone)
	}
}

func TestFeatureMapRefusesInvalidClouds(t *testing.T) {
	f := mustFeatureMap(t, wpcsim.Config{}, 3, wpcsim.FeatureOptions{D: 4})
	good := wpcsim.Cloud{Dim: 3, Weights: []float32{1, -2}, Points: []float32{1, 0, 0, 0, 1, 0}}
	cases := []struct {
		name  string
		c     wpcsim.Cloud
		field string
	}{
		{"empty", wpcsim.Cloud{Dim: 3}, "points"},
		{"wrong dim", wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}, "points"},
		{"nan weight", wpcsim.Cloud{Dim: 3, Weights: []float32{float32(math.NaN())}, Points: []float32{1, 0, 0}}, "weights[0]"},
		{"inf point", wpcsim.Cloud{Dim: 3, Weights: []float32{1}, Points: []float32{1, float32(math.Inf(1)), 0}}, "points[0][1]"},
		{"zero point", wpcsim.Cloud{Dim: 3, Weights: []float32{1, 1}, Points: []float32{1, 0, 0, 0, 0, 0}}, "points[1]"},
		{"count", wpcsim.Cloud{Dim: 3, Weights: []float32{1}, Points: []float32{1, 0, 0, 0, 1, 0}}, "weights"},
	}
	for _, tc := range cases {
		dst := []float32{7}
		out, err := f.Map(tc.c, dst)
		var ce *wpcsim.FieldError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, wpcsim.ErrInvalidCloud) {
			t.Errorf("%s: Map error %v, want a *FieldError on %q", tc.name, err, tc.field)
		}
		if len(out) != 1 || out[0] != 7 {
			t.Errorf("%s: Map changed dst to %v", tc.name, out)
		}
		if _, err := f.Estimate(good, tc.c); !errors.As(err, &ce) {
			t.Errorf("%s: Estimate error %v, want a *FieldError", tc.name, err)
		}
		if _, err := f.EstimateScore(tc.c, good); !errors.As(err, &ce) {
			t.Errorf("%s: EstimateScore error %v, want a *FieldError", tc.name, err)
		}
	}
}

func TestFeatureMapRefusesConfigs(t *testing.T) {
	cases := []struct {
		cfg  wpcsim.Config
		dim  int
		opts wpcsim.FeatureOptions
		want string
	}{
		{wpcsim.Config{Kernel: mustKernel(t, "maxsim")}, 4, wpcsim.FeatureOptions{}, "maxsim has no random-feature map"},
		{wpcsim.Config{}, 0, wpcsim.FeatureOptions{}, "dimension must be positive"},
		{wpcsim.Config{}, 4, wpcsim.FeatureOptions{D: -1}, "D = -1"},
		{wpcsim.Config{}, 4, wpcsim.FeatureOptions{D: wpcsim.MaxFeatureD + 1}, "random features"},
		{wpcsim.Config{Kernel: wpcsim.Kernel{Terms: []wpcsim.Term{{Alpha: -1, Kind: wpcsim.Linear}}}}, 4, wpcsim.FeatureOptions{}, "α must be in [1e-06, 1e+06]"},
	}
	for _, tc := range cases {
		_, err := wpcsim.NewFeatureMap(tc.cfg, tc.dim, tc.opts)
		if !errors.Is(err, wpcsim.ErrInvalidConfig) && !errors.Is(err, wpcsim.ErrInvalidKernel) || err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("NewFeatureMap(%v, %d, %+v) error %v, want one saying %q", tc.cfg.Kernel, tc.dim, tc.opts, err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// The seeded sample is pinned: these values must never change, or every
// stored φ of every collection silently goes stale. W rows for gaussian(1)
// are standard normals; imq(2)'s are (|n|/2)·g.
func TestFeatureSampleGolden(t *testing.T) {
	golden := map[uint64][2]struct{ w0, w7, b []float32 }{
		0: {
			{[]float32{-0.21329068, -0.3596942, -1.7289947, 0.5470207}, []float32{-1.9533511, 0.9861375, -1.8964927, -0.12691848}, []float32{2.4909976, 1.7012174, 2.6749897, 0.2918229}},
			{[]float32{0.43771833, -0.57511634, 0.2303096, -0.39744005}, []float32{0.02119499, -0.34861597, 0.47805768, 0.51302665}, []float32{1.1928421, 2.6089013, 5.3901777, 5.4176044}},
		},
		1: {
			{[]float32{0.9845279, -0.17586929, -0.7120662, -0.31234458}, []float32{-0.7768231, -0.842204, -0.66241777, -1.7887367}, []float32{0.7633878, 1.2420883, 5.9766026, 2.9528306}},
			{[]float32{-0.06899818, -0.058098737, 0.11990019, -0.22198135}, []float32{-1.6359459, 0.42683786, 0.47812617, -1.0143007}, []float32{2.2793374, 6.142346, 3.5176888, 2.0660055}},
		},
	}
	cfg := wpcsim.Config{Kernel: mustKernel(t, "gaussian(1)+imq(2)")}
	bits := func(v []float32) []uint32 {
		out := make([]uint32, len(v))
		for i, x := range v {
			out[i] = math.Float32bits(x)
		}
		return out
	}
	for seed, terms := range golden {
		s := mustFeatureMap(t, cfg, 4, wpcsim.FeatureOptions{D: 8, Seed: seed}).Sample()
		for tt, g := range terms {
			for _, c := range []struct {
				what      string
				got, want []float32
			}{
				{"W row 0", s.W[tt][0:4], g.w0},
				{"W row 7", s.W[tt][28:32], g.w7},
				{"b[0:4]", s.B[tt][:4], g.b},
			} {
				if !slices.Equal(bits(c.got), bits(c.want)) {
					t.Errorf("seed %d term %d %s = %v, want %v", seed, tt, c.what, c.got, c.want)
				}
			}
		}
	}
}

// Same seed, same sample; another seed, another; a smaller D is a prefix.
func TestFeatureSampleDeterminism(t *testing.T) {
	cfg := wpcsim.Config{Kernel: mustKernel(t, "linear+gaussian(0.5)+imq(0.5)")}
	a := mustFeatureMap(t, cfg, 12, wpcsim.FeatureOptions{D: 64, Seed: 9}).Sample()
	b := mustFeatureMap(t, cfg, 12, wpcsim.FeatureOptions{D: 64, Seed: 9}).Sample()
	c := mustFeatureMap(t, cfg, 12, wpcsim.FeatureOptions{D: 64, Seed: 10}).Sample()
	small := mustFeatureMap(t, cfg, 12, wpcsim.FeatureOptions{D: 16, Seed: 9}).Sample()
	for tt := range a.W {
		if !slices.Equal(a.W[tt], b.W[tt]) || !slices.Equal(a.B[tt], b.B[tt]) {
			t.Errorf("term %d: two samples with seed 9 differ", tt)
		}
		if slices.Equal(a.W[tt], c.W[tt]) || slices.Equal(a.B[tt], c.B[tt]) {
			t.Errorf("term %d: seeds 9 and 10 give the same sample", tt)
		}
		if !slices.Equal(small.W[tt], a.W[tt][:16*12]) || !slices.Equal(small.B[tt], a.B[tt][:16]) {
			t.Errorf("term %d: the D=16 sample is not a prefix of the D=64 one", tt)
		}
	}
	// Sample returns a copy: changing it does not change the map.
	f := mustFeatureMap(t, cfg, 12, wpcsim.FeatureOptions{D: 64, Seed: 9})
	s := f.Sample()
	s.W[0][0] = 1e9
	if f.Sample().W[0][0] == 1e9 {
		t.Error("Sample() shares storage with the map")
	}
}

// One FeatureMap serves concurrent callers; results equal the serial ones.
func TestFeatureMapConcurrent(t *testing.T) {
	f := mustFeatureMap(t, wpcsim.Config{Kernel: mustKernel(t, "linear+gaussian(0.5)+imq(1)")}, 24, wpcsim.FeatureOptions{D: 96})
	rng := wpctest.NewRand(5)
	clouds := make([]wpcsim.Cloud, 16)
	want := make([][]float32, len(clouds))
	for i := range clouds {
		clouds[i] = featCloud(wpctest.RandomCloud(rng, 1+rng.IntN(150), 24, wpctest.Shape{}))
		want[i], _ = f.Map(clouds[i], nil)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for r := 0; r < 3; r++ {
				for i, c := range clouds {
					got, err := f.Map(c, nil)
					if err != nil || !slices.Equal(got, want[i]) {
						errs <- fmt.Sprintf("goroutine %d cloud %d: differs from serial φ (err %v)", g, i, err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestFeatureMapAllocs(t *testing.T) {
	if raceflag.Enabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	f := mustFeatureMap(t, wpcsim.Config{}, 32, wpcsim.FeatureOptions{D: 128})
	c := featCloud(wpctest.RandomCloud(wpctest.NewRand(6), 70, 32, wpctest.Shape{}))
	dst := make([]float32, 0, f.Dim())
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := f.Map(c, dst[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs >= 1 {
		t.Errorf("Map allocates %.1f times per call with room in dst, want 0", allocs)
	}
}

// TestMapBatch checks that MapBatch gives Map's φ for a batch of clouds of
// many sizes (grouped together in the product) on one and three
// goroutines, and Map's error for a cloud with a bad shape or a NaN point.
func TestMapBatch(t *testing.T) {
	const seed = 21
	rng := wpctest.NewRand(seed)
	for _, kernel := range []string{"linear+gaussian(0.5)+imq(0.5)", "gaussian(1)"} {
		k, err := wpcsim.ParseKernel(kernel)
		if err != nil {
			t.Fatal(err)
		}
		f, err := wpcsim.NewFeatureMap(wpcsim.Config{Kernel: k}, 9, wpcsim.FeatureOptions{D: 100})
		if err != nil {
			t.Fatal(err)
		}
		var cs []wpcsim.Cloud
		for i := 0; i < 40; i++ {
			cs = append(cs, featCloud(wpctest.RandomCloud(rng, 1+(i*7)%70, 9, wpctest.Shape{})))
		}
		cs[5].Weights = cs[5].Weights[:len(cs[5].Weights)-1] // 1 weight short
		cs[17].Points[3] = float32(math.NaN())
		n := f.Dim()
		for _, par := range []int{1, 3} {
			dst := make([]float32, len(cs)*n)
			errs := make([]error, len(cs))
			f.MapBatch(cs, dst, errs, par)
			for i, c := range cs {
				want, werr := f.Map(c, nil)
				if (werr == nil) != (errs[i] == nil) {
					t.Fatalf("%s par=%d seed %d cloud %d: MapBatch error %v, Map error %v", kernel, par, seed, i, errs[i], werr)
				}
				if werr != nil {
					continue
				}
				for j, w := range want {
					if g := dst[i*n+j]; math.Abs(float64(g-w)) > 1e-5*(1+math.Abs(float64(w))) {
						t.Fatalf("%s par=%d seed %d cloud %d: φ[%d] = %v, Map gives %v", kernel, par, seed, i, j, g, w)
					}
				}
			}
			if errs[5] == nil || errs[17] == nil {
				t.Fatalf("%s par=%d: bad clouds mapped without error: %v, %v", kernel, par, errs[5], errs[17])
			}
		}
	}
}
