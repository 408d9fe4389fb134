package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// slowSyncFS delays every sync, so that a write acknowledged before its
// sync is caught with its data still unsynced.
type slowSyncFS struct{ vfs.FS }

type slowSyncFile struct{ vfs.File }

const syncDelay = 2 * time.Millisecond

func (f slowSyncFile) Sync() error {
	time.Sleep(syncDelay)
	return f.File.Sync()
}

func (f slowSyncFile) SyncData() error {
	time.Sleep(syncDelay)
	return f.File.SyncData()
}

func (f slowSyncFile) SyncTo(n int64) (bool, error) {
	time.Sleep(syncDelay)
	return f.File.SyncTo(n)
}

func wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f}, nil
}

func (fs slowSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return wrap(fs.FS.Create(name, c))
}

func (fs slowSyncFS) Open(name string, o ...vfs.OpenOption) (vfs.File, error) {
	return wrap(fs.FS.Open(name, o...))
}

func (fs slowSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, o ...vfs.OpenOption) (vfs.File, error) {
	return wrap(fs.FS.OpenReadWrite(name, c, o...))
}

func (fs slowSyncFS) OpenDir(name string) (vfs.File, error) { return wrap(fs.FS.OpenDir(name)) }

func (fs slowSyncFS) ReuseForWrite(old, new string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return wrap(fs.FS.ReuseForWrite(old, new, c))
}

// items returns batch b's n items, IDs "b<b>-<k>".
func items(rng *rand.Rand, b, n, dim int) []wpcdb.Item {
	out := make([]wpcdb.Item, n)
	for k := range out {
		c := wpctest.RandomCloud(rng, 1+rng.IntN(4), dim, wpctest.Shape{})
		out[k] = wpcdb.Item{ID: fmt.Sprintf("b%d-%d", b, k), Cloud: wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points},
			Attrs: map[string]any{"batch": float64(b)}}
	}
	return out
}

// TestCommitAcksAfterSync runs Commit's pipeline (batch k+1 staged while
// batch k syncs) on a crashable filesystem whose syncs are slow, and takes
// a crash clone keeping only synced data at every acknowledgement
// (Progress): the reopened clone must hold every acknowledged batch in
// full and no batch in part. An acknowledgement sent before its sync
// fails it. Both write paths: the log and ingested tables.
func TestCommitAcksAfterSync(t *testing.T) {
	for _, bulk := range []int{-1, 1} {
		t.Run(fmt.Sprintf("bulk=%d", bulk), func(t *testing.T) { testCommitAcksAfterSync(t, bulk) })
	}
}

func testCommitAcksAfterSync(t *testing.T, bulkBytes int) {
	const seed, batches, perBatch, dim = 20261204, 12, 8, 4
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	mem := vfs.NewCrashableMem()
	db, err := wpcdb.Open("db", &wpcdb.Options{FS: slowSyncFS{mem}, BulkWriteBytes: bulkBytes})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan ingest.Batch, batches)
	for b := range batches {
		in <- ingest.Batch{Items: items(rng, b, perBatch, dim), Pos: make([]int, perBatch)}
	}
	close(in)
	var clones []vfs.FS
	var ackedAt []int
	st, err := ingest.Commit(ctx, c, in, ingest.Options{Unit: "item", Progress: func(st ingest.Stats) {
		clones = append(clones, mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}))
		ackedAt = append(ackedAt, st.Committed/perBatch)
	}})
	if err != nil || st.Committed != batches*perBatch {
		t.Fatalf("committed %d, err %v; want %d", st.Committed, err, batches*perBatch)
	}
	for i, fs := range clones {
		cdb, err := wpcdb.Open("db", &wpcdb.Options{FS: fs})
		if err != nil {
			t.Fatalf("clone %d: %v", i, err)
		}
		cc, err := cdb.Collection("c")
		if err != nil {
			t.Fatalf("clone %d: %v", i, err)
		}
		for b := range batches {
			present := 0
			for k := range perBatch {
				if _, err := cc.Get(ctx, fmt.Sprintf("b%d-%d", b, k)); err == nil {
					present++
				} else if !errors.Is(err, wpcdb.ErrNotFound) {
					t.Fatal(err)
				}
			}
			if present != 0 && present != perBatch {
				t.Errorf("clone %d: batch %d is half there (%d of %d)", i, b, present, perBatch)
			}
			if b < ackedAt[i] && present != perBatch {
				t.Errorf("clone %d (taken when %d batches were acknowledged): batch %d is not on disk", i, ackedAt[i], b)
			}
		}
		cdb.Close()
	}
}

// TestCommitStopsAtInvalidBatch: with the pipeline, a batch holding an
// invalid item is refused whole, the batches before it are committed and
// counted, and none after it is written.
func TestCommitStopsAtInvalidBatch(t *testing.T) {
	const seed, dim = 7, 4
	rng := rand.New(rand.NewPCG(seed, 1))
	db, err := wpcdb.Open("db", &wpcdb.Options{FS: vfs.NewMem(), BulkWriteBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: dim})
	if err != nil {
		t.Fatal(err)
	}
	in := make(chan ingest.Batch, 5)
	for b := range 5 {
		its := items(rng, b, 3, dim)
		if b == 3 {
			its[1].Cloud.Weights[0] = float32(nanOf())
		}
		in <- ingest.Batch{Items: its, Pos: []int{10 * b, 10*b + 1, 10*b + 2}}
	}
	close(in)
	var mu sync.Mutex
	var progress []int
	st, err := ingest.Commit(ctx, c, in, ingest.Options{Unit: "row", Progress: func(st ingest.Stats) {
		mu.Lock()
		progress = append(progress, st.Committed)
		mu.Unlock()
	}})
	if !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), "row 31 (id \"b3-1\")") || !strings.Contains(err.Error(), "9 items committed before it") {
		t.Fatalf("err %v", err)
	}
	if st.Committed != 9 || c.Count() != 9 || fmt.Sprint(progress) != "[3 6 9]" {
		t.Fatalf("committed %d, count %d, progress %v; want 9, 9, [3 6 9]", st.Committed, c.Count(), progress)
	}
	if _, err := c.Get(ctx, "b4-0"); !errors.Is(err, wpcdb.ErrNotFound) {
		t.Fatalf("an item of the batch after the refused one: %v", err)
	}
}

func nanOf() float64 {
	var z float64
	return z / z
}
