package wpcdb

import (
	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/storage"
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
// freshly built one (from every stored φ, with the same map) for
// comparison.
func FirstStageForTest(c *Collection) (loaded, fresh *index.Tiered, dim int) {
	st, err := c.first.ensure()
	if err != nil {
		panic(err)
	}
	built, err := firststage.Build(c.coll, st.Map)
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
