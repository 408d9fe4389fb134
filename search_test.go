package wpcdb_test

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// bruteForce scores every item exactly with an independent scorer and
// returns IDs best first (ties by ID).
// hitsIn counts the hits of want that are among got.
func hitsIn(got, want []wpcdb.Hit) int {
	in := map[string]bool{}
	for _, h := range got {
		in[h.ID] = true
	}
	n := 0
	for _, w := range want {
		if in[w.ID] {
			n++
		}
	}
	return n
}

func bruteForce(t *testing.T, cfg wpcsim.Config, q wpcsim.Cloud, items map[string]wpcdb.Item, k int) []wpcdb.Hit {
	t.Helper()
	sim, _ := wpcsim.New(cfg)
	sc, err := sim.NewScorer(q)
	if err != nil {
		t.Fatal(err)
	}
	var hits []wpcdb.Hit
	for id, it := range items {
		s, err := sc.Score(it.Cloud)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Score == wpcsim.ScoreMMD {
			s = -s
		}
		hits = append(hits, wpcdb.Hit{ID: id, Score: s})
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].ID < hits[j].ID
	})
	return hits[:min(k, len(hits))]
}

func TestSearchExactAndRecall(t *testing.T) {
	const seed = 606
	t.Logf("seed %d", seed)
	synth := bench.NewSynth(bench.Synth{Dim: 24, MinPoints: 3, MaxPoints: 10, Topics: 12}, seed)
	const n = 1500
	for _, mode := range []wpcsim.ScoreMode{wpcsim.ScoreInner, wpcsim.ScoreCosine, wpcsim.ScoreMMD} {
		for _, kind := range []string{collconfig.IndexFlat, collconfig.IndexHNSW} {
			for _, spec := range []string{wpcsim.DefaultKernelSpec, "gaussian(1)", "linear", "imq(0.5)"} {
				db := openMem(t, vfs.NewMem())
				k, _ := wpcsim.ParseKernel(spec)
				cfg := wpcdb.CollectionConfig{Dim: 24, Similarity: wpcsim.Config{Kernel: k, Score: mode}, Index: collconfig.Index{Kind: kind}}
				c, err := db.CreateCollection(ctx, "c", cfg)
				if err != nil {
					t.Fatal(err)
				}
				items := map[string]wpcdb.Item{}
				var batch []wpcdb.Item
				for i := 0; i < n; i++ {
					it := synth.Item(i)
					items[it.ID] = it
					batch = append(batch, it)
				}
				if err := c.Upsert(ctx, batch); err != nil {
					t.Fatal(err)
				}
				if err := c.WaitIndex(ctx); err != nil {
					t.Fatal(err)
				}
				var found, total int
				for j := 0; j < 12; j++ {
					q := synth.Query(j, 8)
					want := bruteForce(t, c.Config().Similarity, q, items, 10)
					exact, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Exact: true})
					if err != nil {
						t.Fatal(err)
					}
					for i := range want {
						if exact.Hits[i].ID != want[i].ID || exact.Hits[i].Score != want[i].Score {
							t.Fatalf("%s %s query %d: exact hit %d = %+v, brute force %+v", mode, spec, j, i, exact.Hits[i], want[i])
						}
					}
					res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10})
					if err != nil {
						t.Fatal(err)
					}
					if res.Stats.Plan != "index" || res.Stats.FirstStage != kind {
						t.Fatalf("plan %q (%s), want index (%s)", res.Stats.Plan, res.Stats.FirstStage, kind)
					}
					wantScore := map[string]float64{}
					for _, h := range want {
						wantScore[h.ID] = h.Score
					}
					for _, h := range res.Hits {
						if w, ok := wantScore[h.ID]; ok && math.Abs(h.Score-w) > 1e-4*math.Abs(w)+1e-6 {
							t.Fatalf("%s %s query %d: hit %s scored %v, brute force %v", mode, spec, j, h.ID, h.Score, w)
						}
					}
					// The linear kernel's first stage is exact: no rerank.
					if spec == "linear" && res.Stats.Reranked != 0 {
						t.Fatalf("%s linear query %d: %d items reranked, want 0 (exact first stage)", mode, j, res.Stats.Reranked)
					}
					found += hitsIn(res.Hits, want)
					total += len(want)
				}
				recall := float64(found) / float64(total)
				t.Logf("%s %s %s (%s): recall@10 %.3f", mode, kind, spec, c.IndexStatus().Representation, recall)
				if recall < 0.95 {
					t.Errorf("seed %d %s %s %s: recall@10 %.3f below 0.95", seed, mode, kind, spec, recall)
				}
				db.Close()
			}
		}
	}
}

func TestSearchErrorsAndRerank(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 4})
	items := randomItems(1, 30, 4, 4, "r")
	c.Upsert(ctx, items)
	q := items[0].Cloud
	for _, tc := range []struct {
		opts wpcdb.SearchOptions
		q    wpcsim.Cloud
		want string
	}{
		{wpcdb.SearchOptions{K: -1}, q, "k must be between 1 and 10000"},
		{wpcdb.SearchOptions{K: 1, Offset: -1}, q, "offset: must not be negative"},
		{wpcdb.SearchOptions{K: 10, Offset: 9991}, q, "offset + k: at most 10000"},
		{wpcdb.SearchOptions{K: 10001}, q, "k must be between 1 and 10000"},
		{wpcdb.SearchOptions{K: 1}, wpcsim.Cloud{Dim: 3, Weights: []float32{1}, Points: []float32{1, 0, 0}}, "query: points: dimension 3 does not match the required 4"},
		{wpcdb.SearchOptions{K: 1, Candidates: -1}, q, "must not be negative"},
	} {
		_, err := c.Search(ctx, tc.q, tc.opts)
		if !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v", tc.opts, err)
		}
	}
	res, err := c.Rerank(ctx, q, []string{"r3", "r0", "r7"})
	if err != nil || len(res.Hits) != 3 || res.Hits[0].ID != "r0" {
		t.Errorf("rerank: %+v %v", res.Hits, err)
	}
	// Unknown IDs are listed, not an error; the known ones are scored.
	res, err = c.Rerank(ctx, q, []string{"zip", "r1", "nope", "zip"})
	if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != "r1" || strings.Join(res.Missing, ",") != "zip,nope" {
		t.Errorf("rerank unknown: %+v missing %v, %v", res.Hits, res.Missing, err)
	}
	// Deleted items never come back.
	c.Delete(ctx, "r0")
	res, _ = c.Search(ctx, q, wpcdb.SearchOptions{K: 30})
	for _, h := range res.Hits {
		if h.ID == "r0" {
			t.Error("deleted item returned")
		}
	}
	if len(res.Hits) != 29 {
		t.Errorf("%d hits, want 29", len(res.Hits))
	}
}

// matches evaluates the test filters directly on an item's attributes.
var testFilters = []struct {
	expr  string
	match func(a map[string]any) bool
}{
	{`year >= 2007`, func(a map[string]any) bool { return a["year"].(float64) >= 2007 }},
	{`topic IN ("t1", "t2", "t3")`, func(a map[string]any) bool { t := a["topic"]; return t == "t1" || t == "t2" || t == "t3" }},
	{`flag = true`, func(a map[string]any) bool { return a["flag"] == true }},
	{`topic != "t0" AND NOT (year < 2000 OR year > 2020)`, func(a map[string]any) bool {
		y := a["year"].(float64)
		return a["topic"] != "t0" && !(y < 2000 || y > 2020)
	}},
	{`missing = 1 OR year = 1995`, func(a map[string]any) bool { return a["year"].(float64) == 1995 }},
}

// TestFilteredSearch: every hit satisfies its filter, exact filtered search
// equals brute force over the passing items, and the default search keeps
// recall@10 ≥ 0.95 for filters passing about 50%, 5%, 3% and 1% of items.
func TestFilteredSearch(t *testing.T) {
	const seed = 4040
	t.Logf("seed %d", seed)
	synth := bench.NewSynth(bench.Synth{Dim: 24, MinPoints: 3, MaxPoints: 10, Topics: 64}, seed)
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	for _, kind := range []string{collconfig.IndexFlat, collconfig.IndexHNSW} {
		cfg := wpcdb.CollectionConfig{Dim: 24, Index: collconfig.Index{Kind: kind}}
		cfg.Features.Dim = 256
		c, _ := db.CreateCollection(ctx, "c-"+kind, cfg)
		items := map[string]wpcdb.Item{}
		var batch []wpcdb.Item
		for i := 0; i < 4000; i++ {
			it := synth.Item(i)
			items[it.ID] = it
			batch = append(batch, it)
		}
		if err := c.Upsert(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitIndex(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range testFilters {
			passing := map[string]wpcdb.Item{}
			for id, it := range items {
				if f.match(it.Attrs) {
					passing[id] = it
				}
			}
			var found, total int
			plans := map[string]int{}
			for j := 0; j < 10; j++ {
				q := synth.Query(j, 8)
				want := bruteForce(t, c.Config().Similarity, q, passing, 10)
				exact, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: f.expr, Exact: true})
				if err != nil {
					t.Fatal(err)
				}
				if len(exact.Hits) != len(want) {
					t.Fatalf("%s: exact %d hits, brute force %d", f.expr, len(exact.Hits), len(want))
				}
				for i := range want {
					if exact.Hits[i].ID != want[i].ID {
						t.Fatalf("%s: exact hit %d = %s, brute force %s", f.expr, i, exact.Hits[i].ID, want[i].ID)
					}
				}
				res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: f.expr})
				if err != nil {
					t.Fatal(err)
				}
				plans[res.Stats.Plan+"/"+res.Stats.FirstStage]++
				if res.Stats.Passing != len(passing) {
					t.Errorf("%s: stats say %d pass, %d do", f.expr, res.Stats.Passing, len(passing))
				}
				for _, h := range res.Hits {
					if _, ok := passing[h.ID]; !ok {
						t.Fatalf("%s: hit %s does not satisfy the filter", f.expr, h.ID)
					}
				}
				found += hitsIn(res.Hits, want)
				total += len(want)
			}
			recall := float64(found) / float64(total)
			t.Logf("%s %-50s %4d pass (%.1f%%), plans %v, recall@10 %.3f", kind, f.expr, len(passing), 100*float64(len(passing))/4000, plans, recall)
			if recall < 0.95 {
				t.Errorf("seed %d: %s: %s: recall@10 %.3f below 0.95", seed, kind, f.expr, recall)
			}
		}
	}
	c, _ := db.Collection("c-flat")
	for _, bad := range []string{`year >=`, `color = red`, `(a = 1`, `a < "x"`} {
		_, err := c.Search(ctx, synth.Query(0, 4), wpcdb.SearchOptions{K: 3, Filter: bad})
		if !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), "column") {
			t.Errorf("filter %q: %v", bad, err)
		}
	}
}

// TestExactFirstStageTies: an exact first stage (the linear kernel) looks
// up only the IDs that can reach the top k. Twenty identical clouds tie for
// the best score, written in reverse ID order so their internal IDs run
// against their IDs: the hits must still be the k smallest IDs, as the
// exact scan orders ties, and a deleted one must give its place to the next.
func TestExactFirstStageTies(t *testing.T) {
	const seed = 607
	t.Logf("seed %d", seed)
	synth := bench.NewSynth(bench.Synth{Dim: 16, MinPoints: 2, MaxPoints: 6, Topics: 8}, seed)
	for _, kind := range []string{collconfig.IndexFlat, collconfig.IndexHNSW} {
		db := openMem(t, vfs.NewMem())
		k, _ := wpcsim.ParseKernel("linear")
		c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 16, Similarity: wpcsim.Config{Kernel: k}, Index: collconfig.Index{Kind: kind}})
		if err != nil {
			t.Fatal(err)
		}
		// One point, weighted far above the generated clouds' weights, so
		// the twenty are the best for a query of that point.
		top := wpcsim.Cloud{Dim: 16, Points: make([]float32, 16), Weights: []float32{100}}
		for i := range top.Points {
			top.Points[i] = 1
		}
		var batch []wpcdb.Item
		for i := 19; i >= 0; i-- {
			batch = append(batch, wpcdb.Item{ID: fmt.Sprintf("tie-%02d", i), Cloud: top})
		}
		for i := 0; i < 400; i++ {
			batch = append(batch, synth.Item(i))
		}
		if err := c.Upsert(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitIndex(ctx); err != nil {
			t.Fatal(err)
		}
		check := func(want ...string) {
			t.Helper()
			res, err := c.Search(ctx, top, wpcdb.SearchOptions{K: 5, Candidates: 50})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stats.Plan != "index" || res.Stats.Reranked != 0 {
				t.Fatalf("%s: plan %q, %d reranked; want the exact first stage", kind, res.Stats.Plan, res.Stats.Reranked)
			}
			var got []string
			for _, h := range res.Hits {
				got = append(got, h.ID)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("%s: hits %v, want %v", kind, got, want)
			}
		}
		check("tie-00", "tie-01", "tie-02", "tie-03", "tie-04")
		if _, err := c.Delete(ctx, "tie-01", "tie-03"); err != nil {
			t.Fatal(err)
		}
		check("tie-00", "tie-02", "tie-04", "tie-05", "tie-06")
		db.Close()
	}
}
