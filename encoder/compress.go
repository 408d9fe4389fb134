package encoder

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// CompressOptions configure Compress. The zero value is valid: points are
// compressed for a collection that L2-normalizes them, with mean
// normalization, k-means seed 0 and at most 25 iterations.
type CompressOptions struct {
	// RawPoints compresses for a collection that uses points as given
	// (wpcsim.Config.RawPoints); by default points are normalized first.
	RawPoints bool `json:"raw_points,omitempty"`
	// Sum preserves g under sum normalization (c = 1); by default under
	// mean normalization (c = 1/(N·M)), which rescales the weights by M'/M.
	Sum bool `json:"sum,omitempty"`
	// Seed seeds the k-means++ initialization.
	Seed uint64 `json:"seed,omitempty"`
	// Iters bounds the Lloyd iterations (default 25).
	Iters int `json:"iters,omitempty"`
}

// problem says what is wrong with o ("" when nothing), as one phrase of
// the options' problem list.
func (o CompressOptions) problem() string {
	if o.Iters < 0 {
		return fmt.Sprintf("k-means iterations %d is negative", o.Iters)
	}
	return ""
}

// Compress reduces c to at most m points by weighted k-means and returns
// the new cloud (c is not modified).
//
// Signed weights would cancel inside a cluster that mixes signs — a
// cluster of +5 and -5 would become a point of weight 0 that says nothing
// about where either was. So positive and negative points are clustered
// apart: the m clusters are shared between the two signs in proportion to
// their weight mass (at least one each when both are present and m ≥ 2),
// and within a sign every |w| is a positive k-means weight. Each cluster C
// becomes one point whose weight·point equals Σ_{j∈C} w_j p_j, with p_j the
// points as the similarity sees them (x̂_j, or x_j with RawPoints): the
// point is the weighted mean and, for normalized points, the weight is
// shrunk by the mean's length. So the weighted centroid — the whole linear
// kernel term of g — is preserved exactly (up to float32 rounding); the
// nonlinear terms (gaussian, imq) change, and MeasureCompression says by
// how much. Under mean normalization the weights are further scaled by
// M'/M so that c·Σ stays the same. With m = 1 the one point is the whole
// weighted sum, whatever the signs; it is an error if that sum is zero.
func Compress(c wpcsim.Cloud, m int, o CompressOptions) (wpcsim.Cloud, error) {
	if m < 1 {
		return wpcsim.Cloud{}, fmt.Errorf("encoder: compress to %d points: want at least 1", m)
	}
	d := c.Dim
	pts := make([]float64, len(c.Points))
	for i := 0; i < c.Len(); i++ {
		p := c.Points[i*d : (i+1)*d]
		scale := 1.0
		if !o.RawPoints {
			var n2 float64
			for _, v := range p {
				n2 += float64(v) * float64(v)
			}
			scale = 1 / max(math.Sqrt(n2), 1e-12)
		}
		for k, v := range p {
			pts[i*d+k] = float64(v) * scale
		}
	}
	var pos, neg []int
	var massPos, massNeg float64
	for i, w := range c.Weights {
		switch {
		case w > 0:
			pos, massPos = append(pos, i), massPos+float64(w)
		case w < 0:
			neg, massNeg = append(neg, i), massNeg-float64(w)
		}
	}
	out := wpcsim.Cloud{Dim: d}
	var groups [][]int // clusters, as point indices
	switch {
	case len(pos)+len(neg) <= m:
		// Nothing to merge: keep the non-zero-weight points as they are.
		for _, i := range slices.Sorted(slices.Values(append(append([]int(nil), pos...), neg...))) {
			out.Weights = append(out.Weights, c.Weights[i])
			out.Points = append(out.Points, c.Points[i*d:(i+1)*d]...)
		}
	case m == 1:
		groups = [][]int{append(append([]int(nil), pos...), neg...)}
	default:
		kp, kn := splitBudget(m, len(pos), len(neg), massPos, massNeg)
		rng := rand.New(rand.NewPCG(o.Seed, 0xc0e55))
		groups = append(kmeans(pts, d, pos, c.Weights, kp, o.iters(), rng), kmeans(pts, d, neg, c.Weights, kn, o.iters(), rng)...)
	}
	sum := make([]float64, d)
	for _, g := range groups {
		clear(sum)
		var wsum float64
		for _, j := range g {
			w := float64(c.Weights[j])
			wsum += w
			for k := 0; k < d; k++ {
				sum[k] += w * pts[j*d+k]
			}
		}
		var n2 float64
		for _, v := range sum {
			n2 += v * v
		}
		if n2 == 0 {
			continue // contributes nothing to any linear term, and has no direction
		}
		// weight·point = sum: raw points keep the weighted mean and the
		// cluster weight; normalized ones the direction and the length.
		var w float64
		point := make([]float32, d)
		if o.RawPoints && wsum != 0 {
			w = wsum
		} else {
			w = math.Sqrt(n2)
			if wsum < 0 {
				w = -w
			}
		}
		for k, v := range sum {
			point[k] = float32(v / w)
		}
		out.Weights = append(out.Weights, float32(w))
		out.Points = append(out.Points, point...)
	}
	if out.Len() == 0 {
		return wpcsim.Cloud{}, errors.New("encoder: compress: the weighted points sum to zero (weights cancel exactly): nothing is left to represent them")
	}
	if !o.Sum {
		scale := float32(float64(out.Len()) / float64(c.Len()))
		for i := range out.Weights {
			out.Weights[i] *= scale
		}
	}
	return out, nil
}

func (o CompressOptions) iters() int {
	if o.Iters == 0 {
		return 25
	}
	return o.Iters
}

// splitBudget shares m clusters between np positive and nn negative points
// in proportion to their mass, at least one each side that has points.
func splitBudget(m, np, nn int, massPos, massNeg float64) (int, int) {
	if nn == 0 {
		return min(m, np), 0
	}
	if np == 0 {
		return 0, min(m, nn)
	}
	kp := int(math.Round(float64(m) * massPos / (massPos + massNeg)))
	kp = max(1, min(kp, m-1))
	kn := m - kp
	// Hand clusters a side cannot use to the other.
	if kp > np {
		kn, kp = kn+kp-np, np
	}
	if kn > nn {
		kp, kn = min(np, kp+kn-nn), nn
	}
	return kp, kn
}

// kmeans clusters the points idx (rows of pts, weighted by |w|) into k
// groups: k-means++ seeding, then Lloyd iterations until no point moves.
func kmeans(pts []float64, d int, idx []int, w []float32, k, iters int, rng *rand.Rand) [][]int {
	if k <= 0 || len(idx) == 0 {
		return nil
	}
	if k >= len(idx) {
		out := make([][]int, len(idx))
		for i, j := range idx {
			out[i] = []int{j}
		}
		return out
	}
	dist2 := func(a []float64, j int) float64 {
		var s float64
		for t, v := range a {
			e := v - pts[j*d+t]
			s += e * e
		}
		return s
	}
	cent := make([]float64, 0, k*d)
	// k-means++: the first centre by weight, the next by weight·D².
	pick := func(score []float64) int {
		var total float64
		for _, s := range score {
			total += s
		}
		if total == 0 {
			return rng.IntN(len(score))
		}
		r := rng.Float64() * total
		for i, s := range score {
			r -= s
			if r < 0 {
				return i
			}
		}
		return len(score) - 1
	}
	score := make([]float64, len(idx))
	for i, j := range idx {
		score[i] = math.Abs(float64(w[j]))
	}
	first := idx[pick(score)]
	cent = append(cent, pts[first*d:(first+1)*d]...)
	best := make([]float64, len(idx))
	for i, j := range idx {
		best[i] = dist2(cent[:d], j)
	}
	for len(cent) < k*d {
		for i, j := range idx {
			score[i] = math.Abs(float64(w[j])) * best[i]
		}
		c := idx[pick(score)]
		cent = append(cent, pts[c*d:(c+1)*d]...)
		nc := cent[len(cent)-d:]
		for i, j := range idx {
			best[i] = min(best[i], dist2(nc, j))
		}
	}
	assign := make([]int, len(idx))
	for i := range assign {
		assign[i] = -1
	}
	mass := make([]float64, k)
	for it := 0; it < iters; it++ {
		moved := false
		for i, j := range idx {
			bc, bd := 0, math.Inf(1)
			for c := 0; c < k; c++ {
				if dd := dist2(cent[c*d:(c+1)*d], j); dd < bd {
					bc, bd = c, dd
				}
			}
			if assign[i] != bc {
				assign[i], moved = bc, true
			}
		}
		if !moved {
			break
		}
		clear(cent)
		clear(mass)
		for i, j := range idx {
			a, aw := assign[i], math.Abs(float64(w[j]))
			mass[a] += aw
			for t := 0; t < d; t++ {
				cent[a*d+t] += aw * pts[j*d+t]
			}
		}
		for c := 0; c < k; c++ {
			if mass[c] == 0 {
				// An emptied cluster restarts at the point worst served.
				far, fd := idx[0], -1.0
				for i, j := range idx {
					if dd := dist2(cent[assign[i]*d:(assign[i]+1)*d], j); dd > fd {
						far, fd = j, dd
					}
				}
				copy(cent[c*d:(c+1)*d], pts[far*d:(far+1)*d])
				continue
			}
			for t := 0; t < d; t++ {
				cent[c*d+t] /= mass[c]
			}
		}
	}
	groups := make([][]int, k)
	for i, j := range idx {
		groups[assign[i]] = append(groups[assign[i]], j)
	}
	out := groups[:0]
	for _, g := range groups {
		if len(g) > 0 {
			out = append(out, g)
		}
	}
	return out
}

// CompressionReport is how much Compress changed similarities on a sample.
type CompressionReport struct {
	Clouds int `json:"clouds"`
	Pairs  int `json:"pairs"`
	// PointsBefore and PointsAfter are the mean points per cloud.
	PointsBefore float64 `json:"points_before"`
	PointsAfter  float64 `json:"points_after"`
	// RelErr is mean |g' - g| over pairs divided by the RMS of g; MaxRelErr
	// the largest |g' - g| / RMS(g). g is the configured score.
	RelErr    float64 `json:"rel_err"`
	MaxRelErr float64 `json:"max_rel_err"`
	// Top10 is the mean overlap of each cloud's 10 nearest others under the
	// compressed clouds with those under the originals (1: same sets).
	Top10 float64 `json:"top10_overlap"`
}

// MeasureCompression scores every pair of orig (at most 300 clouds are
// used) and of comp (their compressed forms) under sim and compares.
func MeasureCompression(sim *wpcsim.Similarity, orig, comp []wpcsim.Cloud) (CompressionReport, error) {
	n := min(len(orig), len(comp), 300)
	rep := CompressionReport{Clouds: n}
	if n < 2 {
		return rep, errors.New("encoder: measuring compression needs at least 2 clouds")
	}
	lower := sim.Config().Score.LowerIsCloser()
	var sumSq, sumAbs float64
	var errs []float64
	var overlap float64
	for i := 0; i < n; i++ {
		rep.PointsBefore += float64(orig[i].Len()) / float64(n)
		rep.PointsAfter += float64(comp[i].Len()) / float64(n)
		so, err := sim.NewScorer(orig[i])
		if err != nil {
			return rep, fmt.Errorf("cloud %d: %w", i, err)
		}
		sc, err := sim.NewScorer(comp[i])
		if err != nil {
			return rep, fmt.Errorf("compressed cloud %d: %w", i, err)
		}
		var others, othersC []wpcsim.Cloud
		for j := 0; j < n; j++ {
			if j != i {
				others, othersC = append(others, orig[j]), append(othersC, comp[j])
			}
		}
		g, err := so.ScoreBatch(others, nil)
		if err != nil {
			return rep, err
		}
		gc, err := sc.ScoreBatch(othersC, nil)
		if err != nil {
			return rep, err
		}
		for j := range g {
			if j+1 > i { // each unordered pair once for the error
				sumSq += g[j] * g[j]
				e := math.Abs(gc[j] - g[j])
				sumAbs += e
				errs = append(errs, e)
				rep.Pairs++
			}
		}
		overlap += topOverlap(g, gc, 10, lower)
	}
	rms := math.Sqrt(sumSq / float64(rep.Pairs))
	if rms > 0 {
		rep.RelErr = sumAbs / float64(rep.Pairs) / rms
		rep.MaxRelErr = slices.Max(errs) / rms
	}
	rep.Top10 = overlap / float64(n)
	return rep, nil
}

// topOverlap is |top-k(a) ∩ top-k(b)| / k.
func topOverlap(a, b []float64, k int, lower bool) float64 {
	k = min(k, len(a))
	top := func(s []float64) map[int]bool {
		ord := make([]int, len(s))
		for i := range ord {
			ord[i] = i
		}
		slices.SortStableFunc(ord, func(x, y int) int {
			if lower {
				x, y = y, x
			}
			switch {
			case s[x] > s[y]:
				return -1
			case s[x] < s[y]:
				return 1
			}
			return 0
		})
		m := map[int]bool{}
		for _, i := range ord[:k] {
			m[i] = true
		}
		return m
	}
	ta, tb := top(a), top(b)
	var n int
	for i := range ta {
		if tb[i] {
			n++
		}
	}
	return float64(n) / float64(k)
}
