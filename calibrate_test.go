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

// TestLoadDoneAfterSmallLoads: a calibrated collection is not recalibrated
// at the end of a small load that happens to complete a growth by a
// quarter (a stream of a few items would wait for the whole calibration),
// but is at the end of a load that alone wrote a quarter of it, and a
// LoadDone of unknown size recalibrates as before (seed 77).
func TestLoadDoneAfterSmallLoads(t *testing.T) {
	const seed = 77
	t.Logf("seed %d", seed)
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8})
	if err != nil {
		t.Fatal(err)
	}
	items := randomItems(seed, 1600, 4, 8, "a")
	if err := c.Upsert(ctx, items[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadDoneAfter(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if got := wpcdb.CalibratedAtForTest(c); got != 1000 {
		t.Fatalf("first load: calibrated at %d, want 1000", got)
	}
	// 300 items in small loads: grown by 30%, but no load was a quarter.
	for i := 1000; i < 1300; i += 10 {
		if err := c.Upsert(ctx, items[i:i+10]); err != nil {
			t.Fatal(err)
		}
		if err := c.LoadDoneAfter(ctx, 10); err != nil {
			t.Fatal(err)
		}
	}
	if got := wpcdb.CalibratedAtForTest(c); got != 1000 {
		t.Fatalf("after small loads: calibrated at %d, want still 1000", got)
	}
	if err := c.Upsert(ctx, items[1300:]); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadDoneAfter(ctx, 300); err != nil {
		t.Fatal(err)
	}
	if got := wpcdb.CalibratedAtForTest(c); got != 1600 {
		t.Fatalf("after a load of 300 items: calibrated at %d, want 1600", got)
	}
}
