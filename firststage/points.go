package firststage

import (
	"context"
	"errors"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// pointsServe reports whether the point index answers a query: when its
// weights are positive (zeros aside), as ColBERT's are. The index finds
// items near the query's points; a negative weight rewards items far from
// its point, which may be near none of them: on compact clouds with signed
// query weights (bench's, 5,000 items) the exact top 10 was among the
// items the index found at all for only 60% of hits, against 100% with
// the same queries' weights made positive. Such queries go to the FDE.
func pointsServe(q wpcsim.Cloud) bool {
	return !slices.ContainsFunc(q.Weights, func(v float32) bool { return v < 0 }) &&
		slices.ContainsFunc(q.Weights, func(v float32) bool { return v > 0 })
}

// PointsServe says whether the stage's point index serves q (see
// pointsServe); when it does not, q is served by the FDE.
func (s *Stage) PointsServe(q wpcsim.Cloud) bool { return s.Points != nil && pointsServe(q) }

// pointCandidates are the point index's best r items by its MaxSim
// estimate (pointindex.Index.Search).
func (s *Stage) pointCandidates(q wpcsim.Cloud, r int, allowed *roaring.Bitmap, filtered bool) (Candidates, error) {
	c := Candidates{Index: "points"}
	filter := allowed
	if !filtered {
		filter = nil
	}
	hits, err := s.Points.Search(q, r, filter, pointindex.Params{})
	if err != nil {
		return c, err
	}
	c.IIDs = make([]uint32, len(hits))
	for i, h := range hits {
		c.IIDs[i] = h.IID
	}
	if allowed != nil {
		c.Unindexed = s.Index.Missing(allowed)
	}
	return c, nil
}

// PointsApply reports whether a collection may use the point index: a
// maxsim kernel over normalized points (the index files unit points),
// clouds of at most pointindex.MaxPoints points (maxPoints, the
// collection's limit; 0: unknown, taken as within it).
func PointsApply(sim *wpcsim.Similarity, maxPoints int) bool {
	cfg := sim.Config()
	return cfg.Kernel.IsMaxSim() && !cfg.RawPoints && maxPoints <= pointindex.MaxPoints
}

// BuildPoints builds the point index of the clouds of src (every live
// item of a collection) with the default options, seeded by seed, its
// postings written to store (nil: memory) under generation gen.
func BuildPoints(d int, src pointindex.Source, seed uint64, parallelism int, store pointindex.Store, gen uint32) (*pointindex.Index, error) {
	return pointindex.Build(d, src, pointindex.Options{Seed: seed, Parallelism: parallelism, Store: store, Gen: gen})
}

// maxSimQueryPoints bounds a held-out maxsim query: a query's length does
// not follow its documents' (ColBERT's queries have 32 tokens, its
// documents hundreds), and a whole document as a query would make the
// exact truth cost as much as that many queries.
const maxSimQueryPoints = 32

// heldOutQuery is the query a held-out item stands for: the item itself,
// or for maxsim its first maxSimQueryPoints points.
func heldOutQuery(x wpcsim.Cloud, maxsim bool) wpcsim.Cloud {
	if !maxsim || x.Len() <= maxSimQueryPoints {
		return x
	}
	return wpcsim.Cloud{Dim: x.Dim, Weights: x.Weights[:maxSimQueryPoints], Points: x.Points[:maxSimQueryPoints*x.Dim]}
}

// rankPoints builds a point index over the sample's clouds and returns,
// for each query, its n best items by the index's estimate, skipping the
// query's own item (own[qi], −1 for none); a query the index does not
// serve (pointsServe) takes fde's ranking, as Stage.Candidates does.
func rankPoints(ctx context.Context, items Items, d int, sample []sampled, queries []wpcsim.Cloud, own []int64, n int, fde [][]uint32, o CalibrateOptions) ([][]uint32, error) {
	src := func(fn func(uint32, wpcsim.Cloud) error) error {
		var buf storage.CloudBuf
		for _, s := range sample {
			rec, err := items.ReadCloud(s.iid, &buf)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return err
			}
			if err := fn(s.iid, rec.Cloud); err != nil {
				return err
			}
		}
		return ctx.Err()
	}
	x, err := BuildPoints(d, src, o.Seed, o.Parallelism, nil, 0) // in memory
	if err != nil {
		return nil, err
	}
	tops := make([][]uint32, len(queries))
	errs := make([]error, len(queries))
	parallel.For(len(queries), o.Parallelism, func(qi int) {
		if !pointsServe(queries[qi]) {
			tops[qi] = fde[qi]
			return
		}
		hits, err := x.Search(queries[qi], n+1, nil, pointindex.Params{})
		if err != nil {
			errs[qi] = err
			return
		}
		out := make([]uint32, 0, n)
		for _, h := range hits {
			if int64(h.IID) != own[qi] && len(out) < n {
				out = append(out, h.IID)
			}
		}
		tops[qi] = out
	})
	return tops, errors.Join(errs...)
}
