package wpcsim_test

import (
	"errors"
	"reflect"
	"sort"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestFDERanksLikeMaxSim: the encoding's inner products rank items close to
// exact MaxSim on clustered, learned-looking clouds (fixed seed): most of
// the exact top 10 is in the encoding's top 100 of 1,500.
func TestFDERanksLikeMaxSim(t *testing.T) {
	const seed, n, d = 17, 1500, 32
	t.Logf("seed %d", seed)
	rng := wpctest.NewRand(seed)
	f, err := wpcsim.NewFDE(d, false, wpcsim.FDEOptions{})
	if err != nil || f.Dim() != 8*4*32 {
		t.Fatalf("NewFDE: %v, dim %d", err, f.Dim())
	}
	centres := make([]wpctest.Cloud, 20)
	for i := range centres {
		centres[i] = wpctest.RandomCloud(rng, 16, d, wpctest.Shape{Clusters: 3})
	}
	// Items and queries are noisy subsets of a few shared "topics".
	draw := func(m int) wpcsim.Cloud {
		c := centres[rng.IntN(len(centres))]
		out := wpcsim.Cloud{Dim: d}
		for i := 0; i < m; i++ {
			j := rng.IntN(len(c.Weights))
			out.Weights = append(out.Weights, c.Weights[j])
			for k := 0; k < d; k++ {
				out.Points = append(out.Points, c.Points[j*d+k]+float32(0.3*rng.NormFloat64()))
			}
		}
		return out
	}
	items := make([]wpcsim.Cloud, n)
	enc := make([][]float32, n)
	for i := range items {
		items[i] = draw(4 + rng.IntN(12))
		enc[i], _ = f.Map(items[i], nil)
	}
	k, _ := wpcsim.ParseKernel("maxsim")
	sim, _ := wpcsim.New(wpcsim.Config{Kernel: k})
	var hits, total int
	for j := 0; j < 20; j++ {
		q := draw(6)
		sc, _ := sim.NewScorer(q)
		exact, _ := sc.ScoreBatch(items, nil)
		qe, _ := f.MapQuery(q, nil)
		approx := make([]float64, n)
		for i := range enc {
			for x := range qe {
				approx[i] += float64(qe[x]) * float64(enc[i][x])
			}
		}
		top := func(v []float64, k int) map[int]bool {
			idx := make([]int, n)
			for i := range idx {
				idx[i] = i
			}
			sort.Slice(idx, func(a, b int) bool { return v[idx[a]] > v[idx[b]] })
			out := map[int]bool{}
			for _, i := range idx[:k] {
				out[i] = true
			}
			return out
		}
		cand := top(approx, 100)
		for i := range top(exact, 10) {
			if cand[i] {
				hits++
			}
			total++
		}
	}
	if r := float64(hits) / float64(total); r < 0.85 {
		t.Errorf("seed %d: exact top 10 in the encoding's top 100: %.3f, want ≥ 0.85", seed, r)
	} else {
		t.Logf("recall@10 in top 100: %.3f", r)
	}
}

func TestFDEDeterministicAndValidated(t *testing.T) {
	a, _ := wpcsim.NewFDE(8, false, wpcsim.FDEOptions{Seed: 3})
	b, _ := wpcsim.NewFDE(8, false, wpcsim.FDEOptions{Seed: 3})
	c := wpcsim.Cloud{Dim: 8, Weights: []float32{1, -2}, Points: []float32{1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1}}
	x, _ := a.Map(c, nil)
	y, _ := b.Map(c, nil)
	if !reflect.DeepEqual(x, y) || len(x) != a.Dim() {
		t.Error("same seed must give the same encoding")
	}
	bad := c
	bad.Dim = 4
	if _, err := a.Map(bad, nil); !errors.Is(err, wpcsim.ErrInvalidCloud) {
		t.Errorf("wrong dimension: %v", err)
	}
	if _, err := wpcsim.NewFDE(8, false, wpcsim.FDEOptions{Bits: 20}); err == nil {
		t.Error("oversized FDE accepted")
	}
}
