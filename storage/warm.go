package storage

import (
	"context"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// WarmCache reads the collection's small clouds into the cloud cache, in
// internal-ID order, until the cache is full or every item is in, and
// returns how many it added. It evicts nothing: a warm cache holds what the
// budget allows. A write committed meanwhile stops further inserts (they
// would race its invalidation), so WarmCache never caches a stale cloud.
// Without a cache it does nothing.
func (c *Coll) WarmCache(ctx context.Context) (int, error) {
	cache := c.store.clouds
	if cache == nil {
		return 0, nil
	}
	gen := cache.generation() // before the iterator: anything it reads is at least this new
	p := collKey(c.cid, subRecord)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: c.recordsEnd()})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k := it.Key()
		if len(k) != len(p)+4 {
			continue // not an item record; the reads report such keys
		}
		iid := binary.BigEndian.Uint32(k[len(p):])
		key := cacheKey(c.cid, iid)
		if _, _, ok := cache.get(key); ok {
			continue
		}
		rec, err := decodeRecord(it.Value(), c.cfg.Encoding, c.cfg.Dim)
		if err != nil {
			return n, err
		}
		size := cachedSize(rec)
		if size > maxCachedCloudBytes {
			continue
		}
		if !cache.room(size) || cache.generation() != gen {
			break
		}
		cache.put(gen, &cachedCloud{key: key, rec: rec, size: size})
		n++
	}
	return n, it.Error()
}
