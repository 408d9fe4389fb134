package storage

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func cached(cid, iid uint32, size int64) *cachedCloud {
	return &cachedCloud{key: cacheKey(cid, iid), rec: Record{ID: "x"}, size: size}
}

func TestCloudCacheLRUAndGenerations(t *testing.T) {
	cc := newCloudCache(300)
	for iid := uint32(0); iid < 3; iid++ {
		_, gen, ok := cc.get(cacheKey(1, iid))
		if ok {
			t.Fatalf("%d cached before put", iid)
		}
		cc.put(gen, cached(1, iid, 100))
	}
	cc.get(cacheKey(1, 0)) // 0 becomes the most recent; 1 the least
	_, gen, _ := cc.get(cacheKey(1, 3))
	cc.put(gen, cached(1, 3, 100))
	if _, _, ok := cc.get(cacheKey(1, 1)); ok {
		t.Fatal("the least recently used entry survived going over budget")
	}
	for _, iid := range []uint32{0, 2, 3} {
		if _, _, ok := cc.get(cacheKey(1, iid)); !ok {
			t.Fatalf("%d evicted, want 1 evicted", iid)
		}
	}
	if cc.used != 300 {
		t.Fatalf("used %d, want 300", cc.used)
	}
	// A read that started before a write's invalidation must not cache.
	_, gen, _ = cc.get(cacheKey(1, 7))
	cc.invalidate(1, []uint32{7})
	cc.put(gen, cached(1, 7, 10))
	if _, _, ok := cc.get(cacheKey(1, 7)); ok {
		t.Fatal("a value read before an invalidation was cached after it")
	}
	cc.invalidate(1, []uint32{0})
	if _, _, ok := cc.get(cacheKey(1, 0)); ok {
		t.Fatal("invalidated entry still cached")
	}
	_, gen, _ = cc.get(cacheKey(2, 0))
	cc.put(gen, cached(2, 0, 10))
	cc.dropCollection(1)
	if _, _, ok := cc.get(cacheKey(1, 2)); ok {
		t.Fatal("dropped collection's entry still cached")
	}
	if _, _, ok := cc.get(cacheKey(2, 0)); !ok {
		t.Fatal("another collection's entry dropped")
	}
	if newCloudCache(0) != nil || newCloudCache(-1) != nil {
		t.Fatal("a zero or negative budget must disable the cache")
	}
}

// ReadCloud serves replaced and deleted items as they are now, never from
// a stale cache entry.
func TestReadCloudCacheFollowsWrites(t *testing.T) {
	s, err := Open("db", &Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.CreateCollection("c", collconfig.Config{Dim: 2}.WithDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	write := func(w float32) uint32 {
		cl := wpcsim.Cloud{Dim: 2, Weights: []float32{w}, Points: []float32{1, 0}}
		iids, err := c.Write([]ItemWrite{{ID: "a", Cloud: cl}})
		if err != nil {
			t.Fatal(err)
		}
		return iids[0]
	}
	iid := write(1)
	var buf CloudBuf
	for round, w := range []float32{2, 3, 4} {
		if r, err := c.ReadCloud(iid, &buf); err != nil || r.Cloud.Weights[0] != w-1 {
			t.Fatalf("round %d: read %v, %v; want weight %v", round, r.Cloud.Weights, err, w-1)
		}
		if r, _ := c.ReadCloud(iid, &buf); r.Cloud.Weights[0] != w-1 {
			t.Fatalf("round %d: cached read %v", round, r.Cloud.Weights)
		}
		write(w)
	}
	if r, _ := c.ReadCloud(iid, &buf); r.Cloud.Weights[0] != 4 {
		t.Fatalf("after the last write: %v", r.Cloud.Weights)
	}
	if _, err := c.Delete([]string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadCloud(iid, &buf); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted item read: %v", err)
	}
}
