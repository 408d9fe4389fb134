package storage

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestWarmCache: WarmCache fills the cache with every item's cloud as
// stored when the budget allows, stops at the budget without evicting, and
// a warmed cloud is what a read returns.
func TestWarmCache(t *testing.T) {
	for _, budget := range []int64{1 << 20, 1000} {
		s, err := Open("db", &Options{FS: vfs.NewMem(), CloudCacheBytes: budget})
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.CreateCollection("c", collconfig.Config{Dim: 2}.WithDefaults(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var ws []ItemWrite
		for i := 0; i < 50; i++ {
			ws = append(ws, ItemWrite{ID: fmt.Sprintf("i%02d", i), Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{float32(i + 1)}, Points: []float32{1, 0}}})
		}
		iids, err := c.Write(ws)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.WarmCache(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		cached := 0
		for i, iid := range iids {
			if e, _, ok := s.clouds.get(cacheKey(c.cid, iid)); ok {
				cached++
				if e.rec.ID != ws[i].ID || e.rec.Cloud.Weights[0] != float32(i+1) {
					t.Fatalf("budget %d: cached %s %v, stored %s %v", budget, e.rec.ID, e.rec.Cloud.Weights, ws[i].ID, ws[i].Cloud.Weights)
				}
			}
		}
		switch {
		case budget > 1000 && (n != 50 || cached != 50):
			t.Fatalf("budget %d: warmed %d, cached %d, want 50", budget, n, cached)
		case budget == 1000 && (n == 0 || n >= 50 || cached != n || s.clouds.used > budget):
			t.Fatalf("budget %d: warmed %d, cached %d, used %d: want some, all kept, within the budget", budget, n, cached, s.clouds.used)
		}
		s.Close()
	}
}
