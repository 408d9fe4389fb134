package storage

import (
	"container/list"
	"sync"
)

// maxCachedCloudBytes bounds the clouds the cloud cache keeps: small clouds,
// where reading and decoding a record costs more than scoring it (a 16×64
// cloud scores in about a microsecond; its Pebble read and decode take
// about ten). A paper-shape cloud (197×512, 400 KB decoded) costs far more
// to score than to read, and caching it would only churn memory.
const maxCachedCloudBytes = 64 << 10

// cloudCache keeps decoded clouds of recently read items, least recently
// used first out, within a byte budget. It is shared by the store's
// collections and safe for concurrent use. Cached clouds are read-only.
//
// Writes invalidate after they commit; a reader that misses records the
// generation before its read and inserts only if no invalidation came
// since, so a value read before a commit is never cached after it.
type cloudCache struct {
	mu     sync.Mutex
	budget int64
	used   int64
	gen    uint64
	items  map[uint64]*list.Element // (cid, iid) → *cachedCloud
	lru    list.List                // front: most recently used
}

type cachedCloud struct {
	key  uint64
	rec  Record
	size int64
}

// cachedSize is what a record costs in the cache: its floats, its ID and
// the entry's overhead.
func cachedSize(r Record) int64 {
	return int64(4*(len(r.Cloud.Points)+len(r.Cloud.Weights)) + len(r.ID) + 64)
}

func newCloudCache(budget int64) *cloudCache {
	if budget <= 0 {
		return nil
	}
	return &cloudCache{budget: budget, items: map[uint64]*list.Element{}}
}

func cacheKey(cid, iid uint32) uint64 { return uint64(cid)<<32 | uint64(iid) }

// get returns the cached cloud of key, or, on a miss, the generation to
// pass to put.
func (cc *cloudCache) get(key uint64) (*cachedCloud, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.items[key]; ok {
		cc.lru.MoveToFront(e)
		return e.Value.(*cachedCloud), 0, true
	}
	return nil, cc.gen, false
}

// put caches c unless an invalidation came after gen.
func (cc *cloudCache) put(gen uint64, c *cachedCloud) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen || c.size > cc.budget {
		return
	}
	if e, ok := cc.items[c.key]; ok { // another reader's equal copy
		cc.lru.MoveToFront(e)
		return
	}
	cc.items[c.key] = cc.lru.PushFront(c)
	cc.used += c.size
	for cc.used > cc.budget {
		cc.remove(cc.lru.Back())
	}
}

func (cc *cloudCache) remove(e *list.Element) {
	c := cc.lru.Remove(e).(*cachedCloud)
	delete(cc.items, c.key)
	cc.used -= c.size
}

// invalidate drops the given items of collection cid (after their change
// committed).
func (cc *cloudCache) invalidate(cid uint32, iids []uint32) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	for _, iid := range iids {
		if e, ok := cc.items[cacheKey(cid, iid)]; ok {
			cc.remove(e)
		}
	}
}

// dropCollection drops every item of collection cid.
func (cc *cloudCache) dropCollection(cid uint32) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	for key, e := range cc.items {
		if uint32(key>>32) == cid {
			cc.remove(e)
		}
	}
}

// room reports whether size more bytes fit without evicting anything.
func (cc *cloudCache) room(size int64) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.used+size <= cc.budget
}

// generation is the current invalidation generation (see put).
func (cc *cloudCache) generation() uint64 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.gen
}
