package storage

import (
	"context"
	"encoding/binary"

	"github.com/cockroachdb/pebble/v2"
)

// WarmCache reads the collection's clouds (those the cache takes: see
// maxCachedCloudBytes) into the cloud cache, in internal-ID order, until
// the cache is full or every item is in, and returns how many it added. It evicts nothing: a warm cache holds what the
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
	var buf CloudBuf // newCached copies out of it
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
		if cache.contains(key) {
			continue
		}
		rec, half, err := decodeRecordHalf(it.Value(), c.cfg.Encoding, c.cfg.Dim, &buf)
		if err != nil {
			return n, err
		}
		size := cachedSize(rec, half)
		if !cache.fits(size) {
			continue
		}
		if !cache.room(size) || cache.generation() != gen {
			break
		}
		cache.put(gen, newCached(key, rec, half, c.cfg.Encoding))
		n++
	}
	return n, it.Error()
}
