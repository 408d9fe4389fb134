package storage

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
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

// TestCloudCacheEncodings: in each encoding, a read served by the cache
// (half-encoded entries keep their stored bits and are widened on the
// hit) is bit for bit the record Pebble holds, into a buffer or fresh
// memory; the entries cost what they hold (half the float32 bytes for
// f16 and bf16); clouds past 64 KiB decoded are cached up to
// maxCachedCloudBytes(budget) and no further; hits and misses are
// counted. Seed 16.
func TestCloudCacheEncodings(t *testing.T) {
	const seed = 16
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const dim = 128
	budget := int64(1 << 26) // maxCachedCloudBytes 64 KiB: some of each encoding fit, some not
	for _, enc := range []collconfig.Encoding{collconfig.EncodingF32, collconfig.EncodingF16, collconfig.EncodingBF16} {
		s, err := Open("db", &Options{FS: vfs.NewMem(), CloudCacheBytes: budget})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.CreateCollection("c", collconfig.Config{Dim: dim, Encoding: enc}.WithDefaults(), nil)
		if err != nil {
			t.Fatal(err)
		}
		// 60 to 300 points: 30–150 KB in float32, 15–77 KB in half floats.
		sizes := []int{60, 127, 128, 200, 250, 300}
		var ws []ItemWrite
		for i, m := range sizes {
			cl := wpcsim.Cloud{Dim: dim, Weights: make([]float32, m), Points: make([]float32, m*dim)}
			for j := range cl.Weights {
				cl.Weights[j] = float32(rng.Float64() + 0.5)
			}
			for j := range cl.Points {
				cl.Points[j] = float32(rng.NormFloat64())
			}
			ws = append(ws, ItemWrite{ID: fmt.Sprintf("d%d", i), Cloud: cl})
		}
		iids, err := c.Write(ws)
		if err != nil {
			t.Fatal(err)
		}
		for _, reuse := range []bool{true, false} {
			for i, iid := range iids {
				var buf *CloudBuf
				if reuse {
					buf = new(CloudBuf)
				}
				first, err := c.ReadCloud(iid, buf) // a miss the first time round
				if err != nil {
					t.Fatal(err)
				}
				want := Record{ID: first.ID, Self: first.Self, Cloud: wpcsim.Cloud{Dim: dim,
					Weights: slices.Clone(first.Cloud.Weights), Points: slices.Clone(first.Cloud.Points)}}
				clear(first.Cloud.Points) // the caller's buffer: the cache must not alias it
				again, err := c.ReadCloud(iid, buf)
				if err != nil {
					t.Fatal(err)
				}
				if again.ID != want.ID || again.Self != want.Self || !slices.Equal(again.Cloud.Weights, want.Cloud.Weights) ||
					!slices.Equal(again.Cloud.Points, want.Cloud.Points) {
					t.Fatalf("%s item %d (%d points): the cached read differs from Pebble's record", enc, i, sizes[i])
				}
				size := int64(len(want.ID)+4*sizes[i]) + 64 + int64(enc.Size()*sizes[i]*dim)
				e, _, ok := s.clouds.get(cacheKey(c.cid, iid))
				if fits := size <= maxCachedCloudBytes(budget); ok != fits {
					t.Fatalf("%s item %d (%d points, %d bytes): cached %v, want %v (limit %d)", enc, i, sizes[i], size, ok, fits, maxCachedCloudBytes(budget))
				}
				if ok && e.size != size {
					t.Fatalf("%s item %d: entry of %d bytes, want %d", enc, i, e.size, size)
				}
			}
			if !reuse {
				break
			}
			s.clouds.dropCollection(c.cid) // the second round misses again
		}
		st := s.CloudCacheStats()
		if st.Hits+st.Misses != int64(3*2*len(sizes)) || st.Hits == 0 || st.Misses < int64(2*len(sizes)) {
			t.Fatalf("%s: %d hits and %d misses, want %d lookups, the first read of each item in each round a miss", enc, st.Hits, st.Misses, 3*2*len(sizes))
		}
		s.Close()
	}
}

// TestReadCloudScan: a scan read returns what ReadCloud does, caches while
// the cache has room, and then evicts nothing: the clouds read before it
// stay cached.
func TestReadCloudScan(t *testing.T) {
	s, err := Open("db", &Options{FS: vfs.NewMem(), CloudCacheBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.CreateCollection("c", collconfig.Config{Dim: 2}.WithDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws []ItemWrite
	for i := 0; i < 40; i++ { // 83 bytes an entry: 12 fit in 1,000
		ws = append(ws, ItemWrite{ID: fmt.Sprintf("i%02d", i), Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{float32(i + 1)}, Points: []float32{1, 0}}})
	}
	iids, err := c.Write(ws)
	if err != nil {
		t.Fatal(err)
	}
	for _, iid := range iids[:5] {
		if _, err := c.ReadCloud(iid, nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, iid := range iids {
		r, err := c.ReadCloudScan(iid, nil)
		if err != nil || r.ID != ws[i].ID || r.Cloud.Weights[0] != float32(i+1) {
			t.Fatalf("scan read %d: %v %v, %v", i, r.ID, r.Cloud.Weights, err)
		}
	}
	if s.clouds.used > 1000 || len(s.clouds.items) < 10 {
		t.Fatalf("after the scan: %d entries, %d bytes: want the cache filled to its budget of 1,000", len(s.clouds.items), s.clouds.used)
	}
	for i, iid := range iids[:5] {
		if !s.clouds.contains(cacheKey(c.cid, iid)) {
			t.Fatalf("item %d, cached before the scan, was evicted by it", i)
		}
	}
	for i, iid := range iids[20:] {
		if s.clouds.contains(cacheKey(c.cid, iid)) {
			t.Fatalf("item %d cached after the cache was full", 20+i)
		}
	}
}
