package wpcdb

import (
	"context"
	"errors"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Retraining the point index when the data drifts: its centroids were
// trained on the points there were; points written later that lie far
// from every centroid (pointindex.Index.Drift: their mean residual norm
// over the training sample's) fall in lists that no longer partition
// them well. Past retrainDrift, over enough points, a background
// retrain builds a new index (new centroids, buckets and a new generation
// of postings in Pebble) from the live items while writes and searches go
// on against the current one; writes meanwhile are journaled and replayed
// into the new index under indexMu, which then replaces the old one in
// one atomic swap of the stage, and the old generation is deleted once
// no search still reads the old stage (dropPointGens).

// retrainDrift is the drift ratio that triggers a retrain, over at least
// retrainMinPoints points written since training and a tenth of those
// indexed. Points drawn like the training data measured 1.05, points of
// a new vocabulary 1.70 (pointindex's TestDrift).
const (
	retrainDrift     = 1.2
	retrainMinPoints = 1024
)

// pointRetrain is a collection's retrain state.
type pointRetrain struct {
	mu      sync.Mutex
	running bool
	// journal collects the items written while a retrain builds (nil
	// otherwise).
	journal *roaring.Bitmap
	// hook, for tests, runs between the build and the swap.
	hook func()
}

// notePointWrites journals written or deleted items during a retrain. The
// caller holds indexMu shared.
func (c *Collection) notePointWrites(iids []uint32) {
	r := &c.retrain
	r.mu.Lock()
	if r.journal != nil {
		r.journal.AddMany(iids)
	}
	r.mu.Unlock()
}

// maybeRetrainPoints starts a background retrain of the point index when
// its drift calls for one (see retrainDrift).
func (c *Collection) maybeRetrainPoints() {
	if c.first == nil {
		return
	}
	st := c.first.stage()
	if st == nil || st.Points == nil {
		return
	}
	ratio, n := st.Points.Drift()
	_, points := st.Points.Count()
	if ratio < retrainDrift || n < max(retrainMinPoints, points/10) {
		return
	}
	cs := &c.calib
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return
	}
	r := &c.retrain
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if running {
		return
	}
	cs.wg.Add(1)
	go func() {
		defer cs.wg.Done()
		if err := c.RetrainPoints(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			c.db.opts.Logger.Warn("point index retrain failed", "collection", c.Name(), "err", err)
		}
	}()
}

// RetrainPoints retrains a loaded point index from the live items (new
// centroids and a new generation of postings) and swaps it in; writes and
// searches go on meanwhile. It is a no-op without a loaded point index or
// while another retrain runs. Drift starts one in the background
// (maybeRetrainPoints); tests and operators call it directly.
func (c *Collection) RetrainPoints(ctx context.Context) error {
	r := &c.retrain
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return nil
	}
	r.running = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running, r.journal = false, nil
		r.mu.Unlock()
	}()
	if c.first == nil {
		return nil
	}
	// The live items and the journal start together: every write after
	// this is journaled.
	c.indexMu.Lock()
	st := c.first.stage()
	if st == nil || st.Points == nil {
		c.indexMu.Unlock()
		return nil
	}
	live := c.coll.Live()
	r.mu.Lock()
	r.journal = roaring.New()
	r.mu.Unlock()
	c.indexMu.Unlock()

	gens, err := c.coll.PointGens()
	if err != nil {
		return err
	}
	gen := st.Points.Gen() + 1
	if len(gens) > 0 {
		gen = max(gen, gens[len(gens)-1]+1)
	}
	src := func(fn func(uint32, wpcsim.Cloud) error) error {
		var buf storage.CloudBuf
		it := live.Iterator()
		for it.HasNext() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if c.calibClosed() {
				return ErrClosed
			}
			iid := it.Next()
			rec, err := c.coll.ReadCloud(iid, &buf)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted meanwhile: the journal has it
			}
			if err != nil {
				return err
			}
			if err := fn(iid, rec.Cloud); err != nil {
				return err
			}
		}
		return nil
	}
	cfg := c.Config()
	x, err := firststage.BuildPoints(cfg.Dim, src, cfg.Features.Seed+uint64(gen), c.db.opts.Parallelism, firststage.PointStore(c.coll), gen)
	if err != nil {
		c.dropPointGensOf(c.first.stage())
		return err
	}
	if r.hook != nil {
		r.hook()
	}
	// Writes held off: the journal's items brought up to date, the stage
	// swapped.
	c.indexMu.Lock()
	cur := c.first.stage()
	if cur == nil || cur.Points != st.Points {
		// Recalibrated or closed meanwhile: the new index is not wanted.
		c.indexMu.Unlock()
		c.dropPointGensOf(cur)
		return nil
	}
	r.mu.Lock()
	journal := r.journal
	r.journal = nil
	r.mu.Unlock()
	err = c.replayPoints(x, journal)
	if err == nil {
		err = x.Flush()
	}
	if err != nil {
		c.indexMu.Unlock()
		c.dropPointGensOf(cur)
		return err
	}
	c.setPointBudget(x)
	c.first.cur.Store(&firststage.Stage{Map: cur.Map, Index: cur.Index, Points: x})
	c.first.saved = nil
	c.indexMu.Unlock()
	if err := c.dropPointGens(gen); err != nil {
		return err
	}
	return c.saveIndex()
}

// replayPoints brings index x up to date with the journaled items: their
// current clouds, or their deletion.
func (c *Collection) replayPoints(x interface {
	Add(uint32, wpcsim.Cloud) error
	Delete(uint32) error
}, journal *roaring.Bitmap) error {
	it := journal.Iterator()
	for it.HasNext() {
		iid := it.Next()
		rec, err := c.coll.ReadCloud(iid, nil)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && !c.coll.IsLive(iid)) {
			if err := x.Delete(iid); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := x.Add(iid, rec.Cloud); err != nil {
			return err
		}
	}
	return nil
}

// dropPointGensOf deletes every generation of postings but st's.
func (c *Collection) dropPointGensOf(st *firststage.Stage) {
	keep := noPointGen
	if st != nil && st.Points != nil {
		keep = st.Points.Gen()
	}
	if err := c.dropPointGens(keep); err != nil && !errors.Is(err, storage.ErrCollectionNotFound) {
		c.db.opts.Logger.Warn("old point postings not deleted", "collection", c.Name(), "err", err)
	}
}

// calibClosed reports whether the collection's background work was stopped
// (closing or dropping).
func (c *Collection) calibClosed() bool {
	c.calib.mu.Lock()
	defer c.calib.mu.Unlock()
	return c.calib.closed
}
