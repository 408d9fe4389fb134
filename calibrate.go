package wpcdb

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Calibration says which first-stage representation a calibration chose
// and the recall it measured for each candidate.
type Calibration = firststage.Calibration

// ErrTooFewToCalibrate is Calibrate's error on a collection holding too few
// items to measure recall on.
var ErrTooFewToCalibrate = firststage.ErrTooFew

// Automatic calibration: a collection calibrates in the background when it
// first holds autoCalibrateAt items, then each time it has grown fourfold,
// up to autoCalibrateMax items (beyond, Calibrate is explicit: rebuilding a
// large graph is not something to do behind a user's back).
const (
	autoCalibrateAt  = 1_000
	autoCalibrateMax = 250_000
)

// calibration is a collection's calibration state.
type calibration struct {
	mu      sync.Mutex
	running bool
	closed  bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// Calibrate chooses the collection's first-stage representation by
// measurement on its own items (see firststage.Calibrate): queries of the
// real workload when given, else held-out items. When the choice differs
// from the current one, the first stage is rebuilt from the records with
// it (writes wait meanwhile; a graph is then rebuilt in the background, its
// vectors scanned exactly until it is) and saved. Searches are exact-scored
// throughout. Collections calibrate by themselves as they grow (at 1,000
// items, then each fourfold growth up to 250,000); bulk loads call it at
// their end.
func (c *Collection) Calibrate(ctx context.Context, queries []wpcsim.Cloud) (Calibration, error) {
	if c.first == nil {
		return Calibration{Chosen: firststage.Representation{Kind: firststage.FDE}, Skipped: "no first stage"}, nil
	}
	cfg := c.Config()
	for i, q := range queries {
		if err := q.Validate(c.sim.Limits(cfg.Dim, 0)); err != nil {
			return Calibration{}, fmt.Errorf("query %d: %w", i, err)
		}
	}
	if err := c.first.err(); err != nil {
		return Calibration{}, err
	}
	count := c.coll.Count()
	depth := c.calibrationDepth()
	n := calibrationSampleSize(count, depth)
	cal, err := firststage.Calibrate(ctx, c.sim, cfg.Dim, c.features, c.calibrationItems(), firststage.CalibrateOptions{
		Queries: queries, Depth: depth, PointDepth: c.calibrationPointDepth(), MaxPoints: cfg.MaxPoints, Index: cfg.Index, Parallelism: c.db.opts.Parallelism, Sample: n,
	})
	if err != nil {
		return cal, err
	}
	cal.Chosen.Items = count
	return cal, c.useRepresentation(cal.Chosen)
}

// calibrationSampleSize is how many items a calibration computes φ of for
// a collection of count items searched at depth: enough that the depth,
// scaled to the sample (firststage.Calibrate measures the same fraction of
// it), is at least 2·K = 20, between 10,000 and 50,000. Measured on
// compact 100k (default kernel, depth 100): a 10,000-item sample scales
// the depth to 10 = K, where recall@10 asks for a perfect order, and
// measured pca-128 at 0.928 and φ at 0.94, so φ (1,088 floats an item) was
// chosen; a 20,000-item sample (depth 20) measured pca-64 at 0.994, pca-128
// and φ at 1.000, and the bench had measured pca-128 at 0.980 against the
// exact top 10 of the whole collection.
func calibrationSampleSize(count, depth int) int {
	return min(max(10_000, (count*20+depth-1)/max(depth, 1)), 50_000)
}

// useRepresentation switches the first stage to rep, rebuilding the index
// when the representation changes, and saves it. A stage not loaded yet is
// built with rep directly (after a bulk load, the one build of its index),
// unless the saved one already has rep.
func (c *Collection) useRepresentation(rep firststage.Representation) error {
	if saved, ok := c.savedRepresentation(); c.first.stage() == nil && (!ok || saved.String() != rep.String()) {
		m, err := firststage.NewMap(c.sim, c.features, rep)
		if err != nil {
			return err
		}
		built, err := c.first.loadWith(func() (*firststage.Stage, error) {
			c.indexMu.Lock()
			defer c.indexMu.Unlock()
			c.first.saved = nil
			st, err := c.buildStage(m)
			if err == nil {
				c.first.cur.Store(st) // before indexMu is released (search.go's load)
			}
			return st, err
		})
		if err != nil {
			return err
		}
		if built {
			return c.saveIndex()
		}
	}
	if _, err := c.first.ensure(); err != nil {
		return err
	}
	c.indexMu.Lock()
	old := c.first.stage()
	cur := old.Map.Representation()
	c.first.saved = nil // the representation (or its measurement) changes
	if rep.String() == cur.String() {
		// Same vectors: keep the index (and its graph), record the new
		// measurement.
		rep.Proj = cur.Proj
	}
	m, err := firststage.NewMap(c.sim, c.features, rep)
	if err != nil {
		c.indexMu.Unlock()
		return err
	}
	if rep.String() == cur.String() || sameFDE(rep, cur) {
		// maxsim's FDE and points stages hold the same FDE vectors:
		// only the point index is built or dropped (pointstage.go).
		st := &firststage.Stage{Map: m, Index: old.Index, Points: old.Points}
		if rep.Kind != firststage.Points {
			st.Points = nil
		}
		if err := c.attachPoints(st); err != nil {
			c.indexMu.Unlock()
			return err
		}
		c.first.cur.Store(st)
	} else {
		st, err := c.buildStage(m)
		if err != nil {
			c.indexMu.Unlock()
			return err
		}
		c.first.cur.Store(st)
		old.Index.Stop()
	}
	c.indexMu.Unlock()
	return c.saveIndex()
}

// maybeCalibrate starts a background calibration when the collection has
// grown enough since the last one (see autoCalibrateAt).
func (c *Collection) maybeCalibrate() {
	if c.first == nil {
		return
	}
	st := c.first.stage()
	if st == nil {
		return // not loaded: writes go to the change log; the load's owner calibrates
	}
	n := c.coll.Count()
	last := st.Map.Representation().Items
	if n < autoCalibrateAt || n > autoCalibrateMax || (last > 0 && n < 4*last) {
		return
	}
	cs := &c.calib
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.running || cs.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cs.running, cs.cancel = true, cancel
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		defer cancel()
		_, err := c.Calibrate(ctx, nil)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, firststage.ErrTooFew) {
			c.db.opts.Logger.Warn("first-stage calibration failed", "collection", c.Name(), "err", err)
		}
		cs.mu.Lock()
		cs.running = false
		cs.mu.Unlock()
	}()
}

// stopCalibration cancels a running calibration, waits for it, and refuses
// new ones (closing or dropping).
func (c *Collection) stopCalibration() {
	cs := &c.calib
	cs.mu.Lock()
	cs.closed = true
	if cs.cancel != nil {
		cs.cancel()
	}
	cs.mu.Unlock()
	cs.wg.Wait()
}

// LoadDone tells the collection that a bulk load has ended: it calibrates
// its first stage (see Calibrate) when it has never been calibrated or has
// grown by a quarter since, so that a collection loaded in one go searches
// with the representation its data calls for. Errors other than a
// cancelled ctx are returned; too few items to calibrate is not one.
func (c *Collection) LoadDone(ctx context.Context) error { return c.LoadDoneAfter(ctx, -1) }

// LoadDoneAfter is LoadDone for a load that wrote written items (negative:
// unknown, as LoadDone): a collection calibrated before recalibrates only
// when this load alone grew it by a quarter of its size then. A stream of
// a few items that happens to end the growth leaves it to the background
// trigger (each fourfold growth): measured with `wpcdb bench --workload
// load --write-fraction 0.2` (Upsert streams of one 10-item batch into
// 10,000 items), every such stream recalibrated in its last answer, and
// the Upsert p99 was 3.0 s against a p50 of 6 ms.
func (c *Collection) LoadDoneAfter(ctx context.Context, written int) error {
	if c.first == nil {
		return nil
	}
	n := c.coll.Count()
	last := c.calibratedAt()
	if n < firststage.MinItems || (last > 0 && (4*n < 5*last || (written >= 0 && 4*written < last))) {
		return nil
	}
	_, err := c.Calibrate(ctx, nil)
	if errors.Is(err, firststage.ErrTooFew) {
		return nil
	}
	return err
}

// calibratedAt is the item count of the first stage's last calibration (0:
// never), read from the saved index when the stage is not loaded, so that
// a small ingest into a large collection does not load its index to learn
// that no calibration is due.
func (c *Collection) calibratedAt() int {
	if st := c.first.stage(); st != nil {
		return st.Map.Representation().Items
	}
	rep, _ := c.savedRepresentation()
	return rep.Items
}

// savedRepresentation is the representation of the saved index, if one is
// saved and readable.
func (c *Collection) savedRepresentation() (firststage.Representation, bool) {
	saved, err := c.coll.OpenSavedIndex()
	if err != nil || saved == nil {
		return firststage.Representation{}, false
	}
	defer saved.Close()
	rep, _, ok, err := firststage.SavedRepresentation(saved)
	if err != nil || !ok {
		return firststage.Representation{}, false
	}
	return rep, true
}
