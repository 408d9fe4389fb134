package wpcdb

import (
	"fmt"
	"sync"
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
		return nil, err
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
	m, err := firststage.NewMap(sim, feat, firststage.Representation{})
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
		return nil, err
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
//
// The stage is loaded (or built) when first needed, by a search or a
// calibration, so that commands that only read items or describe the
// collection never pay for it; until then writes reach it through the
// change log, which the load replays.
type firstStage struct {
	cur atomic.Pointer[firststage.Stage] // nil until loaded
	// load loads or builds the stage and stores it in cur itself, while it
	// still holds the collection's indexMu (loadWith stores it again).
	load  func() (*firststage.Stage, error)
	loads atomic.Int64 // times the stage was loaded or built (tests)

	// saved describes the saved index while the loaded stage still equals
	// it (nothing written, the builder idle, the same representation):
	// Close then skips a save that would rewrite the same hundreds of
	// megabytes. Guarded by the collection's indexMu.
	saved *savedState

	// gens is held shared by a search from taking the stage to the end of
	// its candidate generation, and exclusively while a point index's
	// postings generations are deleted (Collection.dropPointGens), so a
	// search on a stage that a retrain or a recalibration just replaced
	// never reads deleted postings (it would find fewer candidates). A
	// search takes no other lock while it holds gens.
	gens sync.RWMutex
	// searchHook, for tests, runs in a search holding gens shared, after
	// it took the stage.
	searchHook func()

	mu      sync.Mutex  // serializes loading and stopping
	stopErr error       // set by stop: no load or search after it
	stopped atomic.Bool // stopErr is set
}

// savedState is what a saved index reflected: the write epoch and the
// index's counts.
type savedState struct {
	epoch             uint64
	inGraph, buffered int
}

func stateOf(st *firststage.Stage, epoch uint64) *savedState {
	g, b := st.Index.Status()
	return &savedState{epoch: epoch, inGraph: g, buffered: b}
}

// stage returns the loaded stage, nil when it is not loaded.
func (f *firstStage) stage() *firststage.Stage { return f.cur.Load() }

// ensure returns the stage, loading it on first use. Concurrent callers
// wait for one load; a failed load is retried by the next caller. After
// Close or DropCollection it returns their error.
func (f *firstStage) ensure() (*firststage.Stage, error) {
	if st := f.stage(); st != nil && !f.stopped.Load() {
		return st, nil
	}
	if _, err := f.loadWith(f.load); err != nil {
		return nil, err
	}
	return f.stage(), nil
}

// loadWith loads the stage with load when it is not loaded (nor stopped),
// and reports whether it did.
func (f *firstStage) loadWith(load func() (*firststage.Stage, error)) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopErr != nil {
		return false, f.stopErr
	}
	if f.stage() != nil {
		return false, nil
	}
	st, err := load()
	if err != nil {
		return false, err
	}
	f.cur.Store(st)
	f.loads.Add(1)
	return true, nil
}

// err is the error of a stopped stage (closed or dropped), nil otherwise.
func (f *firstStage) err() error {
	if !f.stopped.Load() {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopErr
}

// remove deletes iid from the index when it is loaded (else the change log
// carries the delete).
func (f *firstStage) remove(iid uint32) {
	if s := f.stage(); s != nil {
		s.Index.Delete(iid)
		if s.Points != nil {
			s.Points.Removed(iid) // storage deleted its postings with the item
		}
	}
}

// Candidates is the current stage's (query.FirstStage), loading it on
// the first search.
func (f *firstStage) Candidates(q wpcsim.Cloud, qself wpcsim.Self, k, r int, allowed *roaring.Bitmap, filtered bool, p index.Params) (firststage.Candidates, error) {
	if _, err := f.ensure(); err != nil { // may load: before gens
		return firststage.Candidates{}, err
	}
	f.gens.RLock()
	defer f.gens.RUnlock()
	st := f.stage()
	if f.searchHook != nil {
		f.searchHook()
	}
	return st.Candidates(q, qself, k, r, allowed, filtered, p)
}
