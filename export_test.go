package wpcdb

import (
	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// StorageForTest exposes a collection's storage handle to tests.
func StorageForTest(db *DB, name string) *storage.Coll {
	c, err := db.store.Collection(name)
	if err != nil {
		panic(err)
	}
	return c
}

// FirstStageForTest returns the collection's first-stage index and a
// freshly built one (from every record, with the same map) for
// comparison.
func FirstStageForTest(c *Collection) (loaded, fresh *index.Tiered, dim int) {
	st, err := c.first.ensure()
	if err != nil {
		panic(err)
	}
	built, err := firststage.Build(c.coll, c.vectors(), st.Map)
	if err != nil {
		panic(err)
	}
	return st.Index, built.Index, st.Map.Dim()
}

// IndexLoadsForTest returns how many times the collection's first stage
// was loaded or built, and whether it is loaded now.
func IndexLoadsForTest(c *Collection) (loads int64, loaded bool) {
	if c.first == nil {
		return 0, false
	}
	return c.first.loads.Load(), c.first.stage() != nil
}

// PointStatsForTest returns the stats of the collection's point index
// (loading the first stage), ok false when it has none.
func PointStatsForTest(c *Collection) (st pointindex.Stats, ok bool) {
	s, err := c.first.ensure()
	if err != nil {
		panic(err)
	}
	if s.Points == nil {
		return st, false
	}
	return s.Points.Stats(), true
}

// PhiForTest returns φ of an item as a first stage is built from it:
// computed from its stored cloud.
func PhiForTest(c *Collection, iid uint32) ([]float32, error) {
	var out []float32
	err := c.vectorsOf([]uint32{iid}, phiAll, func(_ uint32, _ wpcsim.Self, phi []float32) error {
		out = append(out, phi...)
		return nil
	})
	return out, err
}

// PointSearchForTest runs the collection's point index's candidate search
// alone (pointindex.Index.Search) for q with depth r.
func PointSearchForTest(c *Collection, q wpcsim.Cloud, r int) error {
	s, err := c.first.ensure()
	if err != nil {
		return err
	}
	_, err = s.Points.Search(q, r, nil, pointindex.Params{})
	return err
}

// SetPointRetrainHookForTest sets a function a retrain runs between its
// build and its swap.
func SetPointRetrainHookForTest(c *Collection, hook func()) { c.retrain.hook = hook }

// SetSearchHookForTest sets a function each search runs while it holds
// the stage it took for its candidates.
func SetSearchHookForTest(c *Collection, hook func()) { c.first.searchHook = hook }

// WaitBackgroundForTest waits for the collection's background calibration
// and retrain.
func WaitBackgroundForTest(c *Collection) { c.calib.wg.Wait() }

// PointGensForTest lists the generations of point postings in storage.
func PointGensForTest(c *Collection) ([]uint32, error) { return c.coll.PointGens() }

// CalibratedAtForTest is the item count of the collection's last
// calibration (0: never).
func CalibratedAtForTest(c *Collection) int { return c.calibratedAt() }
