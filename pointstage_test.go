package wpcdb_test

import (
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestMaxSimPointIndex: a maxsim collection of ColBERT-shaped clouds
// calibrates to the point index, and its default search holds recall@10
// ≥ 0.95 against the exact scan with and without a filter passing about a
// third of the items; deletes and upserts are reflected at once, and a
// reopened collection rebuilds the point index.
func TestMaxSimPointIndex(t *testing.T) {
	const seed = 16
	t.Logf("seed %d", seed)
	shape := bench.Colbert{Dim: 32, MinPoints: 8, MaxPoints: 40, QueryPoints: 8, Vocab: 1024, Groups: 64, Topics: 40, TopicTokens: 16}
	gen := bench.NewColbert(shape, seed)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	fs := vfs.NewMem()
	db := openMem(t, fs)
	defer func() { db.Close() }()
	c, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: shape.Dim, Similarity: wpcsim.Config{Kernel: maxsim}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1200
	items := make([]wpcdb.Item, n)
	for i := range items {
		if items[i], err = gen.Item(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	cal, err := c.Calibrate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cal.Chosen.Kind != "points" {
		t.Fatalf("calibration chose %s: %+v", cal.Chosen, cal.Measured)
	}
	t.Logf("calibration: %+v", cal.Measured)

	queries := make([]wpcsim.Cloud, 20)
	for j := range queries {
		queries[j] = gen.Query(j)
	}
	check := func(when, filter string) {
		t.Helper()
		var found, want int
		for j, q := range queries {
			ex, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: filter, Exact: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: filter})
			if err != nil {
				t.Fatal(err)
			}
			if res.Stats.FirstStage != "points" {
				t.Fatalf("%s: query %d: first stage %q (plan %s), want points", when, j, res.Stats.FirstStage, res.Stats.Plan)
			}
			found += hitsIn(res.Hits, ex.Hits)
			want += len(ex.Hits)
		}
		r := float64(found) / float64(want)
		t.Logf("%s, filter %q: recall@10 %.3f", when, filter, r)
		if r < 0.95 {
			t.Errorf("%s, filter %q: recall@10 %.3f < 0.95 (seed %d)", when, filter, r, seed)
		}
	}
	check("built", "")
	check("built", "year >= 2013") // 12 of 35 years

	// A query with a negative weight goes to the FDE, at the FDE's default
	// depth (it had the point index's 50).
	signed := queries[2]
	signed.Weights = append([]float32(nil), signed.Weights...)
	signed.Weights[0] = -1
	res, err := c.Search(ctx, signed, wpcdb.SearchOptions{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.FirstStage == "points" || res.Stats.Candidates < 400 {
		t.Fatalf("a signed query: first stage %q, %d candidates; want the FDE's, at least 400", res.Stats.FirstStage, res.Stats.Candidates)
	}

	// Deletes and upserts reach the index: the best hit deleted is gone, an
	// item replaced by the query's own cloud is the best.
	q := queries[0]
	res, err = c.Search(ctx, q, wpcdb.SearchOptions{K: 3})
	if err != nil {
		t.Fatal(err)
	}
	gone := res.Hits[0].ID
	if _, err := c.Delete(ctx, gone); err != nil {
		t.Fatal(err)
	}
	target := items[n-1].ID
	if err := c.Upsert(ctx, []wpcdb.Item{{ID: target, Cloud: q}}); err != nil {
		t.Fatal(err)
	}
	res, err = c.Search(ctx, q, wpcdb.SearchOptions{K: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hits[0].ID != target {
		t.Fatalf("after upserting %s with the query's cloud, the best hit is %s", target, res.Hits[0].ID)
	}
	for _, h := range res.Hits {
		if h.ID == gone {
			t.Fatalf("deleted %s returned", gone)
		}
	}

	// Reopened, the point index is read from the saved index (its
	// generation of postings shows it was not rebuilt) and the item written
	// before it was loaded gets its postings.
	before, ok := wpcdb.PointStatsForTest(c)
	if !ok || before.Items != n-1 {
		t.Fatalf("before the save: %+v, %v", before, ok)
	}
	db.Close()
	db = openMem(t, fs)
	if c, err = db.Collection("m"); err != nil {
		t.Fatal(err)
	}
	if st := c.IndexStatus(); st.Representation != "points" || st.Loaded || st.Points == nil ||
		st.Points.Items != before.Items || st.Points.Points != before.Points {
		t.Fatalf("reopened, before a search: %+v (points %+v), want the saved representation points, not loaded, with %+v's counts", st, st.Points, before)
	}
	late := queries[1]
	if err := c.Upsert(ctx, []wpcdb.Item{{ID: "late", Cloud: late}}); err != nil {
		t.Fatal(err)
	}
	res, err = c.Search(ctx, late, wpcdb.SearchOptions{K: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Hits[0].ID != "late" || res.Stats.FirstStage != "points" {
		t.Fatalf("written after the save: best hit %s through %q", res.Hits[0].ID, res.Stats.FirstStage)
	}
	after, _ := wpcdb.PointStatsForTest(c)
	if after.Gen != before.Gen || after.Items != before.Items+1 {
		t.Fatalf("reopened: %+v, saved %+v plus one item", after, before)
	}
	check("reopened", "")
	if st := c.IndexStatus(); st.Representation != "points" {
		t.Fatalf("reopened: representation %s", st.Representation)
	}
	if err := c.UseFirstStage("phi"); err == nil {
		t.Fatal(`UseFirstStage("phi") accepted`)
	}
}

// TestMaxSimRecallShapes: default MaxSim search (after calibration, which
// chooses the first stage) holds recall@10 ≥ 0.95 against the exact scan,
// with and without a filter passing about a third of the items, on
// ColBERT-shaped clustered data (tokens in semantic groups: many near
// duplicates) of several shapes: 8 to 300 points a cloud, d from 32 to
// 128.
func TestMaxSimRecallShapes(t *testing.T) {
	const seed = 23
	t.Logf("seed %d", seed)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	for _, tc := range []struct {
		name  string
		n     int
		shape bench.Colbert
	}{
		{"d32-8to40", 600, bench.Colbert{Dim: 32, MinPoints: 8, MaxPoints: 40, QueryPoints: 8, Vocab: 1024, Groups: 64, Topics: 40, TopicTokens: 16}},
		{"d64-60to300", 200, bench.Colbert{Dim: 64, MinPoints: 60, MaxPoints: 300, QueryPoints: 32, Vocab: 2048, Groups: 128, Topics: 40, TopicTokens: 32}},
		{"d128-8to80", 300, bench.Colbert{Dim: 128, MinPoints: 8, MaxPoints: 80, QueryPoints: 16, Vocab: 2048, Groups: 128, Topics: 60, TopicTokens: 24}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := bench.NewColbert(tc.shape, seed)
			db := openMem(t, vfs.NewMem())
			defer db.Close()
			c, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: tc.shape.Dim, Similarity: wpcsim.Config{Kernel: maxsim}})
			if err != nil {
				t.Fatal(err)
			}
			items := make([]wpcdb.Item, tc.n)
			for i := range items {
				if items[i], err = gen.Item(i); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Upsert(ctx, items); err != nil {
				t.Fatal(err)
			}
			cal, err := c.Calibrate(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("calibration chose %s: %+v", cal.Chosen, cal.Measured)
			for _, filter := range []string{"", "year >= 2013"} {
				var found, want int
				for j := range 8 {
					q := gen.Query(j)
					ex, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: filter, Exact: true})
					if err != nil {
						t.Fatal(err)
					}
					res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: filter})
					if err != nil {
						t.Fatal(err)
					}
					found += hitsIn(res.Hits, ex.Hits)
					want += len(ex.Hits)
				}
				r := float64(found) / float64(want)
				t.Logf("filter %q: recall@10 %.3f", filter, r)
				if r < 0.95 {
					t.Errorf("filter %q: recall@10 %.3f < 0.95 (seed %d)", filter, r, seed)
				}
			}
		})
	}
}

// TestPointCacheBudget: collections whose point index keeps no posting
// list resident (every search reads Pebble), a few (a 16 KiB budget) or
// all (the default) give the same hits, before and after upserts and
// deletes, and describe's resident bytes count the resident lists.
func TestPointCacheBudget(t *testing.T) {
	const seed = 21
	t.Logf("seed %d", seed)
	shape := bench.Colbert{Dim: 32, MinPoints: 8, MaxPoints: 40, QueryPoints: 8, Vocab: 1024, Groups: 64, Topics: 40, TopicTokens: 16}
	gen := bench.NewColbert(shape, seed)
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	items := make([]wpcdb.Item, 450)
	for i := range items {
		var err error
		if items[i], err = gen.Item(i); err != nil {
			t.Fatal(err)
		}
	}
	budgets := []int64{-1, 16 << 10, 0}
	colls := make([]*wpcdb.Collection, len(budgets))
	for i, b := range budgets {
		db, err := wpcdb.Open("db", &wpcdb.Options{FS: vfs.NewMem(), PointCacheBytes: b})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: shape.Dim, Similarity: wpcsim.Config{Kernel: maxsim}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Upsert(ctx, items); err != nil {
			t.Fatal(err)
		}
		if err := c.UseFirstStage("points"); err != nil {
			t.Fatal(err)
		}
		colls[i] = c
	}
	search := func(when string) {
		t.Helper()
		for j := range 15 {
			q := gen.Query(j)
			filter := ""
			if j%3 == 2 {
				filter = "year >= 1996" // 29 of 35 years: the index, not the exact scan
			}
			var want []wpcdb.Hit
			for i, c := range colls {
				res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Filter: filter})
				if err != nil {
					t.Fatal(err)
				}
				if res.Stats.FirstStage != "points" {
					t.Fatalf("%s, query %d: first stage %q (plan %s)", when, j, res.Stats.FirstStage, res.Stats.Plan)
				}
				if i == 0 {
					want = res.Hits
				} else if !slices.EqualFunc(res.Hits, want, func(a, b wpcdb.Hit) bool { return a.ID == b.ID && a.Score == b.Score }) {
					t.Fatalf("%s, query %d: budget %d: hits %v, reading Pebble %v", when, j, budgets[i], res.Hits, want)
				}
			}
		}
	}
	search("built")
	for _, c := range colls {
		if _, err := c.Delete(ctx, items[3].ID, items[10].ID); err != nil {
			t.Fatal(err)
		}
		if err := c.Upsert(ctx, []wpcdb.Item{{ID: items[5].ID, Cloud: gen.Query(0)}, {ID: "new", Cloud: gen.Query(1)}}); err != nil {
			t.Fatal(err)
		}
	}
	search("after writes")
	none, few, all := colls[0].IndexStatus().Points, colls[1].IndexStatus().Points, colls[2].IndexStatus().Points
	if !(none.ResidentBytes < few.ResidentBytes && few.ResidentBytes <= none.ResidentBytes+16<<10+8*1024 && few.ResidentBytes < all.ResidentBytes) {
		t.Fatalf("resident bytes: %d with no budget, %d with 16 KiB, %d with the default", none.ResidentBytes, few.ResidentBytes, all.ResidentBytes)
	}
}
