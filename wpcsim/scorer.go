package wpcsim

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// Similarity is a validated Config ready to score clouds. It is immutable and
// safe for concurrent use; the Scorers it makes are not.
type Similarity struct {
	cfg  Config
	wide bool // float64 Gram: raw points with a gaussian or imq term
	// linear: a linear term, whose map reads the float32 Gram (a wide
	// Gram fills it only then).
	linear bool
}

// New validates cfg (after defaults) and returns its Similarity.
func New(cfg Config) (*Similarity, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Own the terms so later changes to the caller's slice cannot alter us.
	cfg.Kernel.Terms = append([]Term(nil), cfg.Kernel.Terms...)
	s := &Similarity{cfg: cfg}
	for _, t := range cfg.Kernel.Terms {
		s.wide = s.wide || cfg.RawPoints && (t.Kind == Gaussian || t.Kind == IMQ)
		s.linear = s.linear || t.Kind == Linear
	}
	return s, nil
}

// keep is the kind of point norms its scorers take from validation:
// float64 beside a wide Gram.
func (s *Similarity) keep() normKeep {
	if s.wide {
		return keep64
	}
	return keep32
}

// Config returns the configuration, defaults filled in.
func (s *Similarity) Config() Config {
	c := s.cfg
	c.Kernel.Terms = append([]Term(nil), c.Kernel.Terms...)
	return c
}

// Limits returns the validation limits implied by the config for clouds of
// dimension dim (0: any) and at most maxPoints points (0: no limit).
func (s *Similarity) Limits(dim, maxPoints int) Limits {
	return Limits{Dim: dim, MaxPoints: maxPoints, RawPoints: s.cfg.RawPoints}
}

// Self is a cloud's similarity with itself, g(X, X), and its mass m(X, X)
// (PAPER.md's numerical tolerance); cosine and mmd need both.
type Self struct {
	G    float64
	Mass float64
}

// Self computes g(X, X) and m(X, X) exactly. It costs O(M²·d).
func (s *Similarity) Self(x Cloud) (Self, error) {
	if err := x.Validate(s.Limits(0, 0)); err != nil {
		return Self{}, err
	}
	var p prepared
	s.prepare(&p, x)
	var gram gramMatrix
	var tmp []float32
	return s.self(&p, &gram, &tmp), nil
}

// SelfOfValid is Self for a cloud that already passed Validate with the
// config's limits: it skips the validation, so that an upsert validates
// each cloud once. Safe for concurrent use.
func (s *Similarity) SelfOfValid(x Cloud) Self {
	var p prepared
	s.prepare(&p, x)
	var gram gramMatrix
	var tmp []float32
	return s.self(&p, &gram, &tmp)
}

func (s *Similarity) self(p *prepared, gram *gramMatrix, tmp *[]float32) Self {
	g, m := s.reduce(p, p, gram, tmp)
	return Self{G: g, Mass: m}
}

// Scorer scores items against the one query it is bound to. Binding
// normalizes the query once (and, for cosine and mmd, computes g(Q,Q));
// scoring reuses internal buffers, so a Scorer must not be used by several
// goroutines at once. Make one per goroutine; NewScorer is cheap next to
// scoring.
type Scorer struct {
	sim   *Similarity
	q     prepared
	qself Self
	x     prepared   // scratch: the item being scored (its points, not a copy)
	gram  gramMatrix // scratch: query × item
	sgram gramMatrix // scratch: item × item, for self-similarity
	item  prepared   // scratch for one item's self-similarity
	kmap  []float32  // scratch: one row of kernel values
	norms []float64  // scratch: squared point norms of the items being scored
	// shared marks a Clone, whose q belongs to the Scorer it was cloned
	// from.
	shared bool
}

// scorerPool recycles Scorers and their scratch across queries (Release):
// a search binds one per query, and growing its buffers again each time
// cost about 40 allocations per search.
var scorerPool = sync.Pool{New: func() any { return &Scorer{} }}

// Release returns the Scorer to a pool for a later NewScorer or Clone; it
// must not be used afterwards. Release the clones of a Scorer before it.
// Releasing is optional: an unreleased Scorer is garbage collected.
func (sc *Scorer) Release() {
	if sc.shared {
		sc.q = prepared{} // not ours to reuse
	}
	sc.sim = nil
	scorerPool.Put(sc)
}

// NewScorer validates the query and binds a Scorer to it.
func (s *Similarity) NewScorer(query Cloud) (*Scorer, error) {
	if err := query.Validate(s.Limits(0, 0)); err != nil {
		return nil, err
	}
	sc := scorerPool.Get().(*Scorer)
	sc.sim, sc.qself, sc.shared = s, Self{}, false
	s.prepare(&sc.q, query)
	if s.cfg.Score != ScoreInner {
		sc.qself = s.self(&sc.q, &sc.sgram, &sc.kmap)
	}
	return sc, nil
}

// QuerySelf is the query's exact g(Q,Q) and mass (zero in inner mode,
// which does not need them).
func (sc *Scorer) QuerySelf() Self { return sc.qself }

// Dim is the query's dimension; items must have the same.
func (sc *Scorer) Dim() int { return sc.q.d }

// Score returns the score of item x under the configured score mode: g for
// inner, the cosine for cosine, the non-negative MMD distance for mmd. x is
// validated first; an invalid x returns a *FieldError and no score.
func (sc *Scorer) Score(x Cloud) (float64, error) {
	var err error
	if sc.norms, err = x.validate(sc.sim.Limits(sc.q.d, 0), sc.norms[:0], sc.sim.keep()); err != nil {
		return 0, err
	}
	var out [1]float64
	sc.scoreValid([]Cloud{x}, nil, out[:0])
	return out[0], nil
}

// Clone returns a Scorer bound to the same query, with its own scratch, for
// use on another goroutine. The query's preparation is shared, not redone.
func (sc *Scorer) Clone() *Scorer {
	c := scorerPool.Get().(*Scorer)
	c.sim, c.q, c.qself, c.shared = sc.sim, sc.q, sc.qself, true
	return c
}

// ScoreBatchWithSelf is ScoreBatch for items whose g(X,X) is known (as
// storage keeps it): selfs[i] belongs to xs[i] and replaces the O(M²·d)
// recomputation in the cosine and mmd modes; inner mode ignores it.
func (sc *Scorer) ScoreBatchWithSelf(xs []Cloud, selfs []Self, dst []float64) ([]float64, error) {
	if len(selfs) != len(xs) {
		return dst, fmt.Errorf("%w: %d selfs for %d items", ErrInvalidConfig, len(selfs), len(xs))
	}
	if err := sc.validate(xs); err != nil {
		return dst, err
	}
	return sc.scoreValid(xs, selfs, dst), nil
}

// BatchItemError is a batch's error about one of its items: Index is
// its place in the batch.
type BatchItemError struct {
	Index int
	Err   error
}

func (e *BatchItemError) Error() string { return fmt.Sprintf("item %d: %v", e.Index, e.Err) }
func (e *BatchItemError) Unwrap() error { return e.Err }

// validate checks every item, keeping their points' squared norms in
// sc.norms for scoreValid.
func (sc *Scorer) validate(xs []Cloud) error {
	lim, keep := sc.sim.Limits(sc.q.d, 0), sc.sim.keep()
	sc.norms = sc.norms[:0]
	for i := range xs {
		var err error
		if sc.norms, err = xs[i].validate(lim, sc.norms, keep); err != nil {
			return &BatchItemError{Index: i, Err: err}
		}
	}
	return nil
}

// ScoreBatch appends the scores of xs to dst and returns it. Every item is
// validated before any is scored; the first invalid one fails the whole call
// with an error naming its index in xs.
func (sc *Scorer) ScoreBatch(xs []Cloud, dst []float64) ([]float64, error) {
	if err := sc.validate(xs); err != nil {
		return dst, err
	}
	return sc.scoreValid(xs, nil, dst), nil
}

// scoreValid is ScoreBatch for items already validated, whose squared
// point norms are in sc.norms; selfs, when not nil, gives each item's
// g(X,X).
func (sc *Scorer) scoreValid(xs []Cloud, selfs []Self, dst []float64) []float64 {
	start := len(dst)
	dst = slices.Grow(dst, len(xs))[:start+len(xs)]
	off := 0
	for i, x := range xs {
		// One Gram per item, straight from the item's points: normalizing
		// is folded into the kernel map as a per-column scale, so item
		// points are never copied.
		sc.sim.prepareColumns(&sc.x, x, sc.norms[off:off+x.Len()])
		off += x.Len()
		g, _ := sc.sim.reduce(&sc.q, &sc.x, &sc.gram, &sc.kmap)
		var self Self
		switch {
		case sc.sim.cfg.Score == ScoreInner:
		case selfs != nil:
			self = selfs[i]
		default:
			sc.sim.prepare(&sc.item, x)
			self = sc.sim.self(&sc.item, &sc.sgram, &sc.kmap)
		}
		dst[start+i] = sc.sim.finish(g, sc.qself, self)
	}
	return dst
}

// finish turns g(Q,X) into the configured score.
func (s *Similarity) finish(g float64, q, x Self) float64 {
	switch s.cfg.Score {
	case ScoreCosine:
		return Cosine(g, q, x)
	case ScoreMMD:
		return MMD(g, q, x)
	}
	return g
}

// selfNoise is the float32 noise floor of a self-similarity relative to its
// mass (PAPER.md's tolerance): below it, g(X,X) is treated as zero.
const selfNoise = 1e-6

// Zero reports whether g(X,X) is within float32 noise of zero (G ≤
// 1e-6·Mass, which also covers a negative G from rounding): such a cloud
// has no direction, and its cosine with anything is 0.
func (s Self) Zero() bool { return s.G <= selfNoise*s.Mass }

// Cosine is g / sqrt(g(Q,Q) g(X,X)), clamped to [-1, 1]. A cloud whose
// self-similarity is within float32 noise of zero (G ≤ 1e-6·Mass, which also
// covers a negative G from rounding) has no direction: the cosine is 0.
func Cosine(g float64, q, x Self) float64 {
	if q.Zero() || x.Zero() {
		return 0
	}
	c := g / math.Sqrt(q.G*x.G)
	return max(-1, min(1, c))
}

// MMD is sqrt(max(0, g(Q,Q) + g(X,X) - 2g)), with negative self-similarities
// from rounding clamped to 0 first.
func MMD(g float64, q, x Self) float64 {
	d2 := max(q.G, 0) + max(x.G, 0) - 2*g
	if d2 <= 0 {
		return 0
	}
	return math.Sqrt(d2)
}

// prepared is a cloud ready for the Gram product: its points (normalized
// copies, raw points, or for an item scored against a query its own points
// with inv set), plus the per-point quantities the kernel map and the mass
// need.
type prepared struct {
	n, d  int
	hat   []float32 // n×d points used in the Gram
	w     []float32 // weights
	norm2 []float64 // squared norms of the points as the kernel sees them (1 when normalized)
	// inv, when not nil, holds 1/||x_j||: hat holds raw points and the
	// Gram's column j must be scaled by inv[j] to be the normalized one.
	inv []float32
	// winv holds w_j·inv[j] (the linear term's weights) when inv is set.
	winv []float32
	// mq is hat packed for simd.MaxSim when the kernel is maxsim and the
	// cloud is prepared by prepare (a query, or an item for its self
	// term).
	mq simd.MaxSimQuery
	// hat64 is hat widened to float64, kept when the Similarity is wide
	// and the cloud is prepared by prepare (a query, or an item for its
	// self term): the Gram's float64 side, widened once per query instead
	// of once per candidate.
	hat64 []float64
}

func (p *prepared) reset(d int) {
	p.n, p.d = 0, d
	p.hat, p.w, p.norm2, p.inv, p.winv, p.hat64 = p.hat[:0], p.w[:0], p.norm2[:0], nil, p.winv[:0], p.hat64[:0]
}

func (s *Similarity) prepare(p *prepared, c Cloud) {
	p.reset(c.Dim)
	s.appendPrepared(p, c)
	if s.cfg.Kernel.IsMaxSim() {
		p.mq.Pack(p.hat, p.n, p.d)
	}
}

// prepareColumns prepares an item to be scored against a query without
// copying its points: under normalization the Gram is taken on the raw
// points and column j scaled by 1/||x_j|| in the kernel map. norms are the
// points' squared norms, from validation (float64 ones when wide: see
// keep64).
func (s *Similarity) prepareColumns(p *prepared, c Cloud, norms []float64) {
	m := c.Len()
	p.n, p.d, p.hat, p.w = m, c.Dim, c.Points, c.Weights
	p.norm2 = p.norm2[:0]
	if s.cfg.RawPoints {
		p.inv = nil
		p.norm2 = append(p.norm2, norms...)
		return
	}
	p.inv, p.winv = p.inv[:0], p.winv[:0]
	for i := 0; i < m; i++ {
		inv := float32(1 / max(math.Sqrt(norms[i]), 1e-12))
		p.inv = append(p.inv, inv)
		p.winv = append(p.winv, c.Weights[i]*inv)
		p.norm2 = append(p.norm2, 1)
	}
}

// pointNorm2 is ||x||²: a SIMD float32 dot (relative error ~1e-7), or
// float64 when float32 would under- or overflow.
func pointNorm2(x []float32) float64 {
	n2 := float64(simd.Dot(x, x))
	if n2 > 1e-30 && n2 < 1e30 {
		return n2
	}
	n2 = 0
	for _, v := range x {
		n2 += float64(v) * float64(v)
	}
	return n2
}

// appendPrepared appends c's points to p, normalized unless raw. Validate
// has refused zero points.
func (s *Similarity) appendPrepared(p *prepared, c Cloud) {
	d, m := c.Dim, c.Len()
	base := len(p.hat)
	p.hat = slices.Grow(p.hat, len(c.Points))[:base+len(c.Points)]
	p.w = append(p.w, c.Weights...)
	p.n += m
	if s.wide {
		// Raw points, with the float64 norms of keep64 (see
		// prepareColumns) and the float64 copy the wide Gram reads.
		copy(p.hat[base:], c.Points)
		nb := len(p.norm2)
		p.norm2 = append(p.norm2, make([]float64, m)...)
		simd.Norms64(p.norm2[nb:], c.Points, m, d)
		for _, v := range c.Points {
			p.hat64 = append(p.hat64, float64(v))
		}
		return
	}
	for i := 0; i < m; i++ {
		x := c.Points[i*d : (i+1)*d]
		dst := p.hat[base+i*d : base+(i+1)*d]
		n2 := pointNorm2(x)
		if s.cfg.RawPoints {
			copy(dst, x)
			p.norm2 = append(p.norm2, n2)
		} else {
			normalizeInto(dst, x, n2)
			p.norm2 = append(p.norm2, 1)
		}
	}
}

// normalizeInto sets dst = x / max(sqrt(n2), 1e-12), n2 being ||x||²
// (torch's F.normalize, as PAPER.md prescribes).
func normalizeInto(dst, x []float32, n2 float64) {
	inv := 1 / max(math.Sqrt(n2), 1e-12)
	if inv32 := float32(inv); inv32 != 0 && !math.IsInf(float64(inv32), 0) {
		for k, v := range x {
			dst[k] = v * inv32
		}
		return
	}
	for k, v := range x {
		dst[k] = float32(float64(v) * inv)
	}
}

// gramTileFloats bounds the Gram block reduce holds at once: the query's
// points are taken in tiles of rows so that a tile has at most this many
// entries (4 MiB of float32, 8 MiB more of float64 when wide), however
// large the clouds. Clouds up to 1024×1024 points fit in one tile.
var gramTileFloats = 1 << 20 // a variable so tests can force small tiles

// tileRows is the number of query rows per Gram tile against m item points.
func tileRows(n, m int) int {
	return max(1, min(n, gramTileFloats/max(m, 1)))
}

// reduce computes the Gram block of q against x tile by tile (gm is the
// scratch; maxsim uses simd.MaxSim instead), applies the kernel map and returns g(Q, X) and the mass
// m(Q, X) of PAPER.md. Each row's map and weighted sum run in float32 SIMD
// (exp, 1/sqrt, dot); rows accumulate in float64, in row order, so the
// result does not depend on the tile size.
func (s *Similarity) reduce(q, x *prepared, gm *gramMatrix, tmp *[]float32) (g, mass float64) {
	cfg := &s.cfg
	terms := cfg.Kernel.Terms
	if cfg.Kernel.IsMaxSim() {
		var maxXNorm float64
		for _, n2 := range x.norm2 {
			maxXNorm = max(maxXNorm, n2)
		}
		maxXNorm = math.Sqrt(maxXNorm)
		// The fused kernel: every row's best normalized inner product
		// without a Gram block, against the query packed once by
		// prepare. It replaced Gram (whose packing of the item's points
		// cost more than its products) and a scalar row max: 2.7 ms of
		// a 5.1 ms rerank of 50 ColBERT documents (BenchmarkPointSearch);
		// it scores a 180-point document against 32 query points in
		// about 15 µs (BenchmarkMaxSim: Gram and row max took several
		// times that).
		mq := &q.mq
		if mq.Len() != q.n || mq.Dim() != q.d {
			mq = new(simd.MaxSimQuery) // not prepared by prepare: never so today
			mq.Pack(q.hat, q.n, q.d)
		}
		*tmp = grow(*tmp, mq.Lanes())
		best := *tmp
		simd.MaxSim(best, mq, x.hat, x.n, x.inv)
		for i, b := range best[:q.n] {
			vi := float64(q.w[i])
			g += vi * float64(b)
			mass += math.Abs(vi) * math.Sqrt(q.norm2[i]) * maxXNorm
		}
		c := 1.0
		if s.cfg.Norm == NormMean {
			c = 1 / float64(q.n)
		}
		alpha := terms[0].Alpha
		return c * alpha * g, c * alpha * mass
	}
	rows := tileRows(q.n, x.n)
	ld := x.n
	linW := x.w
	if x.inv != nil {
		linW = x.winv
	}
	c := cfg.scale(q.n, x.n)
	var sums [MaxKernelTerms]float64
	acc := sums[:0]
	if len(terms) > len(sums) {
		acc = make([]float64, 0, len(terms))
	}
	acc = acc[:len(terms)]
	// The kernel map runs on a whole tile at once: one Exp (or Rsqrt) call
	// over rows×m values instead of one per query row (elementwise, so the
	// values are the same). Per-row calls on 16-point clouds spent more in
	// call overhead than in the map (BenchmarkSearchPatches).
	//
	// A wide similarity without a linear term never needs the Gram itself:
	// simd.Dist64 returns the scaled squared distances, Gram and
	// ||a||² + ||b||² − 2⟨a,b⟩ in float64 in its registers, rounded to
	// float32 once. It replaced a float64 Gram block and a scalar pass
	// turning it into distances (dist2Row, 19% of BenchmarkScorePatches).
	fused := s.wide && !s.linear
	*tmp = grow(*tmp, min(rows, q.n)*x.n)
	for i0 := 0; i0 < q.n; i0 += rows {
		i1 := min(q.n, i0+rows)
		dist := func(dst []float32, scale float64) {
			simd.Dist64(dst, q.hat64[i0*q.d:i1*q.d], q.norm2[i0:i1], i1-i0, x.hat, x.norm2, x.n, q.d, scale)
		}
		switch {
		case !fused:
			gm.compute(s.wide, s.linear, q, i0, i1, x)
		case len(terms) > 1:
			// Unscaled once, scaled per term below.
			gm.d2 = grow(gm.d2, (i1-i0)*ld)
			dist(gm.d2, 1)
		}
		gram := gm.f32
		k := (*tmp)[:(i1-i0)*ld]
		for t, term := range terms {
			var inv float32
			switch term.Kind {
			case Linear:
				for i := i0; i < i1; i++ {
					r0 := (i - i0) * ld
					acc[t] += float64(q.w[i]) * float64(simd.Dot(linW, gram[r0:r0+ld]))
				}
				continue
			case Gaussian:
				// exp(-δ²/(2σ²)); on unit vectors δ² = 2 - 2<a,b>.
				inv = -float32(1 / (2 * term.Param * term.Param))
			case IMQ:
				// c / sqrt(c² + δ²) = rsqrt(1 + δ²/c²).
				inv = float32(1 / (term.Param * term.Param))
			}
			switch {
			case fused && len(terms) == 1:
				dist(k, float64(inv))
			case fused:
				d2 := gm.d2[:len(k)]
				for j, v := range d2 {
					k[j] = inv * v
				}
			}
			for i := i0; i < i1 && !fused; i++ {
				r0 := (i - i0) * ld
				var (
					row   []float32
					row64 []float64
				)
				if s.wide {
					row64 = gm.f64[r0 : r0+ld] // gram may be unfilled
				} else {
					row = gram[r0 : r0+ld]
				}
				s.dist2Row(k[r0:r0+ld], q.norm2[i], x, row, row64, inv)
			}
			if term.Kind == Gaussian {
				simd.Exp(k, k)
			} else {
				for j := range k {
					k[j] += 1
				}
				simd.Rsqrt(k, k)
			}
			for i := i0; i < i1; i++ {
				r0 := (i - i0) * ld
				acc[t] += float64(q.w[i]) * float64(simd.Dot(x.w, k[r0:r0+ld]))
			}
		}
	}
	var absV, absW, linV, linX float64
	for _, v := range q.w {
		absV += math.Abs(float64(v))
	}
	for _, w := range x.w {
		absW += math.Abs(float64(w))
	}
	if s.linear {
		// Only a linear term's mass needs the norms: a square root per
		// point was 5% of BenchmarkScorePatches (gaussian alone).
		for i, v := range q.w {
			linV += math.Abs(float64(v)) * math.Sqrt(q.norm2[i])
		}
		for j, w := range x.w {
			linX += math.Abs(float64(w)) * math.Sqrt(x.norm2[j])
		}
	}
	for t, term := range terms {
		g += term.Alpha * acc[t]
		if term.Kind == Linear {
			mass += term.Alpha * linV * linX
		} else {
			mass += term.Alpha * absV * absW
		}
	}
	return c * g, c * mass
}

// dist2Row sets dst[j] = scale·||a - b_j||² for one query point a (squared
// norm na2) against a row of inner products, clamped at 0 against rounding.
// Normalized points have every squared norm 1, so δ² = 2 - 2<a,b> (with
// the row scaled by x.inv when x holds raw points); raw points use the
// float64 row (see gramMatrix).
func (s *Similarity) dist2Row(dst []float32, na2 float64, x *prepared, row []float32, row64 []float64, scale float32) {
	// Clamping by comparison, not the builtin max (which orders -0 and NaN
	// and so branches): NaN stays NaN either way, and ±0 maps to the same
	// kernel value. With slices resliced to one length the loops run
	// without bounds checks; this was 20% of BenchmarkScorePatches.
	switch {
	case !s.cfg.RawPoints && x.inv != nil:
		inv := x.inv[:len(row)]
		dst = dst[:len(row)]
		for j, gij := range row {
			v := 2 - 2*gij*inv[j]
			if v < 0 {
				v = 0
			}
			dst[j] = scale * v
		}
	case !s.cfg.RawPoints:
		dst = dst[:len(row)]
		for j, gij := range row {
			v := 2 - 2*gij
			if v < 0 {
				v = 0
			}
			dst[j] = scale * v
		}
	default:
		n2 := x.norm2[:len(row64)]
		dst = dst[:len(row64)]
		for j, gij := range row64 {
			v := na2 + n2[j] - 2*gij
			if v < 0 {
				v = 0
			}
			dst[j] = scale * float32(v)
		}
	}
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
