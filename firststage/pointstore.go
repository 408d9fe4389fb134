package firststage

import (
	"github.com/wpcdb/wpcdb/pointindex"
	"github.com/wpcdb/wpcdb/storage"
)

// PointStore is the pointindex.Store of a collection: its point postings
// in Pebble (storage's point postings), read on demand through the block
// cache. Its writes go through one storage.PointWriter; the caller
// serializes them (builds and syncs hold the collection's index lock).
func PointStore(coll *storage.Coll) pointindex.Store {
	return &pointStore{coll: coll, w: coll.NewPointWriter()}
}

type pointStore struct {
	coll *storage.Coll
	w    *storage.PointWriter
}

// ToStorage is p as storage writes it under gen.
func ToStorage(gen uint32, p pointindex.Postings) *storage.PointPostings {
	return &storage.PointPostings{Gen: gen, Shift: p.Shift, Points: uint32(p.Points), Lists: p.Lists, Values: p.Values}
}

func (s *pointStore) NewReader(gen uint32, shift uint8) (pointindex.Reader, error) {
	return s.coll.NewPointReader(gen, shift)
}

func (s *pointStore) Put(gen, iid uint32, p pointindex.Postings) error {
	return s.w.Put(iid, *ToStorage(gen, p))
}

func (s *pointStore) Delete(gen, iid uint32) error { return s.w.Delete(gen, iid) }

func (s *pointStore) Flush() error { return s.w.Flush() }

func (s *pointStore) Items(gen uint32, fn func(iid, points uint32) error) error {
	return s.coll.PointItems(gen, fn)
}

func (s *pointStore) DiskBytes(gen uint32) (int64, error) { return s.coll.PointDiskBytes(gen) }
