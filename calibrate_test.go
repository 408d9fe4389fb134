package wpcdb_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/internal/wpctest"
)

// TestCalibrationSurvivesReopen: a calibrated representation is saved with
// the index and comes back on open, searches through it stay exact-scored
// with recall, and a crash (no Close after more writes) keeps it too: the
// saved index and its representation are replayed, not discarded.
func TestCalibrationSurvivesReopen(t *testing.T) {
	const seed = 77
	t.Logf("seed %d", seed)
	fs := vfs.NewCrashableMem()
	db := openMem(t, fs)
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 16})
	if err != nil {
		t.Fatal(err)
	}
	syn := bench.NewSynth(bench.Synth{Dim: 16, MinPoints: 3, MaxPoints: 8, Topics: 10}, seed)
	var items []wpcdb.Item
	for i := 0; i < 900; i++ {
		items = append(items, syn.Item(i))
	}
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	cal, err := c.Calibrate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := c.IndexStatus()
	t.Logf("calibrated: %s (%v)", cal.Chosen, cal.Measured)
	if st.Representation != cal.Chosen.String() || st.Recall != cal.Chosen.Recall || st.Recall < 0.98 {
		t.Fatalf("status %+v after choosing %s (recall %v)", st, cal.Chosen, cal.Chosen.Recall)
	}
	if len(cal.Measured) < 2 || cal.Measured[len(cal.Measured)-1].Representation != "phi" {
		t.Fatalf("measured %v: want the candidates ending with phi", cal.Measured)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openMem(t, fs)
	if c, err = db.Collection("c"); err != nil {
		t.Fatal(err)
	}
	if got := c.IndexStatus(); got.Representation != st.Representation || got.Recall != st.Recall {
		t.Fatalf("after reopen: %+v, want %s (recall %v)", got, st.Representation, st.Recall)
	}
	// More writes, then a crash: the clone holds what was synced.
	if err := c.Upsert(ctx, []wpcdb.Item{syn.Item(5000), syn.Item(5001)}); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: wpctest.NewRand(seed)})
	db.Close()

	db = openMem(t, crashed)
	defer db.Close()
	if c, err = db.Collection("c"); err != nil {
		t.Fatal(err)
	}
	if got := c.IndexStatus(); got.Representation != st.Representation || got.InGraph+got.Buffered != 902 {
		t.Fatalf("after more writes and a crash: %+v, want %s over 902 items", got, st.Representation)
	}
	var found, total int
	for j := 0; j < 10; j++ {
		q := syn.Query(j, 5)
		exact, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 10})
		if err != nil {
			t.Fatal(err)
		}
		found += hitsIn(res.Hits, exact.Hits)
		total += len(exact.Hits)
	}
	if recall := float64(found) / float64(total); recall < 0.95 {
		t.Fatalf("recall@10 %.3f through %s, want ≥ 0.95", recall, st.Representation)
	}
}
