package wpcdb

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Item is a cloud with its ID and attributes. Attribute values are strings,
// float64 numbers or booleans.
type Item struct {
	ID    string
	Cloud wpcsim.Cloud
	Attrs map[string]any
}

// Collection is a handle on one collection. Safe for concurrent use.
type Collection struct {
	db       *DB
	coll     *storage.Coll
	sim      *wpcsim.Similarity
	features featurizer  // nil when the kernel has no φ (maxsim)
	first    *firstStage // nil when there is no first stage (maxsim)
	engine   *query.Engine
	// indexMu is held shared by each write from its commit to its index
	// update, and exclusively by saveIndex, so a saved index reflects
	// exactly the writes up to the epoch saved with it.
	indexMu sync.RWMutex
	calib   calibration
	retrain pointRetrain // pointretrain.go
}

// featurizer computes a cloud's φ (wpcsim.FeatureMap).
type featurizer interface {
	Map(c wpcsim.Cloud, dst []float32) ([]float32, error)
}

// Name returns the collection's name.
func (c *Collection) Name() string { return c.coll.Name() }

// Config returns the collection's configuration, defaults filled in.
func (c *Collection) Config() CollectionConfig { return c.coll.Config() }

// Count returns the number of live items.
func (c *Collection) Count() int { return c.coll.Count() }

// Describe returns the collection's name, config, count, disk usage and
// first-stage index state.
func (c *Collection) Describe() CollectionInfo {
	return CollectionInfo{Name: c.Name(), Config: c.Config(), Count: c.Count(), DiskBytes: c.coll.DiskUsage(), Index: c.IndexStatus()}
}

// IndexStatus says what the first stage holds. Kind is "none" for a
// collection without one, "flat" while every vector is scanned exactly, and
// "hnsw" once the graph exists; Buffered vectors are not in the graph yet
// (they are scanned exactly meanwhile, so searches never miss them).
type IndexStatus struct {
	Kind     string `json:"kind"`
	InGraph  int    `json:"in_graph"`
	Buffered int    `json:"buffered"`
	// Representation is the first-stage vector ("phi", "centroid",
	// "pca-64", "fde"), Dim its dimension, and Recall the recall@10 its
	// calibration measured at the default depth (0: not calibrated).
	Representation string  `json:"representation"`
	Dim            int     `json:"dim"`
	Recall         float64 `json:"recall"`
	// FirstStageBytes is the resident memory of the first stage: the
	// buffered vectors, and for those in the graph their int8 codes, their
	// vectors unless the stage only prunes, and the graph's links and
	// bookkeeping (index.ResidentBytes).
	FirstStageBytes int64 `json:"first_stage_bytes"`
	// Loaded is false until the first search (or calibration) loads the
	// index; until then the representation, Kind and InGraph are the saved
	// index's, read from its header, and every other item counts as
	// buffered (writes since the save are replayed into the buffer).
	Loaded bool `json:"loaded"`
	// Points describes maxsim's point index when the stage has one
	// (loaded): its postings are in Pebble, read on demand.
	Points *PointIndexStatus `json:"points,omitempty"`
}

// PointIndexStatus describes a point index (package pointindex).
type PointIndexStatus struct {
	Centroids int `json:"centroids"`
	Bits      int `json:"bits"`
	Items     int `json:"items"`
	Points    int `json:"points"`
	// DiskBytes is the postings' size on disk (Pebble's estimate: tables,
	// not the memtable), ResidentBytes the memory the index holds
	// (centroids, residual buckets, a count per item); the per-point
	// figures divide them by Points.
	DiskBytes             int64   `json:"disk_bytes"`
	ResidentBytes         int64   `json:"resident_bytes"`
	DiskBytesPerPoint     float64 `json:"disk_bytes_per_point"`
	ResidentBytesPerPoint float64 `json:"resident_bytes_per_point"`
	// Drift is the mean residual norm of the points written since training
	// over the training sample's (pointindex.Index.Drift).
	Drift float64 `json:"drift"`
}

// IndexStatus returns the first stage's state, without loading it.
func (c *Collection) IndexStatus() IndexStatus {
	if c.first == nil {
		return IndexStatus{Kind: "none"}
	}
	cur := c.first.stage()
	if cur == nil {
		return c.savedIndexStatus()
	}
	idx, rep := cur.Index, cur.Map.Representation()
	g, b := idx.Status()
	st := IndexStatus{Kind: "flat", InGraph: g, Buffered: b, Representation: rep.String(), Dim: cur.Map.Dim(), Recall: rep.Recall,
		FirstStageBytes: firststage.ResidentBytes(c.coll, cur.Map, g, b) + pointBytes(cur), Loaded: true}
	if idx.HasGraph() {
		st.Kind = "hnsw"
	}
	st.Points = pointStatus(cur) // pointstage.go
	return st
}

// savedIndexStatus describes the first stage from the saved index's
// header and representation, or, when none is saved (or it is damaged and
// will be rebuilt), as the φ stage a load would build.
func (c *Collection) savedIndexStatus() IndexStatus {
	n := c.Count()
	st := IndexStatus{Kind: "flat", Buffered: n}
	var m *firststage.Map
	saved, err := c.coll.OpenSavedIndex()
	if err == nil && saved != nil {
		defer saved.Close()
		if sm, err := firststage.SavedMap(saved, c.sim, c.features); err == nil {
			if s, ok, err := index.SavedTieredStatus(saved); err == nil && ok && s.Dim == sm.Dim() {
				m = sm
				if sm.Representation().Kind == firststage.Points {
					st.Points = c.savedPointStatus(saved) // pointstage.go
				}
				st.InGraph = min(s.InGraph, n)
				st.Buffered = n - st.InGraph
				if s.HasGraph {
					st.Kind = "hnsw"
				}
			}
		}
	}
	if m == nil {
		if m, err = firststage.NewMap(c.sim, c.features, firststage.Representation{}); err != nil {
			return st
		}
	}
	rep := m.Representation()
	st.Representation, st.Dim, st.Recall = rep.String(), m.Dim(), rep.Recall
	st.FirstStageBytes = firststage.ResidentBytes(c.coll, m, st.InGraph, st.Buffered)
	return st
}

// WaitIndex loads the first stage if needed and blocks until its graph
// holds every item written so far (when the collection has a graph), or
// ctx ends. Searches do not need it: buffered items are scanned.
// Benchmarks and bulk loads use it to measure the built index.
func (c *Collection) WaitIndex(ctx context.Context) error {
	if c.first == nil {
		return ctx.Err()
	}
	cur, err := c.first.ensure()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		cur.Index.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Upsert validates every item, then stores them all in one durable, atomic
// write: when it returns nil every item is on disk and survives a crash;
// when it returns an error nothing was written. Within items the same ID
// twice means the last one wins; an existing ID is replaced. A bad item
// fails the call with ErrInvalidArgument naming its index, ID and field.
func (c *Collection) Upsert(ctx context.Context, items []Item) error {
	_, err := c.UpsertWith(ctx, items, UpsertOptions{})
	return err
}

// UpsertOptions change how UpsertWith treats invalid items.
type UpsertOptions struct {
	// SkipInvalid writes the valid items and reports the invalid ones
	// instead of refusing the whole batch.
	SkipInvalid bool
}

// UpsertResult says what UpsertWith did.
type UpsertResult struct {
	Written int           // items written (repeated IDs count each time)
	Skipped []InvalidItem // with SkipInvalid: the items left out, in order
}

// InvalidItem is an item refused by validation. It is also the error
// UpsertWith returns without SkipInvalid, so errors.As finds the index.
type InvalidItem struct {
	Index int
	ID    string
	Err   error // wraps ErrInvalidArgument, with index and ID in the message
	Cause error // the field-level reason alone, e.g. "points[2][0]: value is NaN"
}

func (e *InvalidItem) Error() string { return e.Err.Error() }
func (e *InvalidItem) Unwrap() error { return e.Err }

// UpsertWith is Upsert with options; see UpsertOptions.
//
// Each item goes through one pass: its ID, attributes and cloud are
// validated once, the cloud quantized once (the encoded points are what the
// record stores) and g(X,X) computed once, on the collection's Parallelism;
// storage then writes the prepared items without validating them again. φ
// is not stored (vectors.go): it is computed here, for the whole batch in
// one FeatureMap.MapBatch (or only its linear blocks for a centroid first
// stage), only when the first stage is loaded. A collection whose stage is
// not loaded (a new one, or one not searched since it was opened) leaves
// its writes to the change log, and the stage is built once, from the
// records, when a search, LoadDone or Calibrate first needs it.
func (c *Collection) UpsertWith(ctx context.Context, items []Item, opts UpsertOptions) (UpsertResult, error) {
	s, err := c.StageUpsert(ctx, items, opts)
	if err != nil {
		return UpsertResult{}, err
	}
	return s.Wait()
}

// StagedUpsert is an upsert whose items are validated and encoded and
// whose write is staged (storage.Coll.Stage): it is committed, synced, on
// its own goroutine after the upserts staged before it.
type StagedUpsert struct {
	c       *Collection
	res     UpsertResult
	pending *storage.PendingWrite // nil when nothing is written
}

// Wait blocks until the upsert is durable and returns what UpsertWith
// returns; on an error nothing of it was written.
func (s *StagedUpsert) Wait() (UpsertResult, error) {
	if s.pending == nil {
		return s.res, nil
	}
	if _, err := s.pending.Wait(); err != nil {
		return UpsertResult{}, err
	}
	defer s.c.maybeCalibrate()     // starts a goroutine, which waits for indexMu
	defer s.c.maybeRetrainPoints() // pointretrain.go, likewise
	return s.res, nil
}

// StageUpsert is the first half of UpsertWith: it validates and encodes
// the items and stages their write, returning once the write is queued
// behind the upserts staged before it. Wait on the result for the
// acknowledgement: only then is the write durable. A loader stages the
// next batch while the previous one syncs (ingest.Commit); an invalid item
// (without SkipInvalid) or a refused write is an error here, with nothing
// staged. Upserts staged one after the other are committed in that order.
// The items' clouds and attributes must not change until Wait returns
// (a large write encodes its records from them while it is pending).
func (c *Collection) StageUpsert(ctx context.Context, items []Item, opts UpsertOptions) (*StagedUpsert, error) {
	s := &StagedUpsert{c: c}
	if len(items) == 0 {
		return s, ctx.Err()
	}
	writes := make([]storage.ItemWrite, len(items))
	errs := make([]error, len(items))
	phis := make([][]float32, len(items))
	bound := c.phiBound()
	parallel.For(len(items), c.db.opts.Parallelism, func(i int) { errs[i] = c.prepare(&items[i], &writes[i], bound) })
	// indexMu is held shared from here to the index update after the
	// commit (released on the commit's goroutine), so the stage whose
	// vectors are computed is the one they are added to.
	c.indexMu.RLock()
	held := true
	defer func() {
		if held {
			c.indexMu.RUnlock()
		}
	}()
	var st *firststage.Stage
	if c.first != nil {
		st = c.first.stage()
	}
	if st != nil {
		c.mapFeatures(writes, phis, errs, needOf(st.Map))
	}
	posts := encodePoints(st, writes, errs, c.db.opts.Parallelism) // pointstage.go
	keep := writes[:0]
	var keepPhi [][]float32
	var keepPosts []pointindex.Postings
	for i, err := range errs {
		if err == nil {
			keep = append(keep, writes[i])
			keepPhi = append(keepPhi, phis[i])
			if posts != nil {
				keepPosts = append(keepPosts, posts[i])
			}
			continue
		}
		bad := NewInvalidItem(i, items[i].ID, err)
		if !opts.SkipInvalid {
			return nil, bad
		}
		s.res.Skipped = append(s.res.Skipped, *bad)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(keep) == 0 {
		return s, nil
	}
	// Run on the commit's goroutine once the write is durable (or failed),
	// before Wait returns.
	then := func(iids []uint32, err error) {
		defer c.indexMu.RUnlock()
		if err != nil {
			return
		}
		c.notePointWrites(iids) // pointretrain.go
		if st != nil {
			var v []float32
			for i, w := range keep {
				if st.Points != nil {
					st.Points.Added(iids[i], keepPosts[i]) // written in the items' batch
				}
				v = st.Map.AppendItem(v[:0], w.Self, keepPhi[i])
				st.Index.Add(iids[i], v)
			}
		}
	}
	p, err := c.coll.Stage(keep, then)
	if err != nil {
		return nil, err
	}
	held = false // then releases it
	s.pending = p
	s.res.Written = len(keep)
	return s, nil
}

// prepare validates an item and computes what is stored with it. φ is
// computed by mapFeatures, and only when the first stage is loaded; a
// random-feature φ is checked here when the weights are large enough that
// it might overflow (MaxSim's encoding fails only on a cloud that
// encodeCloud has already refused).
func (c *Collection) prepare(it *Item, w *storage.ItemWrite, bound phiBound) error {
	cfg := c.coll.Config()
	if err := checkIDAttrs(it); err != nil {
		return err
	}
	q, half, self, err := encodeCloud(cfg, c.sim, it.Cloud)
	if err != nil {
		return err
	}
	*w = storage.ItemWrite{ID: it.ID, Cloud: q, Half: half, Self: self, Attrs: it.Attrs}
	if bound.f != nil && !bound.finite(q) {
		_, err = bound.f.Map(q, nil)
	}
	return err
}

// phiBound is what phiFinite needs of a random-feature map, read once per
// batch (the map's Config and Blocks are copies: reading them per item was
// 0.07 of 1.37 CPU-s of a 100k compact load).
type phiBound struct {
	f         *wpcsim.FeatureMap // nil: no random-feature φ to check
	raw       bool               // the map takes raw points (no normalization)
	sqrtAlpha float64            // sqrt of the largest block weight, at least 1
}

// phiBound returns the collection's phiBound.
func (c *Collection) phiBound() phiBound {
	f, ok := c.features.(*wpcsim.FeatureMap)
	if !ok {
		return phiBound{}
	}
	alpha := 1.0
	for _, b := range f.Blocks() {
		alpha = max(alpha, b.Alpha)
	}
	return phiBound{f: f, raw: f.Config().RawPoints, sqrtAlpha: math.Sqrt(alpha)}
}

// finite reports whether φ(x) is certainly finite, from a bound: every
// coordinate of a block is at most sqrt(α)·Σ|w_j|·max_j|x̂_j| (cos ≤ 1, the
// random features' scale sqrt(2/D) ≤ 1, the mean norm ≤ 1), far below
// float32's range for any cloud but one with enormous weights or raw
// points. When it is not certain, the caller computes φ to find out.
func (b phiBound) finite(x wpcsim.Cloud) bool {
	var sumW float64
	for _, w := range x.Weights {
		sumW += math.Abs(float64(w))
	}
	norm := 1.0 // normalized points
	if b.raw {
		norm = 0
		for j := range x.Len() {
			p := x.Point(j)
			norm = max(norm, float64(simd.Dot(p, p)))
		}
		norm = math.Sqrt(norm)
	}
	return sumW*norm*b.sqrtAlpha < 1e36
}

// mapFeatures sets phis of the prepared items (those whose errs are nil):
// one MapBatch (one Map per cloud for MaxSim's encoding), or their linear
// blocks alone when need says so. An item whose φ fails gets its error in
// errs.
func (c *Collection) mapFeatures(writes []storage.ItemWrite, phis [][]float32, errs []error, need phiNeed) {
	var clouds []wpcsim.Cloud
	var at []int
	for i := range writes {
		if errs[i] == nil {
			clouds = append(clouds, writes[i].Cloud)
			at = append(at, i)
		}
	}
	if len(clouds) == 0 {
		return
	}
	n := c.phiDim()
	phi := make([]float32, len(clouds)*n)
	perr := make([]error, len(clouds))
	c.mapPhi(clouds, need, phi, perr)
	for k, i := range at {
		phis[i], errs[i] = phi[k*n:(k+1)*n:(k+1)*n], perr[k]
	}
}

// quantizeCloud validates a cloud and returns it as the collection stores
// it (with its f16/bf16 bits, nil for f32). Score what will read back:
// quantize first, and check that no point became zero on the way.
func quantizeCloud(cfg CollectionConfig, x wpcsim.Cloud) (q wpcsim.Cloud, half []uint16, err error) {
	if err := x.Validate(cfg.Limits()); err != nil {
		return q, nil, err
	}
	if q, half, err = storage.QuantizeBits(cfg.Encoding, x); err != nil {
		return q, nil, err
	}
	if cfg.Encoding != collconfig.EncodingF32 {
		if err := q.Validate(cfg.Limits()); err != nil {
			return q, nil, fmt.Errorf("after %s encoding: %w", cfg.Encoding, err)
		}
	}
	return q, half, nil
}

// checkIDAttrs checks an item's ID and attributes.
func checkIDAttrs(it *Item) error {
	if err := storage.CheckID(it.ID); err != nil {
		return err
	}
	return storage.CheckAttrs(it.Attrs)
}

// NewInvalidItem is item i's refusal for cause, naming its index and ID:
// the one form of the message ("invalid argument: item 3 (id "x"): cause")
// wherever an item is refused (the core, the server converting a request,
// the cluster router answering for its shards).
func NewInvalidItem(i int, id string, err error) *InvalidItem {
	return &InvalidItem{Index: i, ID: id, Cause: err,
		Err: fmt.Errorf("%w: item %d (id %s): %w", ErrInvalidArgument, i, storage.QuoteID(id), err)}
}

// CheckItems validates a batch against a collection's configuration as
// UpsertWith does before it writes (ID, attributes, the cloud before and
// after encoding; not φ), and writes nothing: the first invalid item is returned as an *InvalidItem. A
// cluster router checks a batch so before splitting it over shards, so
// that an invalid item refuses the whole batch there as on one node.
func CheckItems(cfg CollectionConfig, items []Item) error {
	for i := range items {
		err := checkIDAttrs(&items[i])
		if err == nil {
			_, _, err = quantizeCloud(cfg, items[i].Cloud)
		}
		if err != nil {
			return NewInvalidItem(i, items[i].ID, err)
		}
	}
	return nil
}

// encodeCloud validates a cloud, once, and returns it as the collection
// stores it (with its f16/bf16 bits, nil for f32) and g(X,X) (cosine and
// mmd; zero for inner), computed from the stored form.
func encodeCloud(cfg CollectionConfig, sim *wpcsim.Similarity, x wpcsim.Cloud) (q wpcsim.Cloud, half []uint16, self wpcsim.Self, err error) {
	if q, half, err = quantizeCloud(cfg, x); err != nil {
		return q, nil, self, err
	}
	// g(X,X) costs O(M²·d), more than scoring one pair; only the cosine and
	// mmd modes use it, so inner collections store zero.
	if cfg.Similarity.Score != wpcsim.ScoreInner {
		self = sim.SelfOfValid(q)
	}
	return q, half, self, nil
}

// storedCloud validates a cloud and returns it as the collection stores
// it, with what is stored beside it: g(X,X) (cosine and mmd) and φ (when
// feat is not nil), both computed from the stored form.
func storedCloud(cfg CollectionConfig, sim *wpcsim.Similarity, feat featurizer, x wpcsim.Cloud) (q wpcsim.Cloud, self wpcsim.Self, phi []float32, err error) {
	if q, _, self, err = encodeCloud(cfg, sim, x); err != nil {
		return q, self, nil, err
	}
	if feat != nil {
		if phi, err = feat.Map(q, nil); err != nil {
			return q, self, nil, err
		}
	}
	return q, self, phi, nil
}

// Delete removes the items with these IDs in one durable write and returns
// how many existed. Unknown IDs are not an error.
func (c *Collection) Delete(ctx context.Context, ids ...string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.indexMu.RLock()
	defer c.indexMu.RUnlock()
	iids, err := c.coll.Delete(ids)
	if err != nil {
		return 0, err
	}
	c.notePointWrites(iids)
	if c.first != nil {
		for _, iid := range iids {
			c.first.remove(iid)
		}
	}
	return len(iids), nil
}

// Get returns the stored item: points as ingested (exactly for f32, rounded
// for f16 and bf16), weights and attributes. An unknown or deleted ID is
// ErrNotFound.
func (c *Collection) Get(ctx context.Context, id string) (Item, error) {
	if err := ctx.Err(); err != nil {
		return Item{}, err
	}
	it, err := c.coll.Get(id)
	if err != nil {
		return Item{}, err
	}
	return Item{ID: it.ID, Cloud: it.Cloud, Attrs: it.Attrs}, nil
}

// Parallelism is the number of goroutines an upsert or a search's rerank
// uses (Options.Parallelism).
func (c *Collection) Parallelism() int { return c.db.opts.Parallelism }

// Warm reads the collection's clouds (up to 1/1024 of Options.
// CloudCacheBytes each, at least 64 KiB) into the cloud cache the rerank
// reads from, until the cache is full, and returns how many it added: a server about
// to take traffic, or a benchmark comparing with systems that hold their
// data in memory, warms first instead of paying Pebble reads on the first
// searches. Writes meanwhile are safe (a cloud they change is not cached
// stale). A loaded point index's postings are read once too, into
// Pebble's block cache.
func (c *Collection) Warm(ctx context.Context) (int, error) {
	n, err := c.coll.WarmCache(ctx)
	if err == nil && c.first != nil {
		if st := c.first.stage(); st != nil && st.Points != nil {
			err = st.Points.Warm() // its postings into Pebble's block cache
		}
	}
	return n, err
}
