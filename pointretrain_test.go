package wpcdb_test

import (
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestPointRetrain: items of a new vocabulary written to a collection on
// the point index raise its drift past the trigger; the background
// retrain builds a new generation while an upsert and a delete land
// (journaled, replayed before the swap), swaps it in and deletes the old
// generation. Afterwards the index holds exactly the live items, the
// written item is found and the deleted one is not, drift is below the
// trigger (it counts only the item replayed), and recall@10 against the exact scan is ≥ 0.95 on queries of both
// vocabularies.
func TestPointRetrain(t *testing.T) {
	const seed = 37
	t.Logf("seed %d", seed)
	shape := bench.Colbert{Dim: 32, MinPoints: 8, MaxPoints: 40, QueryPoints: 8, Vocab: 1024, Groups: 64, Topics: 40, TopicTokens: 16}
	oldGen, newGen := bench.NewColbert(shape, seed), bench.NewColbert(shape, seed+1000)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: shape.Dim, Similarity: wpcsim.Config{Kernel: maxsim}})
	if err != nil {
		t.Fatal(err)
	}
	items := func(g *bench.Colbert, from, n int, prefix string) []wpcdb.Item {
		out := make([]wpcdb.Item, n)
		for i := range out {
			it, err := g.Item(from + i)
			if err != nil {
				t.Fatal(err)
			}
			it.ID = prefix + it.ID
			out[i] = it
		}
		return out
	}
	if err := c.Upsert(ctx, items(oldGen, 0, 400, "a-")); err != nil {
		t.Fatal(err)
	}
	if err := c.UseFirstStage("points"); err != nil {
		t.Fatal(err)
	}
	before, _ := wpcdb.PointStatsForTest(c)
	late := newGen.Query(99)
	wpcdb.SetPointRetrainHookForTest(c, func() {
		if err := c.Upsert(ctx, []wpcdb.Item{{ID: "late", Cloud: late}}); err != nil {
			t.Error(err)
		}
		if _, err := c.Delete(ctx, "a-doc-7"); err != nil {
			t.Error(err)
		}
	})
	// New topics: the drift crosses the trigger and a retrain starts.
	if err := c.Upsert(ctx, items(newGen, 0, 400, "b-")); err != nil {
		t.Fatal(err)
	}
	wpcdb.WaitBackgroundForTest(c)
	after, _ := wpcdb.PointStatsForTest(c)
	t.Logf("before %+v", before)
	t.Logf("after  %+v", after)
	if after.Gen == before.Gen {
		t.Fatalf("no retrain: generation %d, drift %.3f", after.Gen, after.Drift)
	}
	if after.Items != c.Count() || after.Drift >= 1.2 {
		t.Fatalf("after the retrain: %d items indexed of %d, drift %.3f", after.Items, c.Count(), after.Drift)
	}
	if gens, err := wpcdb.PointGensForTest(c); err != nil || !slices.Equal(gens, []uint32{uint32(after.Gen)}) {
		t.Fatalf("generations in storage %v (%v), want only %d", gens, err, after.Gen)
	}
	res, err := c.Search(ctx, late, wpcdb.SearchOptions{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.FirstStage != "points" || res.Hits[0].ID != "late" {
		t.Fatalf("written during the retrain: best hit %s through %q", res.Hits[0].ID, res.Stats.FirstStage)
	}
	var found, want int
	for j := range 16 {
		q := oldGen.Query(j)
		if j%2 == 1 {
			q = newGen.Query(j)
		}
		ex, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range res.Hits {
			if h.ID == "a-doc-7" {
				t.Fatal("deleted during the retrain, returned")
			}
		}
		found += hitsIn(res.Hits, ex.Hits)
		want += len(ex.Hits)
	}
	if r := float64(found) / float64(want); r < 0.95 {
		t.Fatalf("recall@10 after the retrain %.3f < 0.95", r)
	} else {
		t.Logf("recall@10 after the retrain %.3f", r)
	}
}
