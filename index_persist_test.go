package wpcdb_test

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestIndexSavedAndCaughtUp: Close saves the first-stage index; writes made
// after the save and then lost to a crash of the process (no Close) are
// replayed from the change log on the next open, so the loaded index equals
// one rebuilt from every stored φ.
func TestIndexSavedAndCaughtUp(t *testing.T) {
	const seed = 31337
	t.Logf("seed %d", seed)
	for _, tc := range []struct {
		mode wpcsim.ScoreMode
		kind string
	}{
		{wpcsim.ScoreInner, collconfig.IndexFlat}, {wpcsim.ScoreCosine, collconfig.IndexAuto}, {wpcsim.ScoreMMD, collconfig.IndexAuto},
		{wpcsim.ScoreInner, collconfig.IndexHNSW}, {wpcsim.ScoreCosine, collconfig.IndexHNSW}, {wpcsim.ScoreMMD, collconfig.IndexHNSW},
	} {
		mode := tc.mode
		fs := vfs.NewCrashableMem()
		db := openMem(t, fs)
		c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Similarity: wpcsim.Config{Score: mode}, Index: collconfig.Index{Kind: tc.kind}})
		c.Upsert(ctx, randomItems(seed, 300, 5, 8, "a"))
		if err := db.Close(); err != nil { // saves the index
			t.Fatal(err)
		}
		db = openMem(t, fs)
		c, _ = db.Collection("c")
		// After the save: replacements, new items, deletes; then a crash.
		repl := randomItems(seed+1, 50, 5, 8, "a")
		c.Upsert(ctx, append(repl, randomItems(seed+2, 40, 5, 8, "b")...))
		if err := db.SaveIndexes(); err != nil { // a periodic save, as serve does
			t.Fatal(err)
		}
		c.Delete(ctx, "a3", "a77", "b5")
		crashed := fs.CrashClone(vfs.CrashCloneCfg{})
		db.Close()

		db2 := openMem(t, crashed)
		c2, err := db2.Collection("c")
		if err != nil {
			t.Fatal(err)
		}
		if c2.Count() != 300+40-3 {
			t.Fatalf("%s: count %d", mode, c2.Count())
		}
		loaded, fresh, dim := wpcdb.FirstStageForTest(c2)
		if loaded.Len() != fresh.Len() || !loaded.IDs().Equals(fresh.IDs()) {
			t.Fatalf("%s %s: loaded index has %d vectors, rebuilt %d (or other IDs)", mode, tc.kind, loaded.Len(), fresh.Len())
		}
		rng := rand.New(rand.NewPCG(seed, 9))
		if tc.kind == collconfig.IndexHNSW {
			// A graph is approximate: the loaded one must agree with the
			// rebuilt exact scan on most of each top 10.
			loaded.Wait()
			if !loaded.HasGraph() {
				t.Fatalf("%s: hnsw collection has no graph after reopening", mode)
			}
			var hit, total int
			for trial := 0; trial < 20; trial++ {
				q := make([]float32, dim)
				for i := range q {
					q[i] = float32(rng.NormFloat64())
				}
				a, _ := loaded.Search(q, 10, nil, index.Params{})
				b, _ := fresh.Search(q, 10, nil, index.Params{})
				in := map[uint32]bool{}
				for _, r := range b {
					in[r.ID] = true
				}
				for _, r := range a {
					if in[r.ID] {
						hit++
					}
				}
				total += len(b)
			}
			if r := float64(hit) / float64(total); r < 0.9 {
				t.Fatalf("%s: loaded graph's recall@10 against the rebuilt exact scan %.3f", mode, r)
			}
			db2.Close()
			continue
		}
		for trial := 0; trial < 20; trial++ {
			q := make([]float32, dim)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			a, _ := loaded.Search(q, 25, nil, index.Params{})
			b, _ := fresh.Search(q, 25, nil, index.Params{})
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s trial %d: loaded index answers %v, rebuilt %v", mode, trial, a[:3], b[:3])
			}
		}
		db2.Close()
	}
}
