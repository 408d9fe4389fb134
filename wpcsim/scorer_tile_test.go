package wpcsim

import (
	"math"
	"runtime"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
)

// TestScoreTiled: scoring in tiles of a few query rows gives the scores of
// one whole Gram block, for every kernel kind, score mode and raw points
// (the float64 Gram), and for self-similarity.
func TestScoreTiled(t *testing.T) {
	rng := wpctest.NewRand(14)
	specs := []string{"linear", "0.667*linear+0.333*gaussian(0.5)", "imq(0.7)+gaussian(2)", "maxsim"}
	for _, spec := range specs {
		k, err := ParseKernel(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, mode := range []ScoreMode{ScoreInner, ScoreCosine, ScoreMMD} {
			for _, raw := range []bool{false, true} {
				if k.IsMaxSim() && mode != ScoreInner {
					continue
				}
				sim, err := New(Config{Kernel: k, Score: mode, RawPoints: raw})
				if err != nil {
					t.Fatal(err)
				}
				c := func(m int) Cloud {
					w := wpctest.RandomCloud(rng, m, 6, wpctest.Shape{})
					return Cloud{Dim: w.Dim, Weights: w.Weights, Points: w.Points}
				}
				q, items := c(23), []Cloud{c(17), c(1), c(40)}
				score := func() []float64 {
					sc, err := sim.NewScorer(q)
					if err != nil {
						t.Fatal(err)
					}
					out, err := sc.ScoreBatch(items, nil)
					if err != nil {
						t.Fatal(err)
					}
					self, err := sim.Self(items[2])
					if err != nil {
						t.Fatal(err)
					}
					return append(out, self.G, self.Mass)
				}
				whole := score()
				saved := gramTileFloats
				gramTileFloats = 7 // 1 row per tile against 17 and 40 points, 7 against 1
				tiled := score()
				gramTileFloats = saved
				for i := range whole {
					if d := math.Abs(whole[i] - tiled[i]); d > 1e-9*max(1, math.Abs(whole[i])) {
						t.Errorf("%s %s raw=%v: value %d: whole %v, tiled %v", spec, mode, raw, i, whole[i], tiled[i])
					}
				}
			}
		}
	}
}

// TestTinyKernelParamsFinite: at the smallest σ and c allowed, an item
// identical to the query scores finite (1 for a single-point gaussian),
// under every score mode.
func TestTinyKernelParamsFinite(t *testing.T) {
	q := Cloud{Dim: 3, Weights: []float32{1, -2}, Points: []float32{1, 2, 3, -1, 0.5, 2}}
	for _, spec := range []string{"gaussian(0.001)", "imq(0.001)", "0.5*linear+0.5*gaussian(0.001)"} {
		for _, mode := range []ScoreMode{ScoreInner, ScoreCosine, ScoreMMD} {
			k, err := ParseKernel(spec)
			if err != nil {
				t.Fatal(err)
			}
			sim, err := New(Config{Kernel: k, Score: mode})
			if err != nil {
				t.Fatal(err)
			}
			sc, err := sim.NewScorer(q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := sc.Score(q)
			if err != nil || math.IsNaN(got) || math.IsInf(got, 0) {
				t.Errorf("%s %s: identical item scores %v, %v", spec, mode, got, err)
			}
		}
	}
}

// TestScoreMemoryBounded: scoring two clouds of 4,000 points allocates a
// few Gram tiles, not the 16M-entry query×item matrix (64 MB of float32,
// 128 MB of float64 for raw points): two 100k-point clouds in wpcdb sim
// used to run out of memory.
func TestScoreMemoryBounded(t *testing.T) {
	rng := wpctest.NewRand(1416)
	c := func(m int) Cloud {
		w := wpctest.RandomCloud(rng, m, 4, wpctest.Shape{})
		return Cloud{Dim: w.Dim, Weights: w.Weights, Points: w.Points}
	}
	q, x := c(4000), c(4000)
	for _, raw := range []bool{false, true} {
		sim, err := New(Config{Kernel: DefaultKernel(), RawPoints: raw})
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sc, err := sim.NewScorer(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Score(x); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 32<<20 {
			t.Errorf("raw=%v: scoring 4000×4000 points allocated %d MiB, want a few 12 MiB tiles at most", raw, got>>20)
		}
	}
}
