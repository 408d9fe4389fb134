package wpcdb_test

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
)

// TestCrashKeepsAcknowledgedWrites simulates machine crashes with Pebble's
// crashable in-memory filesystem, which keeps only synced data (plus a
// random share of unsynced data). After every acknowledged upsert or delete,
// a crash clone must reopen with every acknowledged change in place. A
// missing sync anywhere on the write path fails this test.
//
// Both write paths are tested: through Pebble's log, and as ingested
// SSTables (bulk.go; BulkWriteBytes 1 sends every upsert there).
func TestCrashKeepsAcknowledgedWrites(t *testing.T) {
	for _, bulk := range writePaths {
		t.Run(bulk.name, func(t *testing.T) { testCrashKeepsAcknowledgedWrites(t, bulk.bytes) })
	}
}

// writePaths are the two ways a write is committed, by Options.BulkWriteBytes.
var writePaths = []struct {
	name  string
	bytes int
}{{"log", -1}, {"ingest", 1}}

// openCrashable opens the database on fs with the given BulkWriteBytes.
func openCrashable(t *testing.T, fs vfs.FS, bulkBytes int) *wpcdb.DB {
	t.Helper()
	db, err := wpcdb.Open("db", &wpcdb.Options{FS: fs, Logger: slog.New(failOnWarn{t}), BulkWriteBytes: bulkBytes})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func testCrashKeepsAcknowledgedWrites(t *testing.T, bulkBytes int) {
	const seed = 2026
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	db := openCrashable(t, fs, bulkBytes)
	defer db.Close()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Encoding: wpcdb.EncodingBF16})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]wpcdb.Item{}
	for round := 0; round < 12; round++ {
		if round%4 == 3 {
			var ids []string
			for id := range want {
				if rng.IntN(3) == 0 {
					ids = append(ids, id)
				}
			}
			if _, err := c.Delete(ctx, ids...); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				delete(want, id)
			}
		} else {
			items := randomItems(uint64(seed+round), 20, 6, 8, fmt.Sprintf("r%d-", round%3))
			if err := c.Upsert(ctx, items); err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				want[it.ID] = it
			}
		}
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
		verifyCrashed(t, crashed, round, want)
	}
}

func verifyCrashed(t *testing.T, fs vfs.FS, round int, want map[string]wpcdb.Item) {
	t.Helper()
	db, err := wpcdb.Open("db", &wpcdb.Options{FS: fs})
	if err != nil {
		t.Fatalf("round %d: reopen after crash: %v", round, err)
	}
	defer db.Close()
	c, err := db.Collection("c")
	if err != nil {
		t.Fatalf("round %d: collection lost in crash: %v", round, err)
	}
	if c.Count() != len(want) {
		t.Errorf("round %d: %d items after crash, want %d", round, c.Count(), len(want))
	}
	for id, it := range want {
		got, err := c.Get(ctx, id)
		if err != nil {
			t.Fatalf("round %d: acknowledged item %s lost: %v", round, id, err)
		}
		checkStored(t, wpcdb.EncodingBF16, it, got)
	}
}

// TestCrashDuringWrites takes crash clones while a writer is committing
// batches: every batch acknowledged before the clone is there in full, and
// no batch is ever half there.
func TestCrashDuringWrites(t *testing.T) {
	for _, bulk := range writePaths {
		t.Run(bulk.name, func(t *testing.T) { testCrashDuringWrites(t, bulk.bytes) })
	}
}

func testCrashDuringWrites(t *testing.T, bulkBytes int) {
	const seed = 4711
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	db := openCrashable(t, fs, bulkBytes)
	defer db.Close()
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 4})
	const batches, perBatch = 40, 10
	var acked atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for b := 0; b < batches; b++ {
			if err := c.Upsert(ctx, randomItems(uint64(b), perBatch, 3, 4, fmt.Sprintf("b%d-", b))); err != nil {
				t.Error(err)
				return
			}
			acked.Store(int64(b + 1))
		}
	}()
	var clones []vfs.FS
	var ackedAt []int64
	for acked.Load() < batches && len(clones) < 15 {
		before := acked.Load()
		clones = append(clones, fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng}))
		ackedAt = append(ackedAt, before)
	}
	wg.Wait()
	for i, cfs := range clones {
		cdb, err := wpcdb.Open("db", &wpcdb.Options{FS: cfs})
		if err != nil {
			t.Fatalf("clone %d: %v", i, err)
		}
		cc, err := cdb.Collection("c")
		if err != nil {
			t.Fatalf("clone %d: %v", i, err)
		}
		for b := 0; b < batches; b++ {
			present := 0
			for k := 0; k < perBatch; k++ {
				if _, err := cc.Get(ctx, fmt.Sprintf("b%d-%d", b, k)); err == nil {
					present++
				} else if !errors.Is(err, wpcdb.ErrNotFound) {
					t.Fatal(err)
				}
			}
			if present != 0 && present != perBatch {
				t.Errorf("clone %d: batch %d is half there (%d of %d)", i, b, present, perBatch)
			}
			if int64(b) < ackedAt[i] && present != perBatch {
				t.Errorf("clone %d: acknowledged batch %d lost", i, b)
			}
		}
		cdb.Close()
	}
	t.Logf("%d crash clones taken", len(clones))
}
