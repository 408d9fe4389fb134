package storage

import (
	"container/list"
	"slices"
	"sync"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// maxCachedCloudBytes bounds the clouds the cloud cache keeps (their
// cachedSize): 1/1024 of its budget, at least 64 KiB (256 KiB at the
// default budget). Clouds were first cached up to 64 KiB decoded, where
// reading and decoding a record costs more than scoring it (a 16×64 cloud
// scores in about a microsecond; its Pebble read and decode take about
// ten). Since maxsim's fused kernel (simd.MaxSim) a ColBERT document (60–
// 300 points at d = 128, 15–77 KB in f16) scores against a 32-point query
// in about 15 µs and its read and decode took about 50: the reads were
// most of a rerank. A cap relative to the budget keeps one huge cloud
// from flushing a small cache.
func maxCachedCloudBytes(budget int64) int64 { return max(64<<10, budget/1024) }

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
	// hits and misses count get's answers (CloudCacheStats).
	hits, misses int64
}

// cachedCloud is a cached record. A half-encoded collection's points are
// kept as stored (half: f16 or bf16 bits, as enc says), half the memory of
// float32, and widened into the reader's buffer on every hit (simd, about
// 2 µs for a 180×128 cloud); rec.Cloud.Points is then nil.
type cachedCloud struct {
	key  uint64
	rec  Record
	half []uint16
	enc  collconfig.Encoding
	size int64
}

// newCached is the cache's own copy of rec, a record of key just decoded
// (half, from decodeRecordHalf, its stored half floats or nil).
func newCached(key uint64, rec Record, half []uint16, enc collconfig.Encoding) *cachedCloud {
	c := &cachedCloud{key: key, rec: rec, enc: enc}
	c.rec.Cloud = wpcsim.Cloud{Dim: rec.Cloud.Dim, Weights: slices.Clone(rec.Cloud.Weights)}
	if half != nil {
		c.half = slices.Clone(half)
	} else {
		c.rec.Cloud.Points = slices.Clone(rec.Cloud.Points)
	}
	c.size = cachedSize(c.rec, c.half)
	return c
}

// record is the cached record, its half points widened into buf (nil:
// fresh memory). A float32 entry's record is the cache's own: read-only.
func (c *cachedCloud) record(buf *CloudBuf) Record {
	if c.half == nil {
		return c.rec
	}
	if buf == nil {
		buf = &CloudBuf{}
	}
	buf.points = slices.Grow(buf.points[:0], len(c.half))[:len(c.half)]
	if c.enc == collconfig.EncodingF16 {
		simd.F16ToF32(buf.points, c.half)
	} else {
		simd.BF16ToF32(buf.points, c.half)
	}
	rec := c.rec
	rec.Cloud.Points = buf.points
	return rec
}

// cachedSize is what a record costs in the cache: its floats (half, when
// not nil, in place of its float32 points), its ID and the entry's
// overhead.
func cachedSize(r Record, half []uint16) int64 {
	points := 4 * len(r.Cloud.Points)
	if half != nil {
		points = 2 * len(half)
	}
	return int64(points+4*len(r.Cloud.Weights)+len(r.ID)) + 64
}

func newCloudCache(budget int64) *cloudCache {
	if budget <= 0 {
		return nil
	}
	return &cloudCache{budget: budget, items: map[uint64]*list.Element{}}
}

// fits reports whether an entry of size is small enough to cache.
func (cc *cloudCache) fits(size int64) bool { return size <= maxCachedCloudBytes(cc.budget) }

func cacheKey(cid, iid uint32) uint64 { return uint64(cid)<<32 | uint64(iid) }

// get returns the cached cloud of key, or, on a miss, the generation to
// pass to put.
func (cc *cloudCache) get(key uint64) (*cachedCloud, uint64, bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if e, ok := cc.items[key]; ok {
		cc.lru.MoveToFront(e)
		cc.hits++
		return e.Value.(*cachedCloud), 0, true
	}
	cc.misses++
	return nil, cc.gen, false
}

// contains reports whether key is cached, without counting a hit or a
// miss or touching the LRU order (WarmCache).
func (cc *cloudCache) contains(key uint64) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	_, ok := cc.items[key]
	return ok
}

// put caches c unless an invalidation came after gen, evicting the least
// recently used entries to make room.
func (cc *cloudCache) put(gen uint64, c *cachedCloud) { cc.insert(gen, c, true) }

// putSpare is put when c fits without evicting anything (ReadCloudScan).
func (cc *cloudCache) putSpare(gen uint64, c *cachedCloud) { cc.insert(gen, c, false) }

func (cc *cloudCache) insert(gen uint64, c *cachedCloud, evict bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen || c.size > cc.budget || !evict && cc.used+c.size > cc.budget {
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

// CloudCacheStats describe the cloud cache.
type CloudCacheStats struct {
	// Hits and Misses count ReadCloud's lookups.
	Hits, Misses int64
	// Clouds and Bytes are what it holds now, within Budget.
	Clouds       int
	Bytes        int64
	Budget       int64
	MaxItemBytes int64 // the largest entry it takes (maxCachedCloudBytes)
}

func (cc *cloudCache) stats() CloudCacheStats {
	if cc == nil {
		return CloudCacheStats{}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return CloudCacheStats{Hits: cc.hits, Misses: cc.misses, Clouds: len(cc.items), Bytes: cc.used, Budget: cc.budget,
		MaxItemBytes: maxCachedCloudBytes(cc.budget)}
}

// generation is the current invalidation generation (see put).
func (cc *cloudCache) generation() uint64 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.gen
}
