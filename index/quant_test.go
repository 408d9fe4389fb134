package index

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/wpcdb/wpcdb/internal/order"
)

// TestQuantizedDotBound: the code estimate of <q, v> is within the bound
// of quant.go of the float64 inner product, on random vectors of several
// dimensions and magnitudes, a zero vector and a one-hot vector.
func TestQuantizedDotBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 4))
	for _, dim := range []int{1, 3, 16, 64, 100, 1088} {
		for trial := 0; trial < 50; trial++ {
			q, v := make([]float32, dim), make([]float32, dim)
			scale := float32(math.Pow(10, float64(rng.IntN(7)-3)))
			for i := range q {
				q[i] = float32(rng.NormFloat64()) * scale
				v[i] = float32(rng.NormFloat64())
			}
			switch trial {
			case 0:
				clear(v)
			case 1:
				clear(v)
				v[rng.IntN(dim)] = -3
			}
			qc, vc := make([]int8, dim), make([]int8, dim)
			qs, vs := quantize(qc, q), quantize(vc, v)
			var want, q1, v1 float64
			for i := range q {
				want += float64(q[i]) * float64(v[i])
				q1 += math.Abs(float64(q[i]))
				v1 += math.Abs(float64(v[i]))
				// Each code is within half a step of its value.
				if e := math.Abs(float64(v[i]) - float64(vs)*float64(vc[i])); e > float64(vs)/2*(1+1e-5) {
					t.Fatalf("dim %d trial %d: v[%d] = %v, code %d × %v off by %v", dim, trial, i, v[i], vc[i], vs, e)
				}
			}
			bound := float64(qs)/2*v1 + float64(vs)/2*q1 + float64(dim)*float64(qs)*float64(vs)/4
			got := float64(quantDot(qc, qs, vc, vs))
			if e := math.Abs(got - want); e > bound*(1+1e-5)+1e-6*math.Abs(want) {
				t.Fatalf("dim %d trial %d: estimate %v, exact %v: error %v above the bound %v", dim, trial, got, want, e, bound)
			}
		}
	}
}

// TestQuantizedWalkExactScores: a walk by codes returns, for every metric,
// the float32 scores of the nodes it finds (the flat scan's for each ID),
// best first, and most of the flat scan's top 10.
func TestQuantizedWalkExactScores(t *testing.T) {
	ts := newTestSet(7, 1000, 64, 20, 20)
	for _, m := range []Metric{InnerProduct, Cosine, L2} {
		h, _ := NewHNSW(64, m, HNSWOptions{Seed: 7})
		f := NewFlat(64, m)
		for _, id := range ts.ids {
			h.Add(id, ts.vecs[id])
			f.Add(id, ts.vecs[id])
		}
		var found, total int
		for _, q := range ts.qs {
			truth, _ := f.Search(q, 10, nil, Params{})
			exact := map[uint32]float32{}
			all, _ := f.Search(q, len(ts.ids), nil, Params{})
			for _, r := range all {
				exact[r.ID] = r.Score
			}
			got, _ := h.Search(q, 10, nil, Params{Ef: 32})
			for i, r := range got {
				if d := math.Abs(float64(r.Score - exact[r.ID])); d > 1e-4*math.Max(1, math.Abs(float64(r.Score))) {
					t.Fatalf("%s: result %d (id %d) score %v, float scan %v", m, i, r.ID, r.Score, exact[r.ID])
				}
				if i > 0 && r.Score > got[i-1].Score {
					t.Fatalf("%s: results out of order at %d", m, i)
				}
			}
			total += len(truth)
			found += int(recallAt(got, truth) * float64(len(truth)))
		}
		if r := float64(found) / float64(total); r < 0.9 {
			t.Errorf("%s: recall@10 of the walk by codes %.3f, want ≥ 0.9", m, r)
		}
	}
}

// TestBetterCandIsOrder: the written-out betterCand ranks as
// internal/order does, ties, NaN scores and infinities included.
func TestBetterCandIsOrder(t *testing.T) {
	vals := []float32{float32(math.NaN()), float32(math.Inf(-1)), -1, 0, 0, 1, float32(math.Inf(1))}
	for _, a := range vals {
		for _, b := range vals {
			for _, ka := range []uint32{1, 2} {
				for _, kb := range []uint32{1, 2} {
					x, y := cand{score: a, key: ka}, cand{score: b, key: kb}
					if got, want := betterCand(x, y), order.Better(a, ka, b, kb); got != want {
						t.Fatalf("betterCand(%v, %v) = %v, order.Better %v", x, y, got, want)
					}
				}
			}
		}
	}
}

// TestRescoreSkipsOnlyLosers: a walk by codes rescores only the candidates
// whose error bound lets them reach the top k, and returns exactly what
// rescoring every candidate gives (IDs, float32 scores, order, ties with
// the k-th chosen by ID), for every metric, at a dimension with and one
// without the assembly (64, 100), with duplicate vectors (exact ties) and
// queries at data points; the bound must also skip some candidates, or
// the test would not test it (seed 21).
func TestRescoreSkipsOnlyLosers(t *testing.T) {
	for _, dim := range []int{64, 100} {
		ts := newTestSet(21, 1500, dim, 12, 40)
		for i, id := range ts.ids[:300] { // duplicates: exact ties
			ts.vecs[id] = ts.vecs[ts.ids[300+i%50]]
		}
		for i := 0; i < 10; i++ {
			ts.qs = append(ts.qs, ts.vecs[ts.ids[300+i]])
		}
		for _, m := range []Metric{InnerProduct, Cosine, L2} {
			h, _ := NewHNSW(dim, m, HNSWOptions{Seed: 21, M: 8, EfConstruction: 64})
			for _, id := range ts.ids {
				h.Add(id, ts.vecs[id])
			}
			counts := struct{ cands, rescored int }{}
			rescoreCounts = &counts
			for qi, q := range ts.qs {
				for _, k := range []int{1, 10} {
					for _, ef := range []int{10, 48} {
						got, _ := h.Search(q, k, nil, Params{Ef: ef})
						want := rescoreAll(h, q, k, ef)
						if !slices.Equal(got, want) {
							t.Fatalf("dim %d %s query %d k %d ef %d: got %v, rescoring all gives %v", dim, m, qi, k, ef, got, want)
						}
					}
				}
			}
			rescoreCounts = nil
			t.Logf("dim %d %s: rescored %d of %d candidates", dim, m, counts.rescored, counts.cands)
			if counts.rescored >= counts.cands {
				t.Errorf("dim %d %s: the bound skipped no candidate (%d of %d rescored)", dim, m, counts.rescored, counts.cands)
			}
		}
	}
}

// rescoreAll is HNSW.Search by codes with every candidate rescored.
func rescoreAll(h *HNSW, q []float32, k, ef int) []Result {
	sc := &hnswScratch{}
	pq := prepare(h.metric, q, nil)
	wq := query{v: pq, n2: dot(pq, pq), c: make([]int8, h.dim), quant: true}
	wq.cs = quantize(wq.c, pq)
	h.mu.RLock()
	defer h.mu.RUnlock()
	ep := cand{key: uint32(h.entry), score: h.score(wq, uint32(h.entry))}
	for l := h.maxLevel; l > 0; l-- {
		ep = h.greedy(sc, wq, ep, l)
	}
	h.searchLayer(sc, wq, []cand{ep}, max(ef, k), 0, true, nil)
	cands := slices.Clone(sc.cands)
	for i := range cands {
		cands[i].score = h.score(wq.exact(), cands[i].key)
	}
	slices.SortFunc(cands, compareCands)
	n := min(k, len(cands))
	end := n
	for end < len(cands) && cands[end].score == cands[n-1].score {
		end++
	}
	res := make([]Result, end)
	for i := range res {
		res[i] = Result{ID: h.ids[cands[i].key], Score: cands[i].score}
	}
	slices.SortFunc(res, compareResults)
	return res[:n:n]
}
