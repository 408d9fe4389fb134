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

// TestCrashPointIndex: a maxsim collection on the point index saves it
// (SaveIndexes), goes on writing and deleting, and crash clones taken
// between the writes reopen with the saved point index (its centroids; the
// postings are in Pebble, written in the items' batches): every acknowledged item is found through the point
// index by its own cloud, and no deleted item is returned.
func TestCrashPointIndex(t *testing.T) {
	const seed = 61
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	shape := bench.Colbert{Dim: 16, MinPoints: 6, MaxPoints: 20, QueryPoints: 6, Vocab: 512, Groups: 32, Topics: 30, TopicTokens: 12}
	gen := bench.NewColbert(shape, seed)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	fs := vfs.NewCrashableMem()
	db := openCrashable(t, fs, -1)
	defer db.Close()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: shape.Dim, Similarity: wpcsim.Config{Kernel: maxsim}})
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]wpcsim.Cloud{}
	next := 0
	write := func(n int) {
		items := make([]wpcdb.Item, n)
		for i := range items {
			it, _ := gen.Item(next)
			next++
			items[i] = it
			live[it.ID] = it.Cloud
		}
		if err := c.Upsert(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	write(500)
	if err := c.UseFirstStage("points"); err != nil {
		t.Fatal(err)
	}
	deleted := map[string]bool{}
	for round := 0; round < 4; round++ {
		if round%2 == 0 {
			if err := db.SaveIndexes(); err != nil {
				t.Fatal(err)
			}
		}
		write(30)
		// Delete one new item in three and a random older one.
		gone := []string{fmt.Sprintf("doc-%d", rng.IntN(next-30))}
		for i := next - 30; i < next; i += 3 {
			gone = append(gone, fmt.Sprintf("doc-%d", i))
		}
		if _, err := c.Delete(ctx, gone...); err != nil {
			t.Fatal(err)
		}
		for _, id := range gone {
			delete(live, id)
			deleted[id] = true
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		verifyPointsCrashed(t, crashed, round, live, deleted, next)
	}
}

func verifyPointsCrashed(t *testing.T, fs vfs.FS, round int, live map[string]wpcsim.Cloud, deleted map[string]bool, next int) {
	t.Helper()
	db, c := openCrashed(t, fs, round)
	defer db.Close()
	if c.Count() != len(live) {
		t.Fatalf("round %d: %d items after the crash, want %d", round, c.Count(), len(live))
	}
	// The point index holds exactly the live items: their postings were
	// written (and deleted) in the items' batches, or synced on load.
	if st, ok := wpcdb.PointStatsForTest(c); !ok || st.Items != len(live) {
		t.Fatalf("round %d: point index %+v (%v), want %d items", round, st, ok, len(live))
	}
	// The newest items (written after any save) and a few older ones.
	for i := next - 1; i >= 0 && i >= next-40; i -= 3 {
		id := fmt.Sprintf("doc-%d", i)
		q, ok := live[id]
		if !ok {
			continue
		}
		res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.FirstStage != "points" {
			t.Fatalf("round %d: first stage %q after the crash, want points", round, res.Stats.FirstStage)
		}
		if res.Hits[0].ID != id {
			t.Fatalf("round %d: %s searched by its own cloud: best hit %s", round, id, res.Hits[0].ID)
		}
		for _, h := range res.Hits {
			if deleted[h.ID] {
				t.Fatalf("round %d: deleted %s returned after the crash", round, h.ID)
			}
		}
	}
}
