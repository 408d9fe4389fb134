package simd

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestScorePanel compares every path with a float64 sum over dimensions
// 0..64 and odd tails, misaligned windows and guard bands around the
// query, the panel and dst.
func TestScorePanel(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		w := PanelWidth()
		for _, d := range sizes() {
			seed := uint64(d)
			rng := rand.New(rand.NewPCG(seed, 31))
			q, qbuf := guarded(d, d%16)
			panel, pbuf := guarded(w*d, (d*3+1)%16)
			dst, dbuf := guarded(w, (d*5+2)%16)
			fill(rng, q, -1, 1)
			fill(rng, panel, -1, 1)
			ScorePanel(dst, q, panel)
			checkGuards(t, qbuf, d%16, d, "ScorePanel q")
			checkGuards(t, pbuf, (d*3+1)%16, w*d, "ScorePanel panel")
			checkGuards(t, dbuf, (d*5+2)%16, w, "ScorePanel dst")
			for c := 0; c < w; c++ {
				var want, mass float64
				for k := 0; k < d; k++ {
					p := float64(q[k]) * float64(panel[k*w+c])
					want += p
					mass += math.Abs(p)
				}
				if e := math.Abs(float64(dst[c]) - want); e > 1e-5*mass+1e-30 {
					t.Fatalf("width %d d=%d seed %d: vector %d = %v, want %v (err %.3g)", w, d, seed, c, dst[c], want, e)
				}
			}
		}
	})
}

// TestScorePanelGenericAnyWidth: the pure-Go twin serves a panel of a
// width other than the active path's (a layout made under another path).
func TestScorePanelGenericAnyWidth(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	const w, d = 5, 9
	q, panel, dst := make([]float32, d), make([]float32, w*d), make([]float32, w)
	fill(rng, q, -1, 1)
	fill(rng, panel, -1, 1)
	ScorePanel(dst, q, panel) // w ≠ PanelWidth(): the generic loop
	for c := 0; c < w; c++ {
		var want float64
		for k := 0; k < d; k++ {
			want += float64(q[k]) * float64(panel[k*w+c])
		}
		if math.Abs(float64(dst[c])-want) > 1e-5 {
			t.Fatalf("vector %d = %v, want %v", c, dst[c], want)
		}
	}
}
