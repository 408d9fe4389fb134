package wpcdb_test

import (
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// BenchmarkPointSearch: the point index's candidate search alone over its
// postings in Pebble (in tables: the build flushes the memtable): 2,000 ColBERT-shaped documents
// (60–300 points, d = 128), queries of 32 points, depth 50.
func BenchmarkPointSearch(b *testing.B) {
	gen := bench.NewColbert(bench.ColbertShape, 1)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	db, err := wpcdb.Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	c, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: 128, Similarity: wpcsim.Config{Kernel: maxsim}})
	if err != nil {
		b.Fatal(err)
	}
	items := make([]wpcdb.Item, 2000)
	for i := range items {
		if items[i], err = gen.Item(i); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Upsert(ctx, items); err != nil {
		b.Fatal(err)
	}
	if err := c.UseFirstStage("points"); err != nil {
		b.Fatal(err)
	}
	if _, err := c.Warm(ctx); err != nil {
		b.Fatal(err)
	}
	qs := make([]wpcsim.Cloud, 16)
	for i := range qs {
		qs[i] = gen.Query(i)
	}
	// cpu-ms/op is the process's CPU time a search (the machine is shared:
	// wall time varies with the others' load).
	b.Run("candidates", func(b *testing.B) {
		i := 0
		cpu0 := processCPU()
		for b.Loop() {
			if err := wpcdb.PointSearchForTest(c, qs[i%len(qs)], 50); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	})
	b.Run("search", func(b *testing.B) {
		i := 0
		cpu0 := processCPU()
		for b.Loop() {
			if _, err := c.Search(ctx, qs[i%len(qs)], wpcdb.SearchOptions{K: 10}); err != nil {
				b.Fatal(err)
			}
			i++
		}
		b.ReportMetric(float64(processCPU()-cpu0)/1e6/float64(b.N), "cpu-ms/op")
	})
}
