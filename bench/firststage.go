package bench

import (
	"fmt"
	"math"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FirstStageVectors are the vectors wpcdb's first-stage index holds for a
// workload's items and the vectors it searches with for its queries, so that
// single-vector peers (hnswlib, usearch) can be run on exactly the same
// first stage. Items and Queries are row-major, Dim floats per row; the
// inner product of a query row with an item row is what the index ranks by.
type FirstStageVectors struct {
	Dim     int
	Items   []float32 // N × Dim
	Queries []float32 // Q × Dim
}

// ComputeFirstStage builds the first-stage vectors of items and queries for
// a collection of configuration cfg (as Collection.Config returns it), the
// way package wpcdb builds them (firstStage in search.go):
//
//   - the map is the collection's: φ of a seeded wpcsim.FeatureMap (D =
//     cfg.Features.Dim, seed cfg.Features.Seed) for kernel sums, the
//     MUVERA-style wpcsim.FDE (item and query encodings differ) for maxsim;
//   - an item's vector is computed from the cloud as stored, i.e. after
//     cfg.Encoding's rounding (f16 for the paper workload); a query's from
//     the query as given;
//   - per score mode, with s(·) every block of φ in order and g(X,X) exact:
//     inner: item s(φX), query s(φQ); cosine: item s(φX)/sqrt(g(X,X)) (0
//     when g(X,X) ≤ 1e-6·m(X,X)), query s(φQ); mmd: item [s(φX), g(X,X)],
//     query [2s(φQ), -1].
//
// Collections with an imported feature sample are not supported: the bench
// never makes one.
func ComputeFirstStage(cfg wpcdb.CollectionConfig, items func(i int) wpcsim.Cloud, n int, queries []wpcsim.Cloud) (*FirstStageVectors, error) {
	cfg = cfg.WithDefaults()
	if cfg.Features.Imported {
		return nil, fmt.Errorf("bench: first-stage export of a collection with an imported feature sample is not supported")
	}
	var (
		mapItem, mapQuery func(wpcsim.Cloud, []float32) ([]float32, error)
		blocks            []wpcsim.FeatureBlock
		dim               int
	)
	if cfg.Similarity.Kernel.IsMaxSim() {
		f, err := wpcsim.NewFDE(cfg.Dim, cfg.Similarity.RawPoints, wpcsim.FDEOptions{Seed: cfg.Features.Seed})
		if err != nil {
			return nil, err
		}
		mapItem, mapQuery, dim = f.Map, f.MapQuery, f.Dim()
		blocks = []wpcsim.FeatureBlock{{Offset: 0, Len: dim}}
	} else {
		f, err := wpcsim.NewFeatureMap(cfg.Similarity, cfg.Dim, wpcsim.FeatureOptions{D: cfg.Features.Dim, Seed: cfg.Features.Seed})
		if err != nil {
			return nil, err
		}
		mapItem, mapQuery, dim = f.Map, f.Map, f.Dim()
		blocks = f.Blocks()
	}
	mode := cfg.Similarity.Score
	var sim *wpcsim.Similarity
	if mode != wpcsim.ScoreInner {
		var err error
		if sim, err = wpcsim.New(cfg.Similarity); err != nil {
			return nil, err
		}
	}
	selected := 0
	for _, b := range blocks {
		selected += b.Len
	}
	out := &FirstStageVectors{Dim: selected}
	if mode == wpcsim.ScoreMMD {
		out.Dim++
	}
	appendSelected := func(dst, phi []float32, scale float32) []float32 {
		for _, b := range blocks {
			for _, x := range phi[b.Offset : b.Offset+b.Len] {
				dst = append(dst, scale*x)
			}
		}
		return dst
	}
	out.Items = make([]float32, 0, n*out.Dim)
	phi := make([]float32, 0, dim)
	for i := 0; i < n; i++ {
		c, err := storage.Quantize(cfg.Encoding, items(i))
		if err != nil {
			return nil, fmt.Errorf("bench: item %d: %w", i, err)
		}
		if phi, err = mapItem(c, phi[:0]); err != nil {
			return nil, fmt.Errorf("bench: item %d: %w", i, err)
		}
		switch mode {
		case wpcsim.ScoreCosine, wpcsim.ScoreMMD:
			self, err := sim.Self(c)
			if err != nil {
				return nil, fmt.Errorf("bench: item %d: %w", i, err)
			}
			if mode == wpcsim.ScoreMMD {
				out.Items = append(appendSelected(out.Items, phi, 1), float32(self.G))
				continue
			}
			scale := float32(0)
			if self.G > 1e-6*self.Mass {
				scale = float32(1 / math.Sqrt(self.G))
			}
			out.Items = appendSelected(out.Items, phi, scale)
		default:
			out.Items = appendSelected(out.Items, phi, 1)
		}
	}
	out.Queries = make([]float32, 0, len(queries)*out.Dim)
	for j, q := range queries {
		var err error
		if phi, err = mapQuery(q, phi[:0]); err != nil {
			return nil, fmt.Errorf("bench: query %d: %w", j, err)
		}
		if mode == wpcsim.ScoreMMD {
			out.Queries = append(appendSelected(out.Queries, phi, 2), -1)
			continue
		}
		out.Queries = appendSelected(out.Queries, phi, 1)
	}
	return out, nil
}
