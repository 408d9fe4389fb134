package wpcdb

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// SearchOptions tune a search. K is required.
type SearchOptions struct {
	K int
	// Filter restricts the search to items matching a filter expression,
	// e.g. `color = "red" AND year >= 2020` (see package query for the
	// language). The filter is applied inside the first stage, so a strict
	// one still finds K items when K pass it.
	Filter string
	// Exact scans every item passing the filter with the exact kernel
	// instead of using the first stage: slow, and the reference answer.
	Exact bool
	// Candidates is the first-stage depth R (0: query.DefaultCandidates(K)).
	Candidates int
	// Ef is the first-stage index's beam width (0: its default).
	Ef int
}

// Hit is a search result: the item's ID and its exact score. For mmd
// collections Distance is the MMD and Score is -Distance (higher is
// always closer).
type Hit = query.Hit

// SearchStats say how a search ran (plan, candidates, timings).
type SearchStats = query.Stats

// SearchResult holds the hits, best first (ties by ID ascending).
type SearchResult struct {
	Hits  []Hit
	Stats SearchStats
}

// Search returns the K items most similar to the query by the collection's
// exact similarity, among a first stage's candidates (see SearchOptions).
// Every reported score comes from the exact kernel.
func (c *Collection) Search(ctx context.Context, q wpcsim.Cloud, opts SearchOptions) (SearchResult, error) {
	req := query.Request{Query: q, K: opts.K, Exact: opts.Exact, Candidates: opts.Candidates, Ef: opts.Ef}
	if opts.Filter != "" {
		expr, err := query.Parse(opts.Filter)
		if err != nil {
			return SearchResult{}, fmt.Errorf("%w: filter: %w", ErrInvalidArgument, err)
		}
		req.Filter = query.Compile(expr, c.coll)
	}
	res, err := c.engine.Search(ctx, req)
	if err != nil {
		return SearchResult{}, mapQueryErr(err)
	}
	return SearchResult{Hits: res.Hits, Stats: res.Stats}, nil
}

// Rerank scores the given items exactly against the query and returns them
// best first: wpcdb as the exact reranker of another system's candidates.
// Unknown IDs are an ErrNotFound error naming every one of them.
func (c *Collection) Rerank(ctx context.Context, q wpcsim.Cloud, ids []string) (SearchResult, error) {
	res, err := c.engine.Rerank(ctx, q, ids)
	if err != nil {
		return SearchResult{}, mapQueryErr(err)
	}
	return SearchResult{Hits: res.Hits, Stats: res.Stats}, nil
}

func mapQueryErr(err error) error {
	if errors.Is(err, query.ErrInvalidRequest) {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return err
}

// firstStage maps clouds to the first-stage index's vectors, made from φ's
// selected blocks s(·) and the exact g(X,X), with a metric per score mode:
//
//	inner:  item s(φX),              query s(φQ), inner product  ≈ g
//	cosine: item s(φX)/sqrt(gXX),    query s(φQ), inner product  ∝ cosine
//	mmd:    item [s(φX), e],         query [s(φQ), 0], L2, with e² = max(0, gXX - |s(φX)|²):
//	        |q - v|² = |φQ|² - 2<φQ,φX> + max(gXX, |φX|²) ≈ mmd² + const
//
// The mmd form keeps the exact self term where it matters and gives the
// graph a true metric to link items by (an inner product over [φX, gXX]
// would link items by gXX·gYY).
//
// Every block of φ is used. An earlier choice, the exact linear block alone
// when the kernel has one, looked as good on synthetic clouds (it ranks
// signed-weight clouds by g with Spearman ρ 0.97 against 0.95 for linear
// plus D = 1024 gaussian features) but failed on real ones: on Fashion-MNIST
// patch clouds (`wpcdb demo`) its recall@10 at depth 100 was 0.44 against
// 1.00 with every block. A maxsim collection uses its fixed-dimensional
// encoding (wpcsim.FDE) in place of φ.
type firstStage struct {
	blocks []wpcsim.FeatureBlock
	mode   wpcsim.ScoreMode
	dim    int
	metric index.Metric
	index  *index.Tiered

	mu      sync.Mutex
	indexed *roaring.Bitmap // IDs the index holds
}

// unindexed returns the members of allowed the index does not hold.
func (f *firstStage) unindexed(allowed *roaring.Bitmap) *roaring.Bitmap {
	f.mu.Lock()
	defer f.mu.Unlock()
	return roaring.AndNot(allowed, f.indexed)
}

func (f *firstStage) remove(iid uint32) {
	f.index.Delete(iid)
	f.mu.Lock()
	f.indexed.Remove(iid)
	f.mu.Unlock()
}

// tieredOptions turns the collection's index config into the first stage's.
func tieredOptions(ic storage.IndexConfig) index.TieredOptions {
	o := index.TieredOptions{HNSW: index.HNSWOptions{M: ic.M, EfConstruction: ic.EfConstruction, EfSearch: ic.EfSearch}}
	switch ic.Kind {
	case storage.IndexHNSW:
		o.GraphAt = 1
	case storage.IndexFlat:
		o.GraphAt = 0
	default:
		o.GraphAt = ic.GraphAt
	}
	return o
}

func (c *Collection) openFirstStage() error {
	cfg := c.coll.Config().WithDefaults()
	c.engine = &query.Engine{Coll: c.coll, Sim: c.sim, Parallelism: c.db.opts.Parallelism}
	fs := &firstStage{mode: cfg.Similarity.Score, indexed: roaring.New(), metric: index.InnerProduct}
	var queryMap func(wpcsim.Cloud, []float32) ([]float32, error)
	switch f := c.features.(type) {
	case *wpcsim.FDE:
		// maxsim: the whole encoding, inner product.
		fs.blocks = []wpcsim.FeatureBlock{{Offset: 0, Len: f.Dim()}}
		fs.dim = f.Dim()
		queryMap = f.MapQuery
		// The encoding ranks less sharply than φ: the exact top 10 was in
		// its top 400 but not always its top 100 (see wpcsim.FDEOptions).
		c.engine.Candidates = func(k int) int { return max(40*k, 400) }
	case *wpcsim.FeatureMap:
		fs.blocks = f.Blocks()
		fs.dim = f.Dim()
		queryMap = f.Map
	default:
		return nil // no first stage: every search scans exactly
	}
	if fs.mode == wpcsim.ScoreMMD {
		fs.dim++
		fs.metric = index.L2
	}
	if err := c.loadOrBuildIndex(fs, tieredOptions(cfg.Index)); err != nil {
		return err
	}
	c.first = fs
	c.engine.Index = fs.index
	c.engine.Unindexed = fs.unindexed
	c.engine.QueryVector = func(q wpcsim.Cloud) ([]float32, error) {
		phi, err := queryMap(q, nil)
		if err != nil {
			return nil, err
		}
		return fs.queryVector(phi), nil
	}
	return nil
}

func (f *firstStage) selected(phi []float32, scale float32, dst []float32) []float32 {
	for _, b := range f.blocks {
		for _, x := range phi[b.Offset : b.Offset+b.Len] {
			dst = append(dst, scale*x)
		}
	}
	return dst
}

func (f *firstStage) add(iid uint32, self wpcsim.Self, phi []float32) error {
	v := make([]float32, 0, f.dim)
	switch f.mode {
	case wpcsim.ScoreCosine:
		scale := float32(0)
		if self.G > 1e-6*self.Mass {
			scale = float32(1 / math.Sqrt(self.G))
		}
		v = f.selected(phi, scale, v)
	case wpcsim.ScoreMMD:
		v = f.selected(phi, 1, v)
		var n2 float64
		for _, x := range v {
			n2 += float64(x) * float64(x)
		}
		v = append(v, float32(math.Sqrt(max(0, self.G-n2))))
	default:
		v = f.selected(phi, 1, v)
	}
	if err := f.index.Add(iid, v); err != nil {
		return err
	}
	f.mu.Lock()
	f.indexed.Add(iid)
	f.mu.Unlock()
	return nil
}

func (f *firstStage) queryVector(phi []float32) []float32 {
	v := f.selected(phi, 1, make([]float32, 0, f.dim))
	if f.mode == wpcsim.ScoreMMD {
		v = append(v, 0)
	}
	return v
}

// blobPersister collects an index's blobs so they are saved in one batch
// with the epoch they reflect, and serves saved ones to a loader.
type blobPersister map[string][]byte

func (p blobPersister) PutBlob(name string, data []byte) error {
	p[name] = append([]byte(nil), data...)
	return nil
}

func (p blobPersister) GetBlob(name string) ([]byte, error) { return p[name], nil }

// loadOrBuildIndex loads the saved first-stage index and replays the writes
// made after it (the change log), or, when none was saved or it does not fit,
// builds it from every item's stored φ. The index is derived state: Pebble
// is the truth it is brought up to date from.
func (c *Collection) loadOrBuildIndex(fs *firstStage, opts index.TieredOptions) error {
	blobs, epoch, ok, err := c.coll.SavedIndex()
	if err != nil {
		return err
	}
	if ok {
		idx, err := index.LoadTiered(blobPersister(blobs), opts)
		if err == nil && idx != nil && idx.Dim() == fs.dim && idx.Metric() == fs.metric {
			fs.index = idx
			fs.indexed = idx.IDs()
			return c.coll.ChangesSince(epoch, func(iid uint32) error {
				if !c.coll.IsLive(iid) {
					fs.remove(iid)
					return nil
				}
				phi, self, err := c.coll.Phi(iid)
				if err != nil {
					return err
				}
				return fs.add(iid, self, phi)
			})
		}
		if idx != nil {
			idx.Stop()
		}
		c.db.opts.Logger.Warn("saved first-stage index unusable; rebuilding", "collection", c.Name(), "err", err)
	}
	if fs.index, err = index.NewTiered(fs.dim, fs.metric, opts); err != nil {
		return err
	}
	return c.coll.ScanVectors(func(iid uint32, self wpcsim.Self, phi []float32) error {
		return fs.add(iid, self, phi)
	})
}

// stopIndex stops the first stage's background graph builder (closing).
func (c *Collection) stopIndex() {
	if c.first != nil {
		c.first.index.Stop()
	}
}

// saveIndex persists the first-stage index with the write epoch it
// reflects, so the next open loads it and replays only later writes.
func (c *Collection) saveIndex() error {
	if c.first == nil {
		return nil
	}
	c.indexMu.Lock() // no write is between its commit and its index update
	defer c.indexMu.Unlock()
	epoch := c.coll.Epoch()
	p := blobPersister{}
	if err := c.first.index.Save(p); err != nil {
		return err
	}
	return c.coll.SaveIndex(p, epoch)
}
