package pointindex

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/order"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Params tune one search; zero values take the index's.
type Params struct {
	// NProbe is the centroids probed per query point.
	NProbe int
}

// Hit is a candidate and its estimated score.
type Hit struct {
	IID      uint32
	Estimate float32
}

// scratch is one search's reusable memory.
type scratch struct {
	pos   []int32   // slot → candidate number, −1 for none
	cand  []uint32  // candidate number → slot
	best  []float32 // candidate × query point: best estimate, −Inf when none
	table []float32
	probe []int
	units []float32
	cs    []float32
	allow []uint64
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Search returns up to r items among allowed (nil: every item), best
// first by an estimate of the weighted MaxSim Σ_i v_i · max_j <q̂_i, x̂_j>
// (in "sum" units: a "mean" collection's score is this divided by the
// query's point count, which ranks the same), ties by internal ID.
//
// For each query point i with a weight v_i ≠ 0, the NProbe centroids
// nearest q̂_i are probed, and each posting x̂ in their lists estimates
// <q̂_i, x̂> as <q̂_i, c> + <q̂_i, r̂> (its centroid's score plus its decoded
// residual's, through a per-point lookup table). An item's estimate for
// point i is the best of its postings found, or, when none was, the score
// of the NProbe-th centroid (WARP's imputation: a point outside the probed
// lists is nearer another centroid, so its score is most likely below
// that). The estimates are summed with the signed weights, as the exact
// score sums the true maxima. Only items with at least one posting found
// are candidates.
//
// When every point of an item lies in a probed list of point i, its
// estimate for i is within MaxResidualError·|q̂_i| = MaxResidualError of
// the true maximum (each posting's is, by Cauchy–Schwarz), so the item's
// estimate is within Σ_i |v_i| · MaxResidualError of the exact sum.
func (x *Index) Search(q wpcsim.Cloud, r int, allowed *roaring.Bitmap, p Params) ([]Hit, error) {
	if q.Dim != x.d {
		return nil, fmt.Errorf("%w: query of dimension %d, index of %d", ErrInvalid, q.Dim, x.d)
	}
	if r <= 0 {
		return nil, nil
	}
	nprobe := x.nprobe
	if p.NProbe > 0 {
		nprobe = min(p.NProbe, x.k)
	}
	nq, d, k := q.Len(), x.d, x.k
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.units = slices.Grow(sc.units[:0], nq*d)[:nq*d]
	for i := 0; i < nq; i++ {
		normalize(sc.units[i*d:(i+1)*d], q.Point(i))
	}
	sc.cs = slices.Grow(sc.cs[:0], nq*k)[:nq*k]
	simd.Gram(sc.cs, sc.units, nq, x.cents, k, d)
	sc.allow = sc.allow[:0]
	if allowed != nil && !allowed.IsEmpty() {
		sc.allow = slices.Grow(sc.allow, int(allowed.Maximum()/64)+1)[:allowed.Maximum()/64+1]
		clear(sc.allow)
		allowed.Iterate(func(v uint32) bool {
			sc.allow[v/64] |= 1 << (v % 64)
			return true
		})
	} else if allowed != nil {
		return nil, nil
	}
	filtered := allowed != nil
	impute := make([]float32, nq)

	x.mu.RLock()
	defer x.mu.RUnlock()
	if n := len(x.iidOf); len(sc.pos) < n {
		old := len(sc.pos)
		sc.pos = slices.Grow(sc.pos, n-old)[:n]
		for i := old; i < n; i++ {
			sc.pos[i] = -1
		}
	}
	sc.cand, sc.best = sc.cand[:0], sc.best[:0]
	nb := x.qz.nbytes
	inf := float32(math.Inf(-1))
	for i := 0; i < nq; i++ {
		if q.Weights[i] == 0 {
			continue
		}
		row := sc.cs[i*k : (i+1)*k]
		sc.probe = topN(sc.probe[:0], row, nprobe)
		impute[i] = row[sc.probe[len(sc.probe)-1]]
		sc.table = x.qz.table(sc.table, sc.units[i*d:(i+1)*d])
		table := sc.table
		for _, c := range sc.probe {
			l := &x.lists[c]
			base := row[c]
			for t, s := range l.slots {
				if x.live[s/64]&(1<<(s%64)) == 0 {
					continue
				}
				if filtered {
					iid := x.iidOf[s]
					if int(iid/64) >= len(sc.allow) || sc.allow[iid/64]&(1<<(iid%64)) == 0 {
						continue
					}
				}
				e := base + dot(table, l.codes[t*nb:(t+1)*nb])
				ps := sc.pos[s]
				if ps < 0 {
					ps = int32(len(sc.cand))
					sc.pos[s] = ps
					sc.cand = append(sc.cand, s)
					for range nq {
						sc.best = append(sc.best, inf)
					}
				}
				if b := &sc.best[int(ps)*nq+i]; e > *b {
					*b = e
				}
			}
		}
	}
	hits := make([]Hit, len(sc.cand))
	for j, s := range sc.cand {
		sc.pos[s] = -1
		var est float32
		for i, b := range sc.best[j*nq : (j+1)*nq] {
			v := q.Weights[i]
			if v == 0 {
				continue
			}
			if b == inf {
				b = impute[i]
			}
			est += v * b
		}
		hits[j] = Hit{IID: x.iidOf[s], Estimate: est}
	}
	slices.SortFunc(hits, func(a, b Hit) int { return order.Compare(a.Estimate, a.IID, b.Estimate, b.IID) })
	if len(hits) > r {
		hits = hits[:r]
	}
	return hits, nil
}

// topN appends to dst the indexes of the n largest values of row, largest
// first (ties by index).
func topN(dst []int, row []float32, n int) []int {
	n = min(n, len(row))
	for j, v := range row {
		if len(dst) == n && v <= row[dst[n-1]] {
			continue
		}
		if len(dst) < n {
			dst = append(dst, j)
		} else {
			dst[n-1] = j
		}
		for t := len(dst) - 1; t > 0 && row[dst[t]] > row[dst[t-1]]; t-- {
			dst[t], dst[t-1] = dst[t-1], dst[t]
		}
	}
	return dst
}
