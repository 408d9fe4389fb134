package ingest_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/ingest"
)

// BenchmarkCommit loads the compact workload's first n items (4–16 points
// × 64, seed 1, three attributes, the default kernel), generated before
// the clock starts, into a new collection through Commit, batches of
// 1,000: the load `wpcdb bench --workload compact --queries 0` times,
// without its first-stage build. It reports wall and CPU time an item
// (the machine is shared: CPU time is the steadier figure) and items per
// CPU second of the whole process. Compare commits with
//
//	go test ./ingest -run - -bench Commit -count 6 | benchstat
//
// (WPCDB_COMMIT_N sets n; default 20,000).
func BenchmarkCommit(b *testing.B) {
	n := envItems("WPCDB_COMMIT_N")
	s := bench.NewSynth(bench.CompactShape, 1)
	items := make([]wpcdb.Item, n)
	for i := range items {
		items[i] = s.Item(i)
	}
	ctx := context.Background()
	var cpu float64
	for b.Loop() {
		db, err := wpcdb.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: s.Dim, MaxPoints: s.MaxPoints})
		if err != nil {
			b.Fatal(err)
		}
		batches := make(chan ingest.Batch, n/ingest.DefaultBatch+1)
		for lo := 0; lo < n; lo += ingest.DefaultBatch {
			hi := min(lo+ingest.DefaultBatch, n)
			pos := make([]int, hi-lo)
			for i := range pos {
				pos[i] = lo + i
			}
			batches <- ingest.Batch{Items: items[lo:hi], Pos: pos}
		}
		close(batches)
		cpu0 := processCPU()
		st, err := ingest.Commit(ctx, c, batches, ingest.Options{Unit: "item"})
		cpu += (processCPU() - cpu0).Seconds()
		if err != nil || st.Committed != n {
			b.Fatalf("%+v %v", st, err)
		}
		b.StopTimer()
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
	b.ReportMetric(cpu*1e9/float64(b.N*n), "cpu-ns/item")
	b.ReportMetric(float64(b.N*n)/cpu, "items/cpu-s")
}

// envItems is a benchmark's item count: the environment variable name's
// value, 20,000 when it is unset.
func envItems(name string) int {
	n := 20_000
	if s := os.Getenv(name); s != "" {
		fmt.Sscan(s, &n)
	}
	return n
}
