package wpcdb_test

import (
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

var metaSeed = flag.Uint64("meta.seed", 0, "run the metamorphic test with only this seed")

// TestMetamorphic runs random operation logs — upserts (new and replacing
// IDs), deletes, reopens, snapshots and searches — against randomized
// collection options, and checks every search against a brute-force model
// of what the database should hold: exact mode must equal brute force
// exactly, deleted items never appear, and the default two-stage search
// keeps a recall floor. Seeds are printed; rerun one with -meta.seed.
func TestMetamorphic(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	if testing.Short() {
		seeds = seeds[:2]
	}
	if *metaSeed != 0 {
		seeds = []uint64{*metaSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runMetamorphic(t, seed) })
	}
}

func runMetamorphic(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 77))
	kernels := []string{wpcsim.DefaultKernelSpec, "linear", "gaussian(1)", "imq(0.5)", "0.5*linear+imq(1)", "maxsim"}
	spec := kernels[rng.IntN(len(kernels))]
	k, _ := wpcsim.ParseKernel(spec)
	mode := wpcsim.ScoreMode(rng.IntN(3))
	if k.IsMaxSim() {
		mode = wpcsim.ScoreInner
	}
	cfg := wpcdb.CollectionConfig{
		Dim:        4 + rng.IntN(20),
		MaxPoints:  12,
		Encoding:   collconfig.Encoding(rng.IntN(3)),
		Similarity: wpcsim.Config{Kernel: k, Norm: wpcsim.Norm(rng.IntN(2)), Score: mode},
	}
	cfg.Features.Dim = 64 << rng.IntN(3)
	cfg.Index.Kind = []string{collconfig.IndexAuto, collconfig.IndexFlat, collconfig.IndexHNSW}[rng.IntN(3)]
	if cfg.Index.Kind == collconfig.IndexAuto {
		cfg.Index.GraphAt = 50 + rng.IntN(300)
	}
	t.Logf("seed %d: kernel %s, score %s, norm %s, dim %d, encoding %s, rff %d, index %s (graph at %d)", seed, spec, mode, cfg.Similarity.Norm, cfg.Dim, cfg.Encoding, cfg.Features.Dim, cfg.Index.Kind, cfg.Index.GraphAt)
	synth := bench.NewSynth(bench.Synth{Dim: cfg.Dim, MinPoints: 1, MaxPoints: 12, Topics: 8}, seed)

	fs := vfs.NewMem()
	db := openMem(t, fs)
	defer func() { db.Close() }()
	c, err := db.CreateCollection(ctx, "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	model := map[string]wpcsim.Cloud{} // what the database should hold, as stored
	next := 0
	var found, total, indexed int
	for step := 0; step < 60; step++ {
		switch op := rng.IntN(10); {
		case op < 4: // upsert a batch: new items and replacements
			var batch []wpcdb.Item
			n := 1 + rng.IntN(150)
			for i := 0; i < n; i++ {
				var it wpcdb.Item
				if len(model) > 0 && rng.IntN(4) == 0 {
					it = synth.Item(rng.IntN(next)) // an existing or deleted ID, new content
					it.Cloud = synth.Item(next + 1000 + i).Cloud
				} else {
					it = synth.Item(next)
					next++
				}
				batch = append(batch, it)
			}
			if err := c.Upsert(ctx, batch); err != nil {
				t.Fatalf("step %d: upsert: %v", step, err)
			}
			for _, it := range batch {
				q, _ := storage.Quantize(cfg.Encoding, it.Cloud)
				model[it.ID] = q
			}
		case op < 5: // delete some, some unknown
			var ids []string
			// In ID order: the same seed deletes the same items (a map's
			// order would make a seed's run unrepeatable).
			for _, id := range slices.Sorted(maps.Keys(model)) {
				if rng.IntN(5) == 0 {
					ids = append(ids, id)
				}
			}
			ids = append(ids, "never-existed")
			n, err := c.Delete(ctx, ids...)
			if err != nil || n != len(ids)-1 {
				t.Fatalf("step %d: delete: %d of %d, %v", step, n, len(ids)-1, err)
			}
			for _, id := range ids {
				delete(model, id)
			}
		case op < 6: // reopen
			db.Close()
			db = openMem(t, fs)
			if c, err = db.Collection("c"); err != nil {
				t.Fatalf("step %d: reopen: %v", step, err)
			}
		case op < 7 && rng.IntN(2) == 0: // calibrate the first stage
			cal, err := c.Calibrate(ctx, nil)
			if errors.Is(err, firststage.ErrTooFew) {
				continue
			}
			if err != nil {
				t.Fatalf("step %d: calibrate: %v", step, err)
			}
			t.Logf("step %d: calibrated on %d items: %s (%v)", step, len(model), cal.Chosen, cal.Measured)
			if k.IsMaxSim() && rng.IntN(2) == 0 {
				// The point index, whatever the calibration measured: its
				// searches face the same oracle.
				if err := c.UseFirstStage("points"); err != nil {
					t.Fatalf("step %d: use the point index: %v", step, err)
				}
				t.Logf("step %d: first stage pinned to points", step)
			}
		default: // search
			if len(model) == 0 {
				continue
			}
			q := synth.Query(step, 1+rng.IntN(10))
			kk := 1 + rng.IntN(15)
			items := map[string]wpcdb.Item{}
			for id, cl := range model {
				items[id] = wpcdb.Item{ID: id, Cloud: cl}
			}
			want := bruteForce(t, c.Config().Similarity, q, items, kk)
			exact, err := c.Search(ctx, q, wpcdb.SearchOptions{K: kk, Exact: true})
			if err != nil {
				t.Fatalf("step %d: exact search: %v", step, err)
			}
			if len(exact.Hits) != len(want) {
				t.Fatalf("step %d: exact search returned %d hits, brute force %d", step, len(exact.Hits), len(want))
			}
			for i := range want {
				if exact.Hits[i].ID != want[i].ID || exact.Hits[i].Score != want[i].Score {
					t.Fatalf("step %d: exact hit %d: %+v, brute force %+v", step, i, exact.Hits[i], want[i])
				}
			}
			res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: kk})
			if err != nil {
				t.Fatalf("step %d: search: %v", step, err)
			}
			if res.Stats.Plan == "index" {
				indexed++
			}
			ids := make([]string, len(res.Hits))
			for i, h := range res.Hits {
				if _, ok := model[h.ID]; !ok {
					t.Fatalf("step %d: search returned %s, which is not live", step, h.ID)
				}
				ids[i] = h.ID
			}
			// Every reported score is exact, whichever stage computed it.
			rr, err := c.Rerank(ctx, q, ids)
			if err != nil {
				t.Fatalf("step %d: rerank: %v", step, err)
			}
			exactOf := map[string]float64{}
			for _, h := range rr.Hits {
				exactOf[h.ID] = h.Score
			}
			for _, h := range res.Hits {
				if e := exactOf[h.ID]; math.Abs(h.Score-e) > 1e-4*math.Abs(e)+1e-5 {
					t.Fatalf("step %d: hit %s scored %v, exact %v (plan %s)", step, h.ID, h.Score, e, res.Stats.Plan)
				}
			}
			found += hitsIn(res.Hits, want)
			total += len(want)
		}
		if c.Count() != len(model) {
			t.Fatalf("step %d: count %d, model %d", step, c.Count(), len(model))
		}
	}
	if total > 0 {
		recall := float64(found) / float64(total)
		t.Logf("seed %d: recall %.3f over %d expected hits, %d searches through the index, %d items at the end", seed, recall, total, indexed, len(model))
		if recall < 0.9 {
			t.Errorf("seed %d: recall %.3f below the floor 0.9", seed, recall)
		}
	}
}
