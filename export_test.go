package wpcdb

import "github.com/wpcdb/wpcdb/storage"

// StorageForTest exposes a collection's storage handle to tests.
func StorageForTest(db *DB, name string) *storage.Coll {
	c, err := db.store.Collection(name)
	if err != nil {
		panic(err)
	}
	return c
}
