package wpcdb

import (
	"github.com/wpcdb/wpcdb/index"
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
// freshly built one (from every stored φ) for comparison.
func FirstStageForTest(c *Collection) (loaded, fresh *index.Tiered, dim int) {
	flat, err := index.NewTiered(c.first.m.dim, c.first.m.metric, index.TieredOptions{})
	if err != nil {
		panic(err)
	}
	fs := &firstStage{m: c.first.m, index: flat}
	err = c.coll.ScanVectors(func(iid uint32, self wpcsim.Self, phi []float32) error {
		return fs.add(iid, self, phi)
	})
	if err != nil {
		panic(err)
	}
	return c.first.index, fs.index, c.first.m.dim
}
