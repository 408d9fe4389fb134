package wpcdb_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// retrainCollection opens a database (opts, nil: in memory with the
// defaults) holding a maxsim collection of 400 items of one vocabulary
// (oldGen) on the point index; newGen draws items of another, and items
// makes n items of g from its item from, their IDs prefixed.
func retrainCollection(t *testing.T, seed uint64, opts *wpcdb.Options) (c *wpcdb.Collection, oldGen, newGen *bench.Colbert, items func(g *bench.Colbert, from, n int, prefix string) []wpcdb.Item) {
	t.Helper()
	t.Logf("seed %d", seed)
	shape := bench.Colbert{Dim: 32, MinPoints: 8, MaxPoints: 40, QueryPoints: 8, Vocab: 1024, Groups: 64, Topics: 40, TopicTokens: 16}
	oldGen, newGen = bench.NewColbert(shape, seed), bench.NewColbert(shape, seed+1000)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	var db *wpcdb.DB
	if opts == nil {
		db = openMem(t, vfs.NewMem())
	} else {
		var err error
		if db, err = wpcdb.Open("db", opts); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: shape.Dim, Similarity: wpcsim.Config{Kernel: maxsim}})
	if err != nil {
		t.Fatal(err)
	}
	items = func(g *bench.Colbert, from, n int, prefix string) []wpcdb.Item {
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
	return c, oldGen, newGen, items
}

// TestPointRetrain: items of a new vocabulary written to a collection on
// the point index raise its drift past the trigger; the background
// retrain builds a new generation while an upsert and a delete land
// (journaled, replayed before the swap), swaps it in and deletes the old
// generation. Afterwards the index holds exactly the live items, the
// written item is found and the deleted one is not, drift is below the
// trigger (it counts only the item replayed), and recall@10 against the exact scan is ≥ 0.95 on queries of both
// vocabularies.
func TestPointRetrain(t *testing.T) {
	c, oldGen, newGen, items := retrainCollection(t, 37, nil)
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

// TestSearchAcrossRetrain: a search that took the point index's stage
// just before a retrain swaps in a new one still finds its candidates in
// the old stage's postings: the old generation is deleted only after that
// search ends. Before, it read empty lists and returned no hits.
func TestSearchAcrossRetrain(t *testing.T) {
	// No posting list kept in memory: every search reads them from
	// storage, where the old generation is deleted.
	c, oldGen, newGen, items := retrainCollection(t, 41, &wpcdb.Options{FS: vfs.NewMem(), PointCacheBytes: -1})
	before, _ := wpcdb.PointStatsForTest(c)
	q := oldGen.Query(3)
	exact, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	// The next search stops, holding its stage, until the retrain has
	// swapped the stage.
	took, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	wpcdb.SetSearchHookForTest(c, func() {
		once.Do(func() {
			close(took)
			<-resume
		})
	})
	type result struct {
		res wpcdb.SearchResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10})
		done <- result{res, err}
	}()
	<-took
	// New topics: the drift crosses the trigger and a retrain starts.
	if err := c.Upsert(ctx, items(newGen, 0, 400, "b-")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if st, _ := wpcdb.PointStatsForTest(c); st.Gen != before.Gen {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no retrain within 60 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Give the retrain the time to delete the old generation, which it
	// must not do while the search holds the old stage (it did before).
	for wait := time.Now().Add(time.Second); time.Now().Before(wait); time.Sleep(5 * time.Millisecond) {
		if gens, err := wpcdb.PointGensForTest(c); err != nil || len(gens) == 1 {
			break
		}
	}
	close(resume)
	r := <-done
	wpcdb.WaitBackgroundForTest(c)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := hitsIn(r.res.Hits, exact.Hits); len(r.res.Hits) != 10 || got < 9 {
		t.Fatalf("the search across the retrain: %d hits, %d of the exact top 10", len(r.res.Hits), got)
	}
	if gens, err := wpcdb.PointGensForTest(c); err != nil || len(gens) != 1 {
		t.Fatalf("generations in storage after the retrain: %v (%v), want one", gens, err)
	}
}
