package wpcdb

import (
	"fmt"
	"math"

	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FirstStageMap maps clouds to a collection's first-stage vectors: one per
// item as the index holds it, one per query as a search probes the index
// with. They are made from φ's blocks s(·) (every block: the exact linear
// block and each nonlinear term's random features) and the exact g(X,X),
// with a metric per score mode:
//
//	inner:  item s(φX),            query s(φQ),      inner product  ≈ g
//	cosine: item s(φX)/sqrt(gXX),  query s(φQ),      inner product  ∝ cosine
//	mmd:    item [s(φX), e],       query [s(φQ), 0], L2, with e² = max(0, gXX − |s(φX)|²):
//	        |q − v|² = |φQ|² − 2<φQ,φX> + max(gXX, |φX|²) ≈ mmd²
//
// The mmd form keeps the exact self term where it matters and gives a graph
// a true metric to link items by (an inner product over [φX, gXX] would
// link items by gXX·gYY). A maxsim collection uses its MUVERA-style
// fixed-dimensional encoding (wpcsim.FDE) in place of φ, inner product.
//
// Every block of φ is used. An earlier choice, the exact linear block alone
// when the kernel has one, looked as good on synthetic clouds (it ranks
// signed-weight clouds by g with Spearman ρ 0.97 against 0.95 for linear
// plus D = 1024 gaussian features) but failed on real ones: on Fashion-MNIST
// patch clouds (`wpcdb demo`) its recall@10 at depth 100 was 0.44 against
// 1.00 with every block.
//
// Benchmarks use it to give single-vector peers exactly wpcdb's first
// stage. It is safe for concurrent use.
type FirstStageMap struct {
	cfg    CollectionConfig
	sim    *wpcsim.Similarity
	feat   featurizer
	fde    *wpcsim.FDE // maxsim
	blocks []wpcsim.FeatureBlock
	mode   wpcsim.ScoreMode
	dim    int
	metric index.Metric
}

// NewFirstStageMap returns the first-stage map of a collection created with
// cfg (and no imported feature sample; use Collection.FirstStageMap for
// those). It errs when cfg is invalid.
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
	return newFirstStageMap(cfg, sim, feat), nil
}

// FirstStageMap returns the collection's first-stage map; nil when it has
// none.
func (c *Collection) FirstStageMap() *FirstStageMap {
	if c.first == nil {
		return nil
	}
	return c.first.m
}

// newFirstStageMap returns nil for a featurizer without a first stage.
func newFirstStageMap(cfg CollectionConfig, sim *wpcsim.Similarity, feat featurizer) *FirstStageMap {
	m := &FirstStageMap{cfg: cfg, sim: sim, feat: feat, mode: cfg.Similarity.Score, metric: index.InnerProduct}
	switch f := feat.(type) {
	case *wpcsim.FDE:
		m.fde = f
		m.blocks = []wpcsim.FeatureBlock{{Offset: 0, Len: f.Dim()}}
		m.dim = f.Dim()
	case *wpcsim.FeatureMap:
		m.blocks = f.Blocks()
		m.dim = f.Dim()
	default:
		return nil
	}
	if m.mode == wpcsim.ScoreMMD {
		m.dim++
		m.metric = index.L2
	}
	return m
}

// Dim is the vectors' dimension.
func (m *FirstStageMap) Dim() int { return m.dim }

// Metric is how the index compares a query vector with an item vector:
// "ip" (larger inner product is closer) or "l2" (smaller squared distance).
func (m *FirstStageMap) Metric() string { return m.metric.String() }

// Item returns an item's vector, computed as Upsert computes it: from the
// cloud as stored (after the collection's point encoding).
func (m *FirstStageMap) Item(x wpcsim.Cloud) ([]float32, error) {
	_, self, phi, err := storedCloud(m.cfg, m.sim, m.feat, x)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return m.itemVector(self, phi), nil
}

// Query returns the vector a search probes the index with.
func (m *FirstStageMap) Query(q wpcsim.Cloud) ([]float32, error) {
	mapQuery := m.feat.Map
	if m.fde != nil {
		mapQuery = m.fde.MapQuery
	}
	phi, err := mapQuery(q, nil)
	if err != nil {
		return nil, err
	}
	v := m.selected(phi, 1, make([]float32, 0, m.dim))
	if m.mode == wpcsim.ScoreMMD {
		v = append(v, 0)
	}
	return v, nil
}

func (m *FirstStageMap) selected(phi []float32, scale float32, dst []float32) []float32 {
	for _, b := range m.blocks {
		for _, x := range phi[b.Offset : b.Offset+b.Len] {
			dst = append(dst, scale*x)
		}
	}
	return dst
}

// itemVector builds an item's vector from its stored φ and g(X,X).
func (m *FirstStageMap) itemVector(self wpcsim.Self, phi []float32) []float32 {
	v := make([]float32, 0, m.dim)
	switch m.mode {
	case wpcsim.ScoreCosine:
		scale := float32(0)
		if self.G > 1e-6*self.Mass {
			scale = float32(1 / math.Sqrt(self.G))
		}
		return m.selected(phi, scale, v)
	case wpcsim.ScoreMMD:
		v = m.selected(phi, 1, v)
		var n2 float64
		for _, x := range v {
			n2 += float64(x) * float64(x)
		}
		return append(v, float32(math.Sqrt(max(0, self.G-n2))))
	}
	return m.selected(phi, 1, v)
}
