package wpcdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// SearchOptions tune a search.
type SearchOptions struct {
	// K is the number of hits, 1 to query.MaxK (0: 10).
	K int
	// Offset skips the best Offset hits, for paging (Offset + K is at most
	// query.MaxK).
	Offset int
	// WithAttrs fills each hit's Attrs.
	WithAttrs bool
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
	// Missing lists the requested IDs that do not exist (Rerank only).
	Missing []string
}

// Search returns the K items most similar to the query by the collection's
// exact similarity, among a first stage's candidates (see SearchOptions).
// Every reported score comes from the exact kernel.
func (c *Collection) Search(ctx context.Context, q wpcsim.Cloud, opts SearchOptions) (SearchResult, error) {
	if err := c.checkQuerySize(q); err != nil {
		return SearchResult{}, err
	}
	if opts.K == 0 || opts.Offset != 0 || opts.WithAttrs {
		return c.searchPage(ctx, q, opts) // search_page.go
	}
	req := query.Request{Query: q, K: opts.K, Exact: opts.Exact, Candidates: opts.Candidates, Ef: opts.Ef}
	if opts.Filter != "" {
		expr, err := query.Parse(opts.Filter)
		if err != nil {
			return SearchResult{}, fmt.Errorf("filter: %w", err)
		}
		if err := c.coll.LoadAttrs(); err != nil { // read on the first filter
			return SearchResult{}, err
		}
		req.Filter = query.Compile(expr, c.coll)
	}
	res, err := c.engine.Search(ctx, req)
	if lerr := c.coll.CheckLive(); lerr != nil {
		return SearchResult{}, lerr // dropped while searching: what was read may be partial
	}
	if err != nil {
		return SearchResult{}, err
	}
	return SearchResult{Hits: res.Hits, Stats: res.Stats}, nil
}

// Rerank scores the given items exactly against the query and returns them
// best first: wpcdb as the exact reranker of another system's candidates.
// Unknown IDs are listed in the result's Missing, not an error.
func (c *Collection) Rerank(ctx context.Context, q wpcsim.Cloud, ids []string) (SearchResult, error) {
	return c.RerankWith(ctx, q, ids, RerankOptions{}) // search_page.go
}

func (c *Collection) openFirstStage() error {
	cfg := c.coll.Config().WithDefaults()
	c.engine = &query.Engine{Coll: c.coll, Sim: c.sim, Parallelism: c.db.opts.Parallelism}
	if c.features == nil {
		return nil // no first stage: every search scans exactly
	}
	if cfg.Similarity.Kernel.IsMaxSim() {
		c.engine.Candidates = c.maxSimDepth // pointstage.go
	}
	fs := &firstStage{}
	fs.load = func() (*firststage.Stage, error) {
		// No write is between its commit and its index update while the
		// index is read and the change log replayed: each write is either
		// in the change log read here or sees the loaded stage.
		// The stage is published before indexMu is released: a write
		// between the two would find no stage, skip the index, and be
		// missing from the change log replayed here (TestIndexLoadRacesWrites,
		// seed 606, lost 9–33 of 380 items under -race).
		c.indexMu.Lock()
		defer c.indexMu.Unlock()
		st, err := c.loadOrBuildIndex(fs)
		if err != nil {
			return nil, fmt.Errorf("collection %q: first stage: %w", c.Name(), err)
		}
		fs.cur.Store(st)
		return st, nil
	}
	c.first = fs
	c.engine.First = fs
	return nil
}

// loadOrBuildIndex loads the saved first-stage index and replays the writes
// made after it (the change log), or, when none was saved or it is damaged
// or does not fit, builds it from every item's record. The index is
// derived state: Pebble is the truth it is brought up to date from, so a
// damaged saved index costs a rebuild, never the collection.
func (c *Collection) loadOrBuildIndex(fs *firstStage) (*firststage.Stage, error) {
	fs.saved = nil
	st, current, err := firststage.LoadSaved(c.coll, c.vectors(), c.sim, c.features)
	if err == nil && current {
		fs.saved = stateOf(st, c.coll.Epoch())
	}
	switch {
	case err == nil && st != nil:
		return st, c.attachPoints(st) // pointstage.go
	case errors.Is(err, ErrClosed) || errors.Is(err, ErrCollectionNotFound):
		return nil, err
	case err != nil:
		c.db.opts.Logger.Warn("saved first-stage index unusable; rebuilding it from the items", "collection", c.Name(), "err", err)
	}
	// A damaged saved index whose representation is still readable (a
	// blob of its own) is rebuilt with it: a calibrated collection came
	// back with the default one (the same answers, another speed).
	rep, ok := c.savedRepresentation()
	m, err := firststage.NewMap(c.sim, c.features, rep)
	if err != nil && ok {
		m, err = firststage.NewMap(c.sim, c.features, firststage.Representation{})
	}
	if err != nil {
		return nil, err
	}
	return c.buildStage(m)
}

// buildStage builds a first stage for map m from the stored items, with
// its point index when m's representation is points.
func (c *Collection) buildStage(m *firststage.Map) (*firststage.Stage, error) {
	st, err := firststage.Build(c.coll, c.vectors(), m)
	if err != nil {
		return nil, err
	}
	return st, c.attachPoints(st) // pointstage.go
}

// stopIndex stops calibration and the first stage's background graph
// builder, and refuses later loads and searches with err (closing or
// dropping).
func (c *Collection) stopIndex(err error) {
	c.stopCalibration()
	if c.first == nil {
		return
	}
	c.first.mu.Lock()
	defer c.first.mu.Unlock()
	c.first.stopErr = err
	c.first.stopped.Store(true)
	if st := c.first.stage(); st != nil {
		st.Index.Stop()
	}
}

// saveIndex persists the first-stage index with the write epoch it
// reflects, so the next load replays only later writes. A stage never
// loaded is not saved (the saved one and the change log are still
// current), nor one equal to the saved one.
func (c *Collection) saveIndex() error {
	if c.first == nil {
		return nil
	}
	c.indexMu.Lock() // no write is between its commit and its index update
	defer c.indexMu.Unlock()
	st := c.first.stage()
	if st == nil {
		return nil
	}
	epoch := c.coll.Epoch()
	now := stateOf(st, epoch)
	if s := c.first.saved; s != nil && *s == *now {
		return nil
	}
	if err := firststage.Save(c.coll, st, epoch); err != nil {
		c.first.saved = nil
		return err
	}
	c.first.saved = now
	return nil
}
