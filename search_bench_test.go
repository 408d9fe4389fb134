package wpcdb_test

import (
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"testing"
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
