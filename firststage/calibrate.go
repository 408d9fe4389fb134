package firststage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/order"
	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Items is what a calibration reads of a collection (the root package's
// adapter of storage.Coll). Calibrate draws its sample of items itself
// (sampleIDs) and asks for the vectors of that sample alone.
type Items interface {
	// Live is the live items' internal IDs; Calibrate does not modify it.
	Live() *roaring.Bitmap
	// VectorsOf calls fn with the g(X,X) and φ of the items iids, in
	// order, computed from their stored clouds.
	VectorsOf(iids []uint32, fn func(iid uint32, self wpcsim.Self, phi []float32) error) error
	// ReadCloud reads an item's stored cloud.
	ReadCloud(iid uint32, buf *storage.CloudBuf) (storage.Record, error)
}

// sampleIDs draws n of the IDs in live uniformly (all of them when it
// holds at most n), in ascending order: a reservoir over the bitmap's
// iterator, so that only the sample's vectors are computed (φ of every
// item of a 100k collection would be most of a calibration).
func sampleIDs(live *roaring.Bitmap, n int, rng *rand.Rand) []uint32 {
	if uint64(n) >= live.GetCardinality() {
		return live.ToArray()
	}
	sample := make([]uint32, 0, n)
	seen := 0
	for it := live.Iterator(); it.HasNext(); {
		iid := it.Next()
		seen++
		if len(sample) < n {
			sample = append(sample, iid)
		} else if j := rng.IntN(seen); j < n {
			sample[j] = iid
		}
	}
	slices.Sort(sample)
	return sample
}

// CalibrateOptions tune a calibration; zero values take the defaults.
type CalibrateOptions struct {
	// Queries of the real workload; nil: held-out items are the queries.
	Queries []wpcsim.Cloud
	// K and Depth: recall@K at first-stage depth Depth (default 10 and
	// 100, a search's defaults).
	K, Depth int
	// Target is the recall the smallest representation must hold (0.98).
	Target float64
	// Sample bounds the items read (10,000); HeldOut the held-out queries
	// (50); PCAFit the items the projections are fitted on (2,000).
	Sample, HeldOut, PCAFit int
	// Budget bounds the exact scoring of the pooled truth, in multiply-adds
	// of the Gram products (2e10, a few seconds on one core).
	Budget float64
	// PointDepth is the first-stage depth of a search with the point index
	// (default 50), at which maxsim collections measure it.
	PointDepth int
	// MaxPoints is the collection's points per cloud limit, which decides
	// whether maxsim may use the point index (0: within its limit).
	MaxPoints int
	// Index is the collection's index configuration: when it would serve
	// the collection's FDE from an HNSW graph, maxsim measures the FDE
	// through a graph over the sample (rankGraph) instead of its exact
	// scan.
	Index collconfig.Index
	// Seed draws the sample.
	Seed uint64
	// Parallelism bounds the goroutines (0: GOMAXPROCS).
	Parallelism int
}

func (o CalibrateOptions) withDefaults() CalibrateOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.K, 10)
	def(&o.Depth, 100)
	def(&o.PointDepth, 50)
	def(&o.Sample, 10_000)
	def(&o.HeldOut, 50)
	def(&o.PCAFit, 2_000)
	if o.Target <= 0 {
		o.Target = 0.98
	}
	if o.Budget <= 0 {
		o.Budget = 2e10
	}
	return o
}

// Measured is one representation's recall in a calibration.
type Measured struct {
	Representation string  `json:"representation"`
	Dim            int     `json:"dim"`
	Recall         float64 `json:"recall"`
}

// Calibration is what Calibrate chose and why.
type Calibration struct {
	Chosen   Representation `json:"chosen"`
	Measured []Measured     `json:"measured"`
	// Skipped says why no measurement was made (the map is exact, maxsim,
	// too few items, clouds too large for the budget); Chosen is then φ.
	Skipped string `json:"skipped,omitempty"`
}

// ErrTooFew is returned by Calibrate when the collection holds too few
// items to measure recall on.
var ErrTooFew = wpcerr.New(wpcerr.FailedPrecondition, "firststage: too few items to calibrate")

// MinItems is the fewest items a calibration measures on.
const MinItems = 200

// pcaDims are the projections tried, smallest first.
var pcaDims = []int{16, 32, 64, 128}

// Calibrate chooses a collection's representation by measurement on its
// own items: for each candidate (the centroid when the kernel has a linear
// term, φ projected on its 16, 32, 64 and 128 principal directions, and φ
// itself) it measures recall@K at the first-stage depth against the exact
// top K of sample queries, and picks the smallest that holds Target (else
// the smallest within 0.01 of the best). The exact top K is pooled: the exact
// scores of the union of every candidate's top 2·Depth, which is the exact
// top K whenever any candidate ranks it within 2·Depth.
//
// Depth is scaled to the sample when the collection holds more items than
// it reads (depth · sample / count, at least 2·K), so that the measured
// recall is that of the same fraction of the collection.
func Calibrate(ctx context.Context, sim *wpcsim.Similarity, pointDim int, feat Featurizer, items Items, o CalibrateOptions) (Calibration, error) {
	o = o.withDefaults()
	phiMap, err := NewMap(sim, feat, Representation{})
	if err != nil {
		return Calibration{}, err
	}
	if phiMap.fde != nil && !PointsApply(sim, o.MaxPoints) {
		return Calibration{Chosen: Representation{Kind: FDE}, Skipped: "maxsim over raw points or clouds above 65,536 points uses its fixed-dimensional encoding"}, nil
	}
	if phiMap.Exact() {
		return Calibration{Chosen: Representation{Kind: Phi}, Skipped: "the linear kernel's first stage is exact"}, nil
	}
	live := items.Live()
	count := int(live.GetCardinality())
	if count < MinItems {
		return Calibration{}, fmt.Errorf("%w: %d, need %d", ErrTooFew, count, MinItems)
	}

	// The sample: o.Sample items drawn here, the one place a calibration
	// samples (the root package once drew IDs and this function drew a
	// reservoir of their vectors again), their φ computed from the clouds.
	rng := rand.New(rand.NewPCG(o.Seed, 0xca1))
	ids := sampleIDs(live, o.Sample, rng)
	sample := make([]sampled, 0, len(ids))
	err = items.VectorsOf(ids, func(iid uint32, self wpcsim.Self, phi []float32) error {
		sample = append(sample, sampled{iid: iid, self: self, phi: slices.Clone(phi)})
		return ctx.Err()
	})
	if err != nil {
		return Calibration{}, err
	}
	if len(sample) < MinItems {
		return Calibration{}, fmt.Errorf("%w: %d, need %d", ErrTooFew, len(sample), MinItems)
	}

	// The queries, and for held-out ones the item each must not find.
	queries := o.Queries
	own := make([]int64, 0, o.HeldOut)
	var qbufs []storage.CloudBuf
	if len(queries) == 0 {
		n := min(o.HeldOut, len(sample)/10)
		qbufs = make([]storage.CloudBuf, n)
		for i, j := range rng.Perm(len(sample))[:n] {
			rec, err := items.ReadCloud(sample[j].iid, &qbufs[i])
			if err != nil {
				return Calibration{}, err
			}
			queries = append(queries, heldOutQuery(rec.Cloud, phiMap.fde != nil))
			own = append(own, int64(sample[j].iid))
		}
	} else {
		for range queries {
			own = append(own, -1)
		}
	}

	// What exact scoring costs: stop when the budget does not allow at
	// least 10 queries against a pool of 2·Depth.
	var qPoints, xPoints float64
	for _, q := range queries {
		qPoints += float64(q.Len())
	}
	qPoints /= float64(len(queries))
	for _, s := range sample[:min(len(sample), 200)] {
		rec, err := items.ReadCloud(s.iid, nil)
		if err != nil {
			return Calibration{}, err
		}
		xPoints += float64(rec.Cloud.Len())
	}
	xPoints /= float64(min(len(sample), 200))
	pairCost := qPoints * xPoints * float64(pointDim)
	pool := 3 * 2 * o.Depth // a pool is about three candidates' lists
	if phiMap.fde != nil {
		pool = 2 * 2 * o.Depth // the FDE's and the point index's
	}
	nq := min(len(queries), int(o.Budget/(pairCost*float64(pool))))
	if nq < 10 {
		return Calibration{Chosen: Representation{Kind: phiMap.rep.Kind}, Skipped: fmt.Sprintf("clouds too large to calibrate within the budget (%.3g multiply-adds per pair)", pairCost)}, nil
	}
	queries, own = queries[:nq], own[:nq]

	depth := o.Depth
	if count > len(sample) {
		// Never below 2·K: at depth K recall@K asks for a perfect order
		// and under-measures every candidate (see the root package's
		// calibrationSampleSize); above the sample the callers size for,
		// this measures a slightly larger fraction than searches read.
		depth = max(2*o.K, int(math.Round(float64(o.Depth)*float64(len(sample))/float64(count))))
	}
	depth = min(depth, len(sample)-1)

	// The candidates, smallest first; φ last.
	var cands []*Map
	if len(phiMap.linear) > 0 {
		m, err := NewMap(sim, feat, Representation{Kind: Centroid})
		if err != nil {
			return Calibration{}, err
		}
		cands = append(cands, m)
	}
	var basis [][]float32
	if phiMap.fde == nil {
		basis = fitPCA(phiMap, sample, o.PCAFit, rng)
	}
	for _, r := range pcaDims {
		if r >= phiMap.baseDim || r > len(basis) {
			continue
		}
		proj := make([]float32, 0, r*phiMap.phiDim)
		for _, row := range basis[:r] {
			proj = append(proj, row...)
		}
		m, err := NewMap(sim, feat, Representation{Kind: PCA, Dim: r, Proj: proj})
		if err != nil {
			return Calibration{}, err
		}
		cands = append(cands, m)
	}
	cands = append(cands, phiMap)

	// Each candidate's ranking of the sample for each query.
	phiQ := make([][]float32, len(queries))
	for i, q := range queries {
		if phiQ[i], err = feat.Map(q, nil); err != nil {
			return Calibration{}, fmt.Errorf("firststage: calibration query %d: %w", i, err)
		}
	}
	tops := make([][][]uint32, len(cands)) // [cand][query] best first, 2·Depth long
	for ci, m := range cands {
		if err := ctx.Err(); err != nil {
			return Calibration{}, err
		}
		// The sample in a flat index: its exact scan is the ranking the
		// representation gives, ties by ID as every search breaks them.
		flat := index.NewFlat(m.dim, m.metric)
		var v []float32
		for _, s := range sample {
			v = m.AppendItem(v[:0], s.self, s.phi)
			if err := flat.Add(s.iid, v); err != nil {
				return Calibration{}, err
			}
		}
		tops[ci] = make([][]uint32, len(queries))
		errs := make([]error, len(queries))
		parallel.For(len(queries), o.Parallelism, func(qi int) {
			tops[ci][qi], errs[qi] = rank(flat, m.queryFromPhi(phiQ[qi]), own[qi], 2*o.Depth)
		})
		if err := errors.Join(errs...); err != nil {
			return Calibration{}, err
		}
	}

	// maxsim: the point index's ranking, measured beside the FDE's
	// (cands holds the FDE alone).
	if phiMap.fde != nil {
		pt, err := rankPoints(ctx, items, pointDim, sample, queries, own, 2*o.Depth, tops[0], o) // points.go
		if err != nil {
			return Calibration{}, err
		}
		tops = append(tops, pt)
	}

	// The pooled exact top K of each query.
	truth := make([][]uint32, len(queries))
	errs := make([]error, len(queries))
	parallel.For(len(queries), o.Parallelism, func(qi int) {
		truth[qi], errs[qi] = exactTop(sim, queries[qi], items, tops, qi, o.K)
	})
	if err := errors.Join(errs...); err != nil {
		return Calibration{}, err
	}

	var cal Calibration
	best := -1
	for ci, m := range cands {
		recall := recallAt(tops[ci], truth, depth)
		cal.Measured = append(cal.Measured, Measured{Representation: m.rep.String(), Dim: m.dim, Recall: recall})
		if best < 0 || recall > cal.Measured[best].Recall {
			best = ci
		}
	}
	// The smallest that holds the target, or, when none does, that comes
	// within 0.01 of the best: on compact 100k the sample's depth is
	// scaled down to K itself, where no candidate reached 0.98 and φ
	// (1,088 floats) was chosen with 0.944, 17 times the centroid's size.
	bar := min(o.Target, cal.Measured[best].Recall-0.01)
	for ci := range cands {
		if cal.Measured[ci].Recall >= bar {
			best = ci
			break
		}
	}
	rep := cands[best].rep
	rep.Recall = cal.Measured[best].Recall
	rep.Depth, rep.Queries, rep.Sample = depth, len(queries), len(sample)
	if phiMap.fde != nil {
		// The FDE against the point index, each at the depth a search
		// gives it (Depth, PointDepth) rather than scaled to the sample
		// as above: on colbert 50k (a 20,000-item sample, 17 queries),
		// scaled to depths 160 and 20 they measured 0.876 (the FDE through
		// the sample's graph) and 0.847 (the points), so the FDE was kept,
		// while searches of the collection found 0.767 at R = 400 and 0.960
		// at R = 50. The point index is chosen when it holds the target or
		// the FDE's recall. A query it does not serve goes to the FDE.
		fdepth := min(o.Depth, len(sample)-1)
		pdepth := min(o.PointDepth, fdepth)
		served := make([]bool, len(queries))
		nserved := 0
		for qi, q := range queries {
			served[qi] = pointsServe(q)
			if served[qi] {
				nserved++
			}
		}
		// When it serves at most half the queries (compact clouds' signed
		// weights serve about one in eight), it would be built for few.
		worth := 2*nserved > len(queries)
		fdeTops := tops[0]
		frecall := recallAt(fdeTops, truth, fdepth)
		precall := recallPoints(tops[len(tops)-1], fdeTops, served, truth, pdepth, fdepth)
		if worth && precall < min(o.Target, frecall) && o.graphAt(phiMap, count) {
			// The FDE's exact scan is not what a search reads once the
			// collection has its graph: on colbert 50k the exact scan of
			// every FDE found 1.000 of the exact top 10 at R = 400
			// (--index flat), the walk of its graph 0.767 (hnswlib's and
			// usearch's graphs over the same vectors 0.79). A graph over
			// the sample costs a build, so it is measured only when the
			// choice depends on it. (It flatters the FDE: the graph of a
			// 20,000-item sample found 0.876 where the collection's
			// found 0.767.)
			g, err := rankGraph(ctx, phiMap, sample, phiQ, own, fdepth, o)
			if err != nil {
				return Calibration{}, err
			}
			frecall, fdeTops = recallAt(g, truth, fdepth), g
			cal.Measured = append(cal.Measured, Measured{Representation: string(FDE) + "-hnsw", Dim: phiMap.dim, Recall: frecall})
			precall = recallPoints(tops[len(tops)-1], fdeTops, served, truth, pdepth, fdepth)
		}
		cal.Measured = append(cal.Measured, Measured{Representation: string(Points), Recall: precall})
		rep.Recall, rep.Depth = frecall, fdepth
		if worth && precall >= min(o.Target, frecall) {
			rep.Kind, rep.Recall, rep.Depth = Points, precall, pdepth
		}
	}
	cal.Chosen = rep
	return cal, nil
}

// graphAt says whether the collection's index serves count items of map m
// from an HNSW graph (collconfig.Index.Tiered's threshold).
func (o CalibrateOptions) graphAt(m *Map, count int) bool {
	at := tieredOptionsFor(o.Index, m).GraphAt
	return at > 0 && count >= at
}

// rankGraph returns, for each query, its depth best sample items through
// an HNSW graph of map m's vectors over the sample, built with the
// collection's graph options and walked as a search walks it (a beam of
// the collection's ef_search or the depth, whichever is larger), skipping
// the query's own item.
func rankGraph(ctx context.Context, m *Map, sample []sampled, phiQ [][]float32, own []int64, depth int, o CalibrateOptions) ([][]uint32, error) {
	to := tieredOptionsFor(o.Index, m)
	to.GraphAt = 1
	g, err := index.NewTiered(m.dim, m.metric, to)
	if err != nil {
		return nil, err
	}
	defer g.Stop()
	defer context.AfterFunc(ctx, g.Stop)() // a cancelled calibration stops the build
	var v []float32
	for _, s := range sample {
		v = m.AppendItem(v[:0], s.self, s.phi)
		if err := g.Add(s.iid, v); err != nil {
			return nil, err
		}
	}
	g.Wait() // single-threaded: about a minute for 20,000 FDEs of 1,024 floats
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tops := make([][]uint32, len(phiQ))
	errs := make([]error, len(phiQ))
	parallel.For(len(phiQ), o.Parallelism, func(qi int) {
		tops[qi], errs[qi] = rank(g, m.queryFromPhi(phiQ[qi]), own[qi], depth)
	})
	return tops, errors.Join(errs...)
}

// recallPoints is the point index's recall: its ranking (pts) at pdepth
// for the queries it serves, the FDE's (fde) at depth for the others.
func recallPoints(pts, fde [][]uint32, served []bool, truth [][]uint32, pdepth, depth int) float64 {
	return recallOf(truth, func(qi int) []uint32 {
		if served[qi] {
			return cut(pts[qi], pdepth)
		}
		return cut(fde[qi], depth)
	})
}

// recallAt is the share of the truth found in the first depth of each
// query's ranking.
func recallAt(tops [][]uint32, truth [][]uint32, depth int) float64 {
	return recallOf(truth, func(qi int) []uint32 { return cut(tops[qi], depth) })
}

// recallOf is the share of the truth found in each query's list (qi's is
// list(qi)).
func recallOf(truth [][]uint32, list func(qi int) []uint32) float64 {
	var hit, all int
	for qi := range truth {
		in := list(qi)
		for _, t := range truth[qi] {
			all++
			if slices.Contains(in, t) {
				hit++
			}
		}
	}
	return float64(hit) / float64(max(all, 1))
}

// cut is the first depth of a ranking (all of it when shorter).
func cut(top []uint32, depth int) []uint32 { return top[:min(depth, len(top))] }

type sampled struct {
	iid  uint32
	self wpcsim.Self
	phi  []float32
}

// queryFromPhi is AppendQuery from an already computed φ(Q).
func (m *Map) queryFromPhi(phi []float32) []float32 {
	q := m.appendBase(nil, phi)
	if m.mode == wpcsim.ScoreMMD {
		q = append(q, 0)
	}
	return q
}

// rank returns the IDs of the n best vectors of idx for qv, skipping the
// item skip (a held-out query's own item; -1 for none).
func rank(idx interface {
	Search([]float32, int, *roaring.Bitmap, index.Params) ([]index.Result, error)
}, qv []float32, skip int64, n int) ([]uint32, error) {
	res, err := idx.Search(qv, n+1, nil, index.Params{})
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, n)
	for _, r := range res {
		if int64(r.ID) != skip && len(out) < n {
			out = append(out, r.ID)
		}
	}
	return out, nil
}

// exactTop scores the pool of query qi (every candidate's list) exactly
// and returns its top k.
func exactTop(sim *wpcsim.Similarity, q wpcsim.Cloud, items Items, tops [][][]uint32, qi, k int) ([]uint32, error) {
	var pool []uint32
	for _, t := range tops {
		pool = append(pool, t[qi]...)
	}
	slices.Sort(pool)
	pool = slices.Compact(pool)
	sc, err := sim.NewScorer(q)
	if err != nil {
		return nil, err
	}
	lower := sim.Config().Score.LowerIsCloser()
	type scored struct {
		iid uint32
		s   float64
	}
	res := make([]scored, 0, len(pool))
	var buf storage.CloudBuf
	var one [1]float64
	for _, iid := range pool {
		rec, err := items.ReadCloud(iid, &buf)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		s, err := sc.ScoreBatchWithSelf([]wpcsim.Cloud{rec.Cloud}, []wpcsim.Self{rec.Self}, one[:0])
		if err != nil {
			return nil, err
		}
		v := s[0]
		if lower {
			v = -v
		}
		res = append(res, scored{iid, v})
	}
	slices.SortFunc(res, func(a, b scored) int { return order.Compare(a.s, a.iid, b.s, b.iid) })
	out := make([]uint32, 0, k)
	for _, r := range res[:min(k, len(res))] {
		out = append(out, r.iid)
	}
	return out, nil
}

// fitPCA returns the leading principal directions of the base vectors φ
// (scaled as the score mode scales them, so cosine fits unit-g vectors) of
// up to n sample items, largest variance first: eigenvectors of their
// uncentered second moment, which is what inner products and distances of
// projected vectors keep.
//
// They come from a randomized range finder with two power iterations
// (Halko, Martinsson and Tropp) rather than a full eigendecomposition, its
// products on the SIMD Gram kernel in float32, and only the small projected
// eigenproblem in gonum. Measured on 2,000 × 1,088 φ (BenchmarkFitPCA, a
// loaded 2-core machine): gonum's full EigenSym of the 1,088² moment 11.6 s,
// the range finder in gonum float64 2.6 s, on the SIMD Gram 0.25 s. A
// projection that prunes needs the leading subspace, not digits.
func fitPCA(phiMap *Map, sample []sampled, n int, rng *rand.Rand) [][]float32 {
	D := phiMap.phiDim
	want := min(pcaDims[len(pcaDims)-1], D)
	l := min(want+8, D)
	idx := rng.Perm(len(sample))[:min(n, len(sample))]
	n = len(idx)
	x := make([]float32, n*D)  // n×D
	xt := make([]float32, D*n) // D×n
	for r, i := range idx {
		s := sample[i]
		scale := float32(1)
		if phiMap.mode == wpcsim.ScoreCosine {
			scale = cosineScale(s.self)
		}
		for k, v := range s.phi {
			x[r*D+k] = scale * v
			xt[k*n+r] = scale * v
		}
	}
	qt := make([]float32, l*D) // the basis, one vector per row
	for i := range qt {
		qt[i] = float32(rng.NormFloat64())
	}
	yt := make([]float32, l*n)
	for it := 0; it < 3; it++ {
		orthonormalRows(qt, l, D)
		simd.Gram(yt, qt, l, x, n, D)  // yt[j][i] = <q_j, x_i>
		simd.Gram(qt, yt, l, xt, D, n) // q_j ← Xᵀ X q_j
	}
	orthonormalRows(qt, l, D)
	simd.Gram(yt, qt, l, x, n, D)
	small := make([]float32, l*l)
	simd.Gram(small, yt, l, yt, l, n) // Qᵀ XᵀX Q
	sym := mat.NewSymDense(l, nil)
	for i := 0; i < l; i++ {
		for j := i; j < l; j++ {
			sym.SetSym(i, j, float64(small[i*l+j]+small[j*l+i])/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(sym, true) {
		return nil
	}
	var u mat.Dense
	eig.VectorsTo(&u) // columns in ascending eigenvalue order
	out := make([][]float32, 0, want)
	for j := l - 1; j >= 0 && len(out) < want; j-- {
		row := make([]float32, D)
		for i := 0; i < l; i++ {
			c := float32(u.At(i, j))
			for k, v := range qt[i*D : (i+1)*D] {
				row[k] += c * v
			}
		}
		out = append(out, row)
	}
	return out
}

// orthonormalRows makes the r rows (of length d) of a orthonormal by
// modified Gram-Schmidt in float64, twice for stability.
func orthonormalRows(a []float32, r, d int) {
	rows := make([][]float64, r)
	for i := range rows {
		rows[i] = make([]float64, d)
		for k, v := range a[i*d : (i+1)*d] {
			rows[i][k] = float64(v)
		}
	}
	for pass := 0; pass < 2; pass++ {
		for j := range rows {
			for i := 0; i < j; i++ {
				floats.AddScaled(rows[j], -floats.Dot(rows[i], rows[j]), rows[i])
			}
			if nr := floats.Norm(rows[j], 2); nr > 0 {
				floats.Scale(1/nr, rows[j])
			}
		}
	}
	for i, row := range rows {
		for k, v := range row {
			a[i*d+k] = float32(v)
		}
	}
}
