package wpcdb

import (
	"fmt"
	"sync/atomic"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FirstStageMap maps clouds to first-stage vectors with every block of φ
// (firststage.Phi), as a collection does before it calibrates: benchmarks
// use it to give single-vector peers the vectors a user would build from
// wpcdb's φ. A collection's own, calibrated map is in its Describe output.
// It is safe for concurrent use.
type FirstStageMap struct {
	m    *firststage.Map
	cfg  CollectionConfig
	sim  *wpcsim.Similarity
	feat featurizer
}

// NewFirstStageMap returns the φ first-stage map of a collection created
// with cfg (and no imported feature sample). It errs when cfg is invalid.
func NewFirstStageMap(cfg CollectionConfig) (*FirstStageMap, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if cfg.Features.Imported {
		return nil, fmt.Errorf("%w: the first-stage map of an imported feature sample comes from its collection", ErrInvalidArgument)
	}
	sim, err := wpcsim.New(cfg.Similarity)
	if err != nil {
		return nil, err
	}
	var feat featurizer
	if cfg.Similarity.Kernel.IsMaxSim() {
		feat, err = wpcsim.NewFDE(cfg.Dim, cfg.Similarity.RawPoints, wpcsim.FDEOptions{Seed: cfg.Features.Seed})
	} else {
		feat, err = wpcsim.NewFeatureMap(cfg.Similarity, cfg.Dim, wpcsim.FeatureOptions{D: cfg.Features.Dim, Seed: cfg.Features.Seed})
	}
	if err != nil {
		return nil, err
	}
	m, err := firststage.NewMap(sim, cfg.Dim, feat, firststage.Representation{})
	if err != nil {
		return nil, err
	}
	return &FirstStageMap{m: m, cfg: cfg, sim: sim, feat: feat}, nil
}

// Dim is the vectors' dimension.
func (m *FirstStageMap) Dim() int { return m.m.Dim() }

// Metric is how the index compares a query vector with an item vector:
// "ip" (larger inner product is closer) or "l2" (smaller squared distance).
func (m *FirstStageMap) Metric() string { return m.m.Metric().String() }

// Item returns an item's vector, computed as Upsert computes it: from the
// cloud as stored (after the collection's point encoding).
func (m *FirstStageMap) Item(x wpcsim.Cloud) ([]float32, error) {
	_, self, phi, err := storedCloud(m.cfg, m.sim, m.feat, x)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return m.m.AppendItem(nil, self, phi), nil
}

// Query returns the vector a search probes the index with.
func (m *FirstStageMap) Query(q wpcsim.Cloud) ([]float32, error) {
	return m.m.AppendQuery(nil, q)
}

// firstStage holds a collection's current first stage (map and index). A
// recalibration swaps it whole while holding the collection's indexMu
// exclusively, so no write is between its commit and an index that misses
// it.
type firstStage struct {
	cur atomic.Pointer[firststage.Stage]
}

func (f *firstStage) stage() *firststage.Stage { return f.cur.Load() }

func (f *firstStage) remove(iid uint32) { f.stage().Index.Delete(iid) }

func (f *firstStage) add(iid uint32, self wpcsim.Self, phi []float32) error {
	s := f.stage()
	return s.Index.Add(iid, s.Map.AppendItem(nil, self, phi))
}

// Candidates is the current stage's (query.FirstStage).
func (f *firstStage) Candidates(q wpcsim.Cloud, qself wpcsim.Self, k, r int, allowed *roaring.Bitmap, filtered bool, p index.Params) (firststage.Candidates, error) {
	return f.stage().Candidates(q, qself, k, r, allowed, filtered, p)
}
