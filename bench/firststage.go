package bench

import (
	"fmt"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FirstStageVectors are the vectors wpcdb's first-stage index holds for a
// workload's items and the vectors it searches with for its queries, so that
// single-vector peers (hnswlib, usearch) can be run on exactly the same
// first stage. Items and Queries are row-major, Dim floats per row, compared
// by Metric: "ip" (larger inner product is closer) or "l2" (smaller squared
// distance).
type FirstStageVectors struct {
	Dim     int
	Metric  string
	Items   []float32 // N × Dim
	Queries []float32 // Q × Dim
}

// ComputeFirstStage builds the first-stage vectors of n items and the
// queries for a collection of configuration cfg, with the collection's own
// map (wpcdb.FirstStageMap): items as stored (after cfg.Encoding's
// rounding), queries as given.
func ComputeFirstStage(cfg wpcdb.CollectionConfig, items func(i int) (wpcsim.Cloud, error), n int, queries []wpcsim.Cloud) (*FirstStageVectors, error) {
	m, err := wpcdb.NewFirstStageMap(cfg)
	if err != nil {
		return nil, err
	}
	out := &FirstStageVectors{Dim: m.Dim(), Metric: m.Metric(), Items: make([]float32, 0, n*m.Dim()), Queries: make([]float32, 0, len(queries)*m.Dim())}
	for i := 0; i < n; i++ {
		c, err := items(i)
		if err != nil {
			return nil, err
		}
		v, err := m.Item(c)
		if err != nil {
			return nil, fmt.Errorf("bench: item %d: %w", i, err)
		}
		out.Items = append(out.Items, v...)
	}
	for j, q := range queries {
		v, err := m.Query(q)
		if err != nil {
			return nil, fmt.Errorf("bench: query %d: %w", j, err)
		}
		out.Queries = append(out.Queries, v...)
	}
	return out, nil
}
