package wpcsim

import (
	"fmt"
	"math"
	"slices"
)

// Similarity is a validated Config ready to score clouds. It is immutable and
// safe for concurrent use; the Scorers it makes are not.
type Similarity struct {
	cfg Config
}

// New validates cfg (after defaults) and returns its Similarity.
func New(cfg Config) (*Similarity, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Own the terms so later changes to the caller's slice cannot alter us.
	cfg.Kernel.Terms = append([]Term(nil), cfg.Kernel.Terms...)
	return &Similarity{cfg: cfg}, nil
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
	var gram []float32
	return s.self(&p, &gram), nil
}

func (s *Similarity) self(p *prepared, gram *[]float32) Self {
	*gram = grow(*gram, p.n*p.n)
	computeGram(*gram, p.hat, p.n, p.hat, p.n, p.d)
	g, m := s.reduce(p, p, *gram, p.n, 0)
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
	x     prepared  // scratch: packed item points
	gram  []float32 // scratch: query × packed items
	sgram []float32 // scratch: item × item, for self-similarity
	item  prepared  // scratch for one item's self-similarity
}

// NewScorer validates the query and binds a Scorer to it.
func (s *Similarity) NewScorer(query Cloud) (*Scorer, error) {
	if err := query.Validate(s.Limits(0, 0)); err != nil {
		return nil, err
	}
	sc := &Scorer{sim: s}
	s.prepare(&sc.q, query)
	if s.cfg.Score != ScoreInner {
		sc.qself = s.self(&sc.q, &sc.sgram)
	}
	return sc, nil
}

// Dim is the query's dimension; items must have the same.
func (sc *Scorer) Dim() int { return sc.q.d }

// Score returns the score of item x under the configured score mode: g for
// inner, the cosine for cosine, the non-negative MMD distance for mmd. x is
// validated first; an invalid x returns a *CloudError and no score.
func (sc *Scorer) Score(x Cloud) (float64, error) {
	if err := x.Validate(sc.sim.Limits(sc.q.d, 0)); err != nil {
		return 0, err
	}
	var out [1]float64
	sc.scoreValid([]Cloud{x}, nil, out[:0])
	return out[0], nil
}

// Clone returns a Scorer bound to the same query, with its own scratch, for
// use on another goroutine. The query's preparation is shared, not redone.
func (sc *Scorer) Clone() *Scorer {
	return &Scorer{sim: sc.sim, q: sc.q, qself: sc.qself}
}

// ScoreBatchWithSelf is ScoreBatch for items whose g(X,X) is known (as
// storage keeps it): selfs[i] belongs to xs[i] and replaces the O(M²·d)
// recomputation in the cosine and mmd modes; inner mode ignores it.
func (sc *Scorer) ScoreBatchWithSelf(xs []Cloud, selfs []Self, dst []float64) ([]float64, error) {
	if len(selfs) != len(xs) {
		return dst, fmt.Errorf("%w: %d selfs for %d items", ErrInvalidConfig, len(selfs), len(xs))
	}
	lim := sc.sim.Limits(sc.q.d, 0)
	for i := range xs {
		if err := xs[i].Validate(lim); err != nil {
			return dst, fmt.Errorf("item %d: %w", i, err)
		}
	}
	return sc.scoreValid(xs, selfs, dst), nil
}

// maxPackedPoints bounds how many item points one Gram call covers.
const maxPackedPoints = 8192

// ScoreBatch appends the scores of xs to dst and returns it. Every item is
// validated before any is scored; the first invalid one fails the whole call
// with an error naming its index in xs.
func (sc *Scorer) ScoreBatch(xs []Cloud, dst []float64) ([]float64, error) {
	lim := sc.sim.Limits(sc.q.d, 0)
	for i := range xs {
		if err := xs[i].Validate(lim); err != nil {
			return dst, fmt.Errorf("item %d: %w", i, err)
		}
	}
	return sc.scoreValid(xs, nil, dst), nil
}

// scoreValid is ScoreBatch for items already validated; selfs, when not
// nil, gives each item's g(X,X).
func (sc *Scorer) scoreValid(xs []Cloud, selfs []Self, dst []float64) []float64 {
	start := len(dst)
	dst = slices.Grow(dst, len(xs))[:start+len(xs)]
	for lo := 0; lo < len(xs); {
		// Pack as many whole items as fit (at least one) into one Gram.
		hi, total := lo, 0
		for hi < len(xs) && (hi == lo || total+xs[hi].Len() <= maxPackedPoints) {
			total += xs[hi].Len()
			hi++
		}
		sc.x.reset(sc.q.d)
		for _, x := range xs[lo:hi] {
			sc.sim.appendPrepared(&sc.x, x)
		}
		sc.gram = grow(sc.gram, sc.q.n*total)
		computeGram(sc.gram, sc.q.hat, sc.q.n, sc.x.hat, total, sc.q.d)
		off := 0
		for i, x := range xs[lo:hi] {
			m := x.Len()
			view := sc.x.view(off, m)
			g, _ := sc.sim.reduce(&sc.q, &view, sc.gram, total, off)
			var self Self
			switch {
			case sc.sim.cfg.Score == ScoreInner:
			case selfs != nil:
				self = selfs[lo+i]
			default:
				sc.sim.prepare(&sc.item, x)
				self = sc.sim.self(&sc.item, &sc.sgram)
			}
			dst[start+lo+i] = sc.sim.finish(g, sc.qself, self)
			off += m
		}
		lo = hi
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

// Cosine is g / sqrt(g(Q,Q) g(X,X)), clamped to [-1, 1]. A cloud whose
// self-similarity is within float32 noise of zero (G ≤ 1e-6·Mass, which also
// covers a negative G from rounding) has no direction: the cosine is 0.
func Cosine(g float64, q, x Self) float64 {
	if q.G <= selfNoise*q.Mass || x.G <= selfNoise*x.Mass {
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

// prepared is a cloud ready for the Gram product: points normalized (unless
// raw), plus the per-point quantities the kernel map and the mass need.
type prepared struct {
	n, d  int
	hat   []float32 // n×d points used in the Gram (normalized or raw)
	w     []float32 // weights
	norm2 []float64 // squared norms of hat rows (1 when normalized)
}

func (p *prepared) reset(d int) {
	p.n, p.d = 0, d
	p.hat, p.w, p.norm2 = p.hat[:0], p.w[:0], p.norm2[:0]
}

// view returns the m points of p starting at point off, sharing storage.
func (p *prepared) view(off, m int) prepared {
	return prepared{n: m, d: p.d, hat: p.hat[off*p.d : (off+m)*p.d], w: p.w[off : off+m], norm2: p.norm2[off : off+m]}
}

func (s *Similarity) prepare(p *prepared, c Cloud) {
	p.reset(c.Dim)
	s.appendPrepared(p, c)
}

// appendPrepared appends c's points to p. Norms are taken in float64, and a
// normalized point is x / max(||x||, 1e-12) rounded once to float32.
func (s *Similarity) appendPrepared(p *prepared, c Cloud) {
	d := c.Dim
	for i := 0; i < c.Len(); i++ {
		x := c.Points[i*d : (i+1)*d]
		var n2 float64
		for _, v := range x {
			n2 += float64(v) * float64(v)
		}
		if s.cfg.RawPoints {
			p.hat = append(p.hat, x...)
			p.norm2 = append(p.norm2, n2)
		} else {
			inv := 1 / max(math.Sqrt(n2), 1e-12)
			for _, v := range x {
				p.hat = append(p.hat, float32(float64(v)*inv))
			}
			p.norm2 = append(p.norm2, 1)
		}
		p.w = append(p.w, c.Weights[i])
	}
	p.n += c.Len()
}

// reduce applies the kernel map to the Gram block of q against x (rows of
// gram with stride ld, x's columns starting at off) and returns g(Q, X) and
// the mass m(Q, X) of PAPER.md.
func (s *Similarity) reduce(q, x *prepared, gram []float32, ld, off int) (g, mass float64) {
	cfg := &s.cfg
	terms := cfg.Kernel.Terms
	if cfg.Kernel.IsMaxSim() {
		return s.reduceMaxSim(q, x, gram, ld, off)
	}
	c := cfg.scale(q.n, x.n)
	// Per-term constants: gaussian exp(-δ²·inv2s2), imq c/sqrt(c²+δ²).
	var sums [8]float64
	acc := sums[:0]
	if len(terms) > len(sums) {
		acc = make([]float64, 0, len(terms))
	}
	acc = acc[:len(terms)]
	clear(acc)
	for i := 0; i < q.n; i++ {
		row := gram[i*ld+off : i*ld+off+x.n]
		vi := float64(q.w[i])
		qn := q.norm2[i]
		for t, term := range terms {
			var r float64
			switch term.Kind {
			case Linear:
				for j, gij := range row {
					r += float64(x.w[j]) * float64(gij)
				}
			case Gaussian:
				k := -1 / (2 * term.Param * term.Param)
				for j, gij := range row {
					r += float64(x.w[j]) * math.Exp(k*dist2(qn, x.norm2[j], gij))
				}
			case IMQ:
				c2 := term.Param * term.Param
				for j, gij := range row {
					r += float64(x.w[j]) * term.Param / math.Sqrt(c2+dist2(qn, x.norm2[j], gij))
				}
			}
			acc[t] += vi * r
		}
	}
	var absV, absW, linV, linW float64
	for i, v := range q.w {
		absV += math.Abs(float64(v))
		linV += math.Abs(float64(v)) * math.Sqrt(q.norm2[i])
	}
	for j, w := range x.w {
		absW += math.Abs(float64(w))
		linW += math.Abs(float64(w)) * math.Sqrt(x.norm2[j])
	}
	for t, term := range terms {
		g += term.Alpha * acc[t]
		if term.Kind == Linear {
			mass += term.Alpha * linV * linW
		} else {
			mass += term.Alpha * absV * absW
		}
	}
	return c * g, c * mass
}

// dist2 is ||a-b||² from the squared norms and the inner product, clamped at
// 0 against rounding.
func dist2(na2, nb2 float64, dot float32) float64 {
	return max(0, na2+nb2-2*float64(dot))
}

func (s *Similarity) reduceMaxSim(q, x *prepared, gram []float32, ld, off int) (g, mass float64) {
	alpha := s.cfg.Kernel.Terms[0].Alpha
	c := 1.0
	if s.cfg.Norm == NormMean {
		c = 1 / float64(q.n)
	}
	var maxXNorm float64
	for _, n2 := range x.norm2 {
		maxXNorm = max(maxXNorm, n2)
	}
	maxXNorm = math.Sqrt(maxXNorm)
	for i := 0; i < q.n; i++ {
		row := gram[i*ld+off : i*ld+off+x.n]
		best := row[0]
		for _, gij := range row[1:] {
			best = max(best, gij)
		}
		vi := float64(q.w[i])
		g += vi * float64(best)
		mass += math.Abs(vi) * math.Sqrt(q.norm2[i]) * maxXNorm
	}
	return c * alpha * g, c * alpha * mass
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
