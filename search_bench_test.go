package wpcdb_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// BenchmarkSearchPaper: one query (77×512) against 600 paper-shape items
// stored as f16, default kernel, first-stage depth 100, one rerank thread.
func BenchmarkSearchPaper(b *testing.B) {
	db, _ := wpcdb.Open("db", &wpcdb.Options{FS: vfs.NewMem(), Parallelism: 1})
	defer db.Close()
	cfg := wpcdb.CollectionConfig{Dim: 512, Encoding: wpcdb.EncodingF16}
	cfg.Features.Dim = 64
	c, _ := db.CreateCollection(ctx, "c", cfg)
	syn := bench.NewSynth(bench.PaperShape, 1)
	var items []wpcdb.Item
	for i := 0; i < 600; i++ {
		items = append(items, syn.Item(i))
	}
	c.Upsert(ctx, items)
	q := syn.Query(1, 77)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Candidates: 100})
	}
}

// BenchmarkSearchCompact: one query (8×64) against 20,000 compact items,
// default kernel and features, first-stage depth 100, one rerank thread,
// through each first stage, with and without the decoded-cloud cache. The
// per-candidate cost beyond the kernel (reads, decoding, bookkeeping) shows
// here, where clouds are tiny.
func BenchmarkSearchCompact(b *testing.B) {
	for _, kind := range []string{wpcdb.IndexFlat, wpcdb.IndexHNSW} {
		for _, cache := range []int64{-1, 0} {
			name := kind + "/cache"
			if cache < 0 {
				name = kind + "/nocache"
			}
			b.Run(name, func(b *testing.B) {
				db, _ := wpcdb.Open("db", &wpcdb.Options{FS: vfs.NewMem(), Parallelism: 1, CloudCacheBytes: cache})
				defer db.Close()
				c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 64, Index: wpcdb.IndexConfig{Kind: kind}})
				syn := bench.NewSynth(bench.CompactShape, 1)
				for lo := 0; lo < 20_000; lo += 1000 {
					var items []wpcdb.Item
					for i := lo; i < lo+1000; i++ {
						items = append(items, syn.Item(i))
					}
					c.Upsert(ctx, items)
				}
				c.WaitIndex(ctx)
				qs := make([]wpcsim.Cloud, 64)
				for i := range qs {
					qs[i] = syn.Query(i, 8)
				}
				for _, q := range qs { // warm the caches
					c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Candidates: 100})
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := c.Search(ctx, qs[i%len(qs)], wpcdb.SearchOptions{K: 10, Candidates: 100}); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer() // Close saves the index: not a search cost
			})
		}
	}
}

// BenchmarkSearchSmall: the per-query constant cost. One query (8×64)
// against 10,000 compact items (4–16 points, d = 64), default kernel and
// features, k = 10, first-stage depth R = 20, one thread, cache warm.
// Sub-benchmarks per kernel: the default, and linear (whose first stage is
// exact, so the rerank is skipped).
func BenchmarkSearchSmall(b *testing.B) {
	for _, kernel := range []string{"", "linear"} {
		name := kernel
		if name == "" {
			name = "default"
		}
		b.Run(name, func(b *testing.B) {
			db, err := wpcdb.Open("db", &wpcdb.Options{FS: vfs.NewMem(), Parallelism: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			cfg := wpcdb.CollectionConfig{Dim: 64}
			if kernel != "" {
				if cfg.Similarity.Kernel, err = wpcsim.ParseKernel(kernel); err != nil {
					b.Fatal(err)
				}
			}
			c, err := db.CreateCollection(ctx, "c", cfg)
			if err != nil {
				b.Fatal(err)
			}
			syn := bench.NewSynth(bench.CompactShape, 1)
			for lo := 0; lo < 10_000; lo += 1000 {
				var items []wpcdb.Item
				for i := lo; i < lo+1000; i++ {
					items = append(items, syn.Item(i))
				}
				if err := c.Upsert(ctx, items); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := c.Calibrate(ctx, nil); err != nil { // as a bulk load ends
				b.Fatal(err)
			}
			c.WaitIndex(ctx)
			b.Logf("first stage: %+v", c.IndexStatus())
			qs := make([]wpcsim.Cloud, 64)
			for i := range qs {
				qs[i] = syn.Query(i, 8)
			}
			benchSearches(b, c, qs, wpcdb.SearchOptions{K: 10, Candidates: 20})
		})
	}
}

// BenchmarkSearchPatches: the rerank of Fashion-MNIST-patch-shaped clouds
// (16 points, d = 51: 49 pixel values in [0, 1] and 2 position coordinates
// in [0, 32], raw points), gaussian(4) kernel, cosine score, against 3,000
// items, k = 10, first-stage depth R = 100, one thread, cache warm. The
// per-candidate cost of the rerank shows here: 100 clouds of 16 points.
func BenchmarkSearchPatches(b *testing.B) {
	db, err := wpcdb.Open("db", &wpcdb.Options{FS: vfs.NewMem(), Parallelism: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cfg := wpcdb.CollectionConfig{Dim: 51, MaxPoints: 16}
	cfg.Similarity.RawPoints = true
	cfg.Similarity.Score = wpcsim.ScoreCosine
	if cfg.Similarity.Kernel, err = wpcsim.ParseKernel("gaussian(4)"); err != nil {
		b.Fatal(err)
	}
	c, err := db.CreateCollection(ctx, "c", cfg)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(15, 1)) // fixed seed
	cloud := func() wpcsim.Cloud {
		cl := wpcsim.Cloud{Dim: 51}
		for p := 0; p < 16; p++ {
			for k := 0; k < 49; k++ {
				cl.Points = append(cl.Points, float32(rng.Float64()))
			}
			cl.Points = append(cl.Points, float32(p%4)*8+4, float32(p/4)*8+4)
			cl.Weights = append(cl.Weights, float32(0.5+rng.Float64()))
		}
		return cl
	}
	for lo := 0; lo < 3000; lo += 1000 {
		var items []wpcdb.Item
		for i := lo; i < lo+1000; i++ {
			items = append(items, wpcdb.Item{ID: fmt.Sprintf("p%05d", i), Cloud: cloud()})
		}
		if err := c.Upsert(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	c.WaitIndex(ctx)
	qs := make([]wpcsim.Cloud, 32)
	for i := range qs {
		qs[i] = cloud()
	}
	benchSearches(b, c, qs, wpcdb.SearchOptions{K: 10, Candidates: 100})
}

// benchSearches runs the queries in turn, once each to warm the caches and
// then as the timed loop, and reports the process CPU time per search
// beside ns/op (the wall time, which the other core's load moves).
func benchSearches(b *testing.B, c *wpcdb.Collection, qs []wpcsim.Cloud, opts wpcdb.SearchOptions) {
	for _, q := range qs {
		if _, err := c.Search(ctx, q, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	i := 0
	for b.Loop() {
		if _, err := c.Search(ctx, qs[i%len(qs)], opts); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(processCPU()-cpu0)/float64(i), "cpu-ns/op")
}
