package wpcsim

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// DefaultFeatureD is the number of random features per nonlinear term when
// FeatureOptions.D is 0 (the paper's D).
const DefaultFeatureD = 1024

// MaxFeatureD bounds the number of random features per nonlinear term.
const MaxFeatureD = 1 << 16

// ErrInvalidFeatureSample is wrapped by every error about a random-feature
// sample that does not fit its kernel and dimension (a wrong count of
// terms, shapes, non-finite values, or a malformed imported file).
var ErrInvalidFeatureSample = wpcerr.New(wpcerr.InvalidArgument, "wpcsim: invalid feature sample")

// FeatureOptions choose the seeded random-feature sample of a FeatureMap.
// The zero value is valid: D = 1024, seed 0.
type FeatureOptions struct {
	// D is the number of random features of each nonlinear term (default
	// DefaultFeatureD, at most MaxFeatureD).
	D int
	// Seed selects the sample (default 0). The same (kernel, dimension, D,
	// Seed) gives the same W and b on every platform and Go release. The
	// rows are drawn in order, so a smaller D with the same seed is a prefix
	// of a larger one.
	Seed uint64
}

// WithDefaults returns o with unset fields replaced by their defaults.
func (o FeatureOptions) WithDefaults() FeatureOptions {
	if o.D == 0 {
		o.D = DefaultFeatureD
	}
	return o
}

// Validate checks o after defaults.
func (o FeatureOptions) Validate() error {
	o = o.WithDefaults()
	if o.D < 1 || o.D > MaxFeatureD {
		return fmt.Errorf("%w: D = %d random features: want 1..%d", ErrInvalidConfig, o.D, MaxFeatureD)
	}
	return nil
}

// FeatureBlock is one kernel term's part of φ: coordinates
// [Offset, Offset+Len). A first stage may reweight or drop blocks, e.g. keep
// only the exact linear blocks when the estimated ones are too noisy.
type FeatureBlock struct {
	Term   int      // index of the term in Config.Kernel.Terms
	Kind   TermKind // Linear (exact, Len = d) or Gaussian/IMQ (estimated, Len = D)
	Alpha  float64  // the term's α; the block is already scaled by sqrt(α)
	Offset int      // first coordinate of the block in φ
	Len    int      // number of coordinates
}

// Exact reports whether the block is computed exactly (a linear term)
// rather than estimated by random features.
func (b FeatureBlock) Exact() bool { return b.Kind == Linear }

// FeatureSample is the random part of a feature map: for the nonlinear
// terms of a kernel, counted t = 0, 1, … in spec order, W[t] holds the D_t×Dim
// matrix (row-major: row i is feature i's frequency vector, already scaled
// for its kernel, i.e. it includes 1/σ or |n|/c) and B[t] the D_t phases.
// D_t = len(B[t]); terms may differ in D. A sample made by NewFeatureMap
// has the same D for all terms; an imported one (LoadFeatureSample) is used
// as given.
type FeatureSample struct {
	Dim int
	W   [][]float32
	B   [][]float32
}

// Validate checks that s fits cfg's kernel: one (W, B) per nonlinear term,
// 1 ≤ D ≤ MaxFeatureD, len(W[t]) = D·Dim, every value finite.
func (s FeatureSample) Validate(cfg Config) error {
	cfg = cfg.WithDefaults()
	if err := featureConfig(cfg); err != nil {
		return err
	}
	if s.Dim <= 0 {
		return fmt.Errorf("%w: dimension must be positive, got %d", ErrInvalidFeatureSample, s.Dim)
	}
	nl := nonlinearTerms(cfg.Kernel)
	if len(s.W) != len(nl) || len(s.B) != len(nl) {
		return fmt.Errorf("%w: kernel %s has %d nonlinear terms, sample has %d W and %d b", ErrInvalidFeatureSample, cfg.Kernel, len(nl), len(s.W), len(s.B))
	}
	for t, ti := range nl {
		name := fmt.Sprintf("nonlinear term %d (%s)", t, Kernel{Terms: cfg.Kernel.Terms[ti : ti+1]})
		d := len(s.B[t])
		if d < 1 || d > MaxFeatureD {
			return fmt.Errorf("%w: %s: D = %d: want 1..%d", ErrInvalidFeatureSample, name, d, MaxFeatureD)
		}
		if len(s.W[t]) != d*s.Dim {
			return fmt.Errorf("%w: %s: W has %d values, want D×d = %d×%d", ErrInvalidFeatureSample, name, len(s.W[t]), d, s.Dim)
		}
		if i := nonFiniteAt(s.W[t]); i >= 0 {
			return fmt.Errorf("%w: %s: W[%d][%d] is %v", ErrInvalidFeatureSample, name, i/s.Dim, i%s.Dim, s.W[t][i])
		}
		if i := nonFiniteAt(s.B[t]); i >= 0 {
			return fmt.Errorf("%w: %s: b[%d] is %v", ErrInvalidFeatureSample, name, i, s.B[t][i])
		}
	}
	return nil
}

// clone returns a deep copy of s.
func (s FeatureSample) clone() FeatureSample {
	out := FeatureSample{Dim: s.Dim, W: make([][]float32, len(s.W)), B: make([][]float32, len(s.B))}
	for t := range s.W {
		out.W[t] = slices.Clone(s.W[t])
	}
	for t := range s.B {
		out.B[t] = slices.Clone(s.B[t])
	}
	return out
}

func nonFiniteAt(v []float32) int {
	for i, x := range v {
		if x != x || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// featureConfig checks that cfg (after defaults) is valid and has a φ.
func featureConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Kernel.IsMaxSim() {
		return fmt.Errorf("%w: maxsim has no random-feature map φ (it is not a kernel mean embedding); its first stage needs a per-point or fixed-dimensional (MUVERA-style) encoding", ErrInvalidConfig)
	}
	return nil
}

// nonlinearTerms returns the indices in k.Terms of the terms that need a
// random sample (all but linear).
func nonlinearTerms(k Kernel) []int {
	var out []int
	for i, t := range k.Terms {
		if t.Kind != Linear {
			out = append(out, i)
		}
	}
	return out
}

// drawFeatureSample draws the seeded sample of cfg's nonlinear terms. Each
// term t has three independent streams (rows of W, phases b, imq's row
// scales) derived from (seed, t), and gaussian and imq terms with the same
// t share their row directions.
func drawFeatureSample(k Kernel, dim int, opts FeatureOptions) FeatureSample {
	s := FeatureSample{Dim: dim}
	for t, ti := range nonlinearTerms(k) {
		term := k.Terms[ti]
		n := opts.D
		w := make([]float32, n*dim)
		b := make([]float32, n)
		rows := normalSampler{rng: splitMix64{streamSeed(opts.Seed, t, 0)}}
		phases := splitMix64{streamSeed(opts.Seed, t, 1)}
		scales := normalSampler{rng: splitMix64{streamSeed(opts.Seed, t, 2)}}
		for i := 0; i < n; i++ {
			row := w[i*dim : (i+1)*dim]
			switch term.Kind {
			case Gaussian:
				for k := range row {
					row[k] = float32(rows.next() / term.Param)
				}
			case IMQ:
				r := math.Abs(scales.next()) / term.Param
				for k := range row {
					row[k] = float32(r * rows.next())
				}
			}
			b[i] = float32(float64(2*math.Pi) * phases.uniform())
		}
		s.W = append(s.W, w)
		s.B = append(s.B, b)
	}
	return s
}

// FeatureMap is the random-feature map φ of PAPER.md ("Random features"):
// one fixed-length vector per cloud whose inner products estimate g,
//
//	<φ(Q), φ(X)> ≈ g(Q, X).
//
// φ(X) concatenates one block per kernel term, in the kernel spec's order:
//
//	linear:    sqrt(α)·norm_j(w_j·x̂_j)                    d coordinates, exact
//	gaussian,
//	imq:       sqrt(α)·norm_j(w_j·z(x̂_j)),
//	           z(x) = sqrt(2/D)·cos(W·x + b)                D coordinates, estimated
//
// where norm_j is the mean over the cloud's points for NormMean and the plain
// sum for NormSum, so that the product of two blocks carries g's constant
// c = 1/(N·M) (or 1), and x̂ is the L2-normalized point unless
// Config.RawPoints. Each nonlinear term owns a sample: W (D×d) and b (D),
// b ~ U[0, 2π). Because E[2·cos(w·a+b)·cos(w·a'+b)] = E[cos(w·(a−a'))], the
// block estimates α·k(a, a') for a shift-invariant kernel whose Fourier
// measure is the law of the rows w of W:
//
//   - gaussian(σ): rows w ~ N(0, σ⁻²·I_d), so E[cos(w·δ)] = exp(−|δ|²/(2σ²)).
//   - imq(c): the imq kernel is a scale mixture of gaussians,
//     c/sqrt(c² + |δ|²) = E_n[exp(−n²|δ|²/(2c²))] with n ~ N(0, 1), so a
//     row is w = (|n|/c)·g with g ~ N(0, I_d) and one n per row. This samples
//     imq's Fourier measure exactly, without the Bessel-function radial
//     density of PAPER.md, which overflows float64 at d = 512.
//
// The error of an estimated block shrinks like 1/sqrt(D) and grows with the
// weight mass Σ|w| of both clouds; the linear blocks are exact. MaxSim is not
// a kernel mean embedding and has no φ.
//
// A FeatureMap computes φ for one similarity config and point dimension
// with a fixed sample. It is immutable and safe for concurrent use; its
// scratch buffers come from a pool.
type FeatureMap struct {
	cfg    Config
	dim    int
	n      int // len(φ)
	blocks []FeatureBlock
	sample FeatureSample
	// The nonlinear terms' samples stacked: wAll is nAll×dim (sample.W[t]
	// are windows of it), bAll the nAll phases, and stackOf[i] the first
	// row of blocks[i] in the stack (-1 for linear). φ projects onto all
	// of them at once.
	wAll, bAll []float32
	nAll       int
	stackOf    []int
	scratch    sync.Pool // *featureScratch
}

// NewFeatureMap returns the feature map of cfg for clouds of dimension dim
// with the seeded sample opts describes. A MaxSim kernel is refused.
func NewFeatureMap(cfg Config, dim int, opts FeatureOptions) (*FeatureMap, error) {
	cfg = cfg.WithDefaults()
	if err := featureConfig(cfg); err != nil {
		return nil, err
	}
	if dim <= 0 {
		return nil, fmt.Errorf("%w: dimension must be positive, got %d", ErrInvalidConfig, dim)
	}
	opts = opts.WithDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return newFeatureMap(cfg, drawFeatureSample(cfg.Kernel, dim, opts)), nil
}

// NewFeatureMapFromSample returns the feature map of cfg using the given
// sample (e.g. a trained model's W and b from LoadFeatureSample). The map
// keeps its own copy of s.
func NewFeatureMapFromSample(cfg Config, s FeatureSample) (*FeatureMap, error) {
	cfg = cfg.WithDefaults()
	if err := s.Validate(cfg); err != nil {
		return nil, err
	}
	return newFeatureMap(cfg, s.clone()), nil
}

// newFeatureMap takes ownership of s.
func newFeatureMap(cfg Config, s FeatureSample) *FeatureMap {
	cfg.Kernel.Terms = slices.Clone(cfg.Kernel.Terms)
	f := &FeatureMap{cfg: cfg, dim: s.Dim, sample: s}
	for t := range s.B {
		f.nAll += len(s.B[t])
	}
	// Stack the samples (s is the map's own), and make the map's sample
	// windows of the stack so W is held once. One term is its own stack.
	if len(s.W) == 1 {
		f.wAll, f.bAll = s.W[0], s.B[0]
	} else {
		f.wAll = make([]float32, 0, f.nAll*s.Dim)
		f.bAll = make([]float32, 0, f.nAll)
		for t := range s.W {
			f.wAll = append(f.wAll, s.W[t]...)
			f.bAll = append(f.bAll, s.B[t]...)
		}
	}
	t, row := 0, 0
	for i, term := range cfg.Kernel.Terms {
		blk := FeatureBlock{Term: i, Kind: term.Kind, Alpha: term.Alpha, Offset: f.n, Len: s.Dim}
		stack := -1
		if term.Kind != Linear {
			stack = row
			blk.Len = len(s.B[t])
			f.sample.W[t] = f.wAll[row*s.Dim : (row+blk.Len)*s.Dim : (row+blk.Len)*s.Dim]
			f.sample.B[t] = f.bAll[row : row+blk.Len : row+blk.Len]
			row += blk.Len
			t++
		}
		f.blocks = append(f.blocks, blk)
		f.stackOf = append(f.stackOf, stack)
		f.n += blk.Len
	}
	return f
}

// Config returns the similarity config, defaults filled in.
func (f *FeatureMap) Config() Config {
	c := f.cfg
	c.Kernel.Terms = slices.Clone(c.Kernel.Terms)
	return c
}

// PointDim is the dimension d of the clouds the map accepts.
func (f *FeatureMap) PointDim() int { return f.dim }

// Dim is the length of φ: d per linear term plus D per nonlinear term.
func (f *FeatureMap) Dim() int { return f.n }

// Blocks returns the layout of φ, one block per kernel term in spec order.
func (f *FeatureMap) Blocks() []FeatureBlock { return slices.Clone(f.blocks) }

// Sample returns a copy of the map's random sample (for export with
// SaveFeatureSample).
func (f *FeatureMap) Sample() FeatureSample { return f.sample.clone() }

// featureChunk is how many points one projection covers at most, and
// featureProj the most projections (points × features) one holds: the
// scratch of a φ is bounded by featureProj float32 whatever the cloud.
const (
	featureChunk = 64
	featureProj  = 1 << 14
)

type featureScratch struct {
	hat    []float32 // the points of a group of clouds as used by the kernel
	wts    []float32 // their weights
	owner  []int32   // and the cloud (index in the group) of each
	proj   []float32 // featureProj projections
	acc    []float64 // d accumulators of a linear block
	sum    []float32 // nAll accumulators of the random features per cloud
	q, x   []float32 // φ of both sides, for Estimate
	one    [1]Cloud  // Map's group of one
	oneErr [1]error
}

func (f *FeatureMap) getScratch() *featureScratch {
	if s, ok := f.scratch.Get().(*featureScratch); ok {
		return s
	}
	return &featureScratch{}
}

// Map appends φ(c) (Dim() values) to dst and returns it. c is validated
// first: an invalid cloud returns a *FieldError and dst unchanged. It
// allocates nothing when dst has room.
func (f *FeatureMap) Map(c Cloud, dst []float32) ([]float32, error) {
	if err := c.Validate(Limits{Dim: f.dim, RawPoints: f.cfg.RawPoints}); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = slices.Grow(dst, f.n)[:start+f.n]
	s := f.getScratch()
	err := f.mapInto(s, c, dst[start:])
	f.scratch.Put(s)
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// Estimate returns <φ(q), φ(x)>, the random-feature estimate of g(q, x).
func (f *FeatureMap) Estimate(q, x Cloud) (float64, error) {
	pq, px, s, err := f.mapPair(q, x)
	if err != nil {
		return 0, err
	}
	g := dotF64(pq, px)
	f.scratch.Put(s)
	return g, nil
}

// EstimateScore returns the random-feature estimate of the configured score
// mode: <φ(q), φ(x)> for inner, the cosine of φ(q) and φ(x) for cosine (0
// when either is zero), ||φ(q) − φ(x)|| for mmd.
func (f *FeatureMap) EstimateScore(q, x Cloud) (float64, error) {
	pq, px, s, err := f.mapPair(q, x)
	if err != nil {
		return 0, err
	}
	defer f.scratch.Put(s)
	switch f.cfg.Score {
	case ScoreCosine:
		nq, nx := dotF64(pq, pq), dotF64(px, px)
		if nq == 0 || nx == 0 {
			return 0, nil
		}
		return max(-1, min(1, dotF64(pq, px)/math.Sqrt(nq*nx))), nil
	case ScoreMMD:
		var d2 float64
		for i, a := range pq {
			t := float64(a) - float64(px[i])
			d2 += t * t
		}
		return math.Sqrt(d2), nil
	}
	return dotF64(pq, px), nil
}

// mapPair computes φ(q) and φ(x) into a scratch the caller must put back.
func (f *FeatureMap) mapPair(q, x Cloud) (pq, px []float32, s *featureScratch, err error) {
	lim := Limits{Dim: f.dim, RawPoints: f.cfg.RawPoints}
	if err := q.Validate(lim); err != nil {
		return nil, nil, nil, fmt.Errorf("query: %w", err)
	}
	if err := x.Validate(lim); err != nil {
		return nil, nil, nil, fmt.Errorf("item: %w", err)
	}
	s = f.getScratch()
	s.q = growF32(s.q, f.n)
	s.x = growF32(s.x, f.n)
	if err := f.mapInto(s, q, s.q); err != nil {
		f.scratch.Put(s)
		return nil, nil, nil, fmt.Errorf("query: %w", err)
	}
	if err := f.mapInto(s, x, s.x); err != nil {
		f.scratch.Put(s)
		return nil, nil, nil, fmt.Errorf("item: %w", err)
	}
	return s.q, s.x, s, nil
}

func dotF64(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, x := range a {
		s += float64(x) * float64(b[i])
	}
	return s
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// MapBatch writes φ(cs[i]) into dst[i*Dim() : (i+1)*Dim()] for every i, on
// up to parallelism goroutines (≤ 0: GOMAXPROCS). The points of several
// small clouds go through the random-feature product together, so a batch
// costs less than a Map per cloud. errs must be as long as cs: errs[i] is
// set, and nil otherwise, for a cloud whose φ fails as Map would fail it.
//
// The clouds must already be valid for the map (Cloud.Validate with the
// map's point dimension and RawPoints): MapBatch checks only each cloud's
// shape and weights, so that a caller validates a batch once. A point that
// is not finite, or zero under normalization, gives a non-finite φ, which
// is reported; no other check is skipped. Safe for concurrent use.
func (f *FeatureMap) MapBatch(cs []Cloud, dst []float32, errs []error, parallelism int) {
	if len(dst) < len(cs)*f.n || len(errs) < len(cs) {
		panic("wpcsim: MapBatch dst or errs shorter than the batch")
	}
	// Groups of consecutive clouds with about featureChunk points between
	// them (fewer than featureGroup clouds, so the sums stay small).
	var starts []int
	for i, pts := 0, 0; i < len(cs); i++ {
		if i == 0 || pts >= featureChunk || i-starts[len(starts)-1] >= featureGroup {
			starts = append(starts, i)
			pts = 0
		}
		pts += cs[i].Len()
	}
	starts = append(starts, len(cs))
	parallel.For(len(starts)-1, parallelism, func(g int) {
		i0, i1 := starts[g], starts[g+1]
		s := f.getScratch()
		f.mapGroup(s, cs[i0:i1], dst[i0*f.n:i1*f.n], errs[i0:i1])
		f.scratch.Put(s)
	})
}

// featureGroup is the most clouds MapBatch maps together.
const featureGroup = 16

// mapInto writes φ(c) into out (len f.n) for a validated c.
func (f *FeatureMap) mapInto(s *featureScratch, c Cloud, out []float32) error {
	s.one[0], s.oneErr[0] = c, nil
	f.mapGroup(s, s.one[:], out, s.oneErr[:])
	s.one[0] = Cloud{}
	return s.oneErr[0]
}

// mapGroup writes φ(cs[k]) into out[k*f.n:(k+1)*f.n], or an error into
// errs[k], for clouds that passed Validate (or, when not, whose bad points
// give a non-finite φ).
//
// The random features of all nonlinear terms and all the clouds are one
// product of the stacked points with the stacked sample, X·W_allᵀ,
// computed in tiles of at most featureChunk points × featureProj/rows
// features (W is read from memory once per group, and the tile stays in
// cache), each tile's cosines summed into float32 accumulators with their
// weights by simd.CosAddAcc without being stored. Against float64
// arithmetic throughout, a random feature of φ differs by at most about
// (2e-7 + 6e-8·(|p|+2π) + M·6e-8)·Σ_j|w_j| times the block's scale
// (measured ≤ 3.1e-7·scale·Σ|w| by TestMapFloat32Error), far below the
// sampling error of φ (≈ 1/sqrt(D)).
func (f *FeatureMap) mapGroup(s *featureScratch, cs []Cloud, out []float32, errs []error) {
	d := f.dim
	rows := 0
	for k, c := range cs {
		errs[k] = nil
		if err := c.validateShape(Limits{Dim: d}); err != nil {
			errs[k] = err
			continue
		}
		rows += c.Len()
	}
	s.hat = growF32(s.hat, rows*d)
	s.wts = growF32(s.wts, rows)
	s.owner = slices.Grow(s.owner[:0], rows)
	hat, r := s.hat, 0
	for k, c := range cs {
		if errs[k] != nil {
			continue
		}
		for j := 0; j < c.Len(); j++ {
			f.pointAsUsed(hat[r*d:(r+1)*d], c.Points[j*d:(j+1)*d])
			s.wts[r] = c.Weights[j]
			s.owner = append(s.owner, int32(k))
			r++
		}
	}
	if f.nAll > 0 {
		f.randomFeatures(s, len(cs), rows)
	}
	r = 0
	for k, c := range cs {
		if errs[k] != nil {
			continue
		}
		m := c.Len()
		errs[k] = f.finish(s, c, hat[r*d:(r+m)*d], s.sum[k*f.nAll:(k+1)*f.nAll], out[k*f.n:(k+1)*f.n])
		r += m
	}
}

// finish writes φ of one cloud from its points as used (hat) and its random
// features' sums.
func (f *FeatureMap) finish(s *featureScratch, c Cloud, hat, sum, out []float32) error {
	m, d := c.Len(), f.dim
	norm := 1.0
	if f.cfg.Norm == NormMean {
		norm = 1 / float64(m)
	}
	for bi, blk := range f.blocks {
		dst := out[blk.Offset : blk.Offset+blk.Len]
		scale := math.Sqrt(blk.Alpha) * norm
		if blk.Kind == Linear {
			s.linearBlock(dst, hat, c.Weights, d, scale)
		} else {
			scale *= math.Sqrt(2 / float64(blk.Len))
			row := f.stackOf[bi]
			for i, a := range sum[row : row+blk.Len] {
				dst[i] = float32(scale * float64(a))
			}
		}
		if i := nonFiniteAt(dst); i >= 0 {
			return CloudError("points", "random feature %d of term %d (%s) is not finite: points or weights too large for float32", i, blk.Term, blk.Kind)
		}
	}
	return nil
}

// pointAsUsed writes point x as the kernel sees it into dst: normalized
// exactly as the scorer normalizes, or raw.
func (f *FeatureMap) pointAsUsed(dst, x []float32) {
	if f.cfg.RawPoints {
		copy(dst, x)
		return
	}
	normalizeInto(dst, x, pointNorm2(x))
}

// linearBlock writes a linear block, scale·Σ_j w_j·hat_j, into dst (d
// values), accumulating in float64.
func (s *featureScratch) linearBlock(dst, hat, w []float32, d int, scale float64) {
	if cap(s.acc) < d {
		s.acc = make([]float64, d)
	}
	acc := s.acc[:d]
	clear(acc)
	// Four points per pass over acc: a quarter of the loads and stores of
	// acc (the loop was 7% of a linear-kernel search, its query's φ).
	j := 0
	for ; j+4 <= len(w); j += 4 {
		w0, w1, w2, w3 := float64(w[j]), float64(w[j+1]), float64(w[j+2]), float64(w[j+3])
		h0, h1, h2, h3 := hat[j*d:(j+1)*d], hat[(j+1)*d:(j+2)*d], hat[(j+2)*d:(j+3)*d], hat[(j+3)*d:(j+4)*d]
		h0, h1, h2, h3 = h0[:len(acc)], h1[:len(acc)], h2[:len(acc)], h3[:len(acc)]
		for k := range acc {
			acc[k] += w0*float64(h0[k]) + w1*float64(h1[k]) + w2*float64(h2[k]) + w3*float64(h3[k])
		}
	}
	for ; j < len(w); j++ {
		wj := float64(w[j])
		for k, v := range hat[j*d : (j+1)*d] {
			acc[k] += wj * float64(v)
		}
	}
	for i, a := range acc {
		dst[i] = float32(scale * a)
	}
}

// MapLinear appends φ(c)'s exact blocks alone (the linear terms', in spec
// order, Blocks' Linear entries) to dst, computed as Map computes them but
// without the random features: a first stage whose vector is the weighted
// centroid probes with it. c is validated first, as by Map.
func (f *FeatureMap) MapLinear(c Cloud, dst []float32) ([]float32, error) {
	if err := c.Validate(Limits{Dim: f.dim, RawPoints: f.cfg.RawPoints}); err != nil {
		return dst, err
	}
	m, d := c.Len(), f.dim
	s := f.getScratch()
	defer f.scratch.Put(s)
	s.hat = growF32(s.hat, m*d)
	for j := 0; j < m; j++ {
		f.pointAsUsed(s.hat[j*d:(j+1)*d], c.Points[j*d:(j+1)*d])
	}
	norm := 1.0
	if f.cfg.Norm == NormMean {
		norm = 1 / float64(m)
	}
	start := len(dst)
	for _, blk := range f.blocks {
		if blk.Kind != Linear {
			continue
		}
		n := len(dst)
		dst = slices.Grow(dst, d)[:n+d]
		s.linearBlock(dst[n:], s.hat[:m*d], c.Weights, d, math.Sqrt(blk.Alpha)*norm)
		if i := nonFiniteAt(dst[n:]); i >= 0 {
			return dst[:start], CloudError("points", "feature %d of term %d (linear) is not finite: points or weights too large for float32", i, blk.Term)
		}
	}
	return dst, nil
}

// randomFeatures sets s.sum[k*nAll+i] = Σ_j w_j·cos(<x̂_j, W_all[i]> +
// b_all[i]) over the points j of cloud k, for the rows of s.hat, whose
// weights are s.wts and clouds s.owner.
func (f *FeatureMap) randomFeatures(s *featureScratch, clouds, rows int) {
	d := f.dim
	s.sum = growF32(s.sum, clouds*f.nAll)
	clear(s.sum)
	if rows == 0 {
		return
	}
	s.proj = growF32(s.proj, featureProj)
	chunk := min(rows, featureChunk)
	// As many features per tile as fit, a multiple of 48 (the widest GEMM
	// panel) unless the stack is smaller.
	per := min(f.nAll, max(48, featureProj/chunk/48*48))
	for i0 := 0; i0 < f.nAll; i0 += per {
		n := min(per, f.nAll-i0)
		w, b := f.wAll[i0*d:(i0+n)*d], f.bAll[i0:i0+n]
		for j0 := 0; j0 < rows; j0 += chunk {
			nr := min(chunk, rows-j0)
			proj := s.proj[:nr*n]
			project(proj, s.hat[j0*d:(j0+nr)*d], nr, w, n, d)
			for j := range nr {
				k := int(s.owner[j0+j])
				sum := s.sum[k*f.nAll+i0 : k*f.nAll+i0+n]
				simd.CosAddAcc(sum, s.wts[j0+j], proj[j*n:(j+1)*n], b)
			}
		}
	}
}
