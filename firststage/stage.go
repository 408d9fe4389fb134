package firststage

import (
	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Stage is a collection's first stage: its Map and the index holding every
// item's vector. It is safe for concurrent use; a collection swaps a whole
// Stage when it recalibrates, so a search sees one consistent pair.
type Stage struct {
	Map   *Map
	Index *index.Tiered
	// Points is the point-level index when the representation is Points
	// (nil otherwise); Index then holds the FDE vectors beside it.
	Points *pointindex.Index
}

// Candidates is what a first stage hands the rerank.
type Candidates struct {
	// IIDs are the candidates, best first by the first-stage score.
	IIDs []uint32
	// Scores are the exact scores of IIDs in the score mode's units (the
	// MMD distance for mmd), set only when Exact.
	Scores []float64
	// Exact says the first-stage scores are the exact ones: the caller
	// needs no rerank of IIDs (see Map.Exact).
	Exact bool
	// Index names the index searched: "flat", "hnsw" or "points".
	Index string
	// Unindexed are items of the allowed set the index does not hold yet
	// (written, not yet added): the caller scores them exactly.
	Unindexed []uint32
}

// Candidates returns up to r candidates for q among allowed, best first;
// filtered says allowed is narrower than the live items (else the index
// searches every item it holds, cheaper than testing each against
// allowed: an item deleted meanwhile is dropped by the caller). When the map is exact it returns
// only the top k (k ≤ r) with their exact scores, the graph searched as
// deep as r asks (its beam at least r). qself is the query's exact g(Q,Q),
// which the cosine needs.
func (s *Stage) Candidates(q wpcsim.Cloud, qself wpcsim.Self, k, r int, allowed *roaring.Bitmap, filtered bool, p index.Params) (Candidates, error) {
	if s.PointsServe(q) {
		return s.pointCandidates(q, r, allowed, filtered) // points.go
	}
	var c Candidates
	c.Index = "flat"
	if s.Index.HasGraph() {
		c.Index = "hnsw"
	}
	qv, err := s.Map.AppendQuery(nil, q)
	if err != nil {
		return c, err
	}
	c.Exact = s.Map.Exact()
	depth := r
	if c.Exact {
		// The top k are found as deep as r asks: the graph's beam is
		// r + k, unless the caller set one. (It was max(r, the
		// collection's ef_search = 64), which made every depth below 64
		// cost a beam of 64; then r alone, which at r = 20 and k = 10 kept
		// too few beyond the k returned: recall@10 0.934 on compact 20k
		// centroids, where hnswlib's beam of 32 found 0.964.) One more
		// than k is asked for: when it ties the k-th, the ties are ordered
		// by their IDs, which the index does not know, so twice as many are
		// asked for until the last one scores less (TestExactFirstStageTies;
		// the search looks up only the IDs that can reach the top k).
		// Asking for r every time made the walk rescore r codes in float32
		// instead of about k.
		depth = k + 1
		if p.Ef == 0 {
			p.Ef = r + k
		}
	}
	filter := allowed
	if !filtered {
		filter = nil
	}
	res, err := s.Index.Search(qv, depth, filter, p)
	if err != nil {
		return c, err
	}
	for c.Exact && len(res) == depth && res[depth-1].Score == res[k-1].Score {
		depth *= 2
		p.Ef = max(p.Ef, depth+k)
		if res, err = s.Index.Search(qv, depth, filter, p); err != nil {
			return c, err
		}
	}
	c.IIDs = make([]uint32, len(res))
	for i, h := range res {
		c.IIDs[i] = h.ID
	}
	if c.Exact {
		c.Scores = make([]float64, len(res))
		for i, h := range res {
			c.Scores[i] = s.Map.ExactScore(h.Score, qself)
		}
	}
	if allowed != nil {
		c.Unindexed = s.Index.Missing(allowed)
	}
	return c, nil
}
