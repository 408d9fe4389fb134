package storage

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// bulkItems are n items with IDs prefix0.., weights base+i and one
// attribute.
func bulkItems(prefix string, n int, base float32) []ItemWrite {
	ws := make([]ItemWrite, n)
	for i := range ws {
		ws[i] = ItemWrite{ID: fmt.Sprintf("%s%03d", prefix, i), Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{base + float32(i)}, Points: []float32{1, 0}},
			Attrs: map[string]any{"n": float64(i)}}
	}
	return ws
}

// recordIIDs lists the internal IDs ScanRecords reads.
func recordIIDs(t *testing.T, c *Coll) []uint32 {
	t.Helper()
	var iids []uint32
	if err := c.ScanRecords(func(iid uint32, _ Record) error { iids = append(iids, iid); return nil }); err != nil {
		t.Fatal(err)
	}
	return iids
}

// rawKeys counts the keys of a collection sub-range as Pebble holds them,
// bypassing the bounds the reads apply.
func rawKeys(t *testing.T, s *Store, cid uint32, sub byte) int {
	t.Helper()
	p := collKey(cid, sub)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// TestBulkWriteCutShort: a bulk write ingests its new records and
// attributes before it commits its batch. Cut short between the two (the
// tables ingested, the batch never committed), nothing of it is visible:
// not in Count or Get, not in ScanRecords; after a crash the reopened store
// has deleted the orphaned keys; without one, the next write takes the same
// internal IDs and overwrites them.
func TestBulkWriteCutShort(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("db", &Options{FS: fs, BulkWriteBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	c, err := s.CreateCollection("c", collconfig.Config{Dim: 2}.WithDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(bulkItems("a", 5, 1)); err != nil {
		t.Fatal(err)
	}
	// The first step of a bulk write of 7 new items, alone.
	cut := bulkItems("b", 7, 100)
	fresh := []int{0, 1, 2, 3, 4, 5, 6}
	if err := c.ingestFresh(cut, c.nextIID, fresh); err != nil {
		t.Fatal(err)
	}
	if got := rawKeys(t, s, c.cid, subRecord); got != 12 {
		t.Fatalf("%d records in Pebble after the tables' ingest, want 12 (the orphans are there)", got)
	}
	if got := recordIIDs(t, c); len(got) != 5 {
		t.Fatalf("ScanRecords read internal IDs %v, want only the 5 committed", got)
	}
	if _, err := c.Get("b000"); err == nil {
		t.Fatal("an item of the uncommitted write is readable")
	}

	// A crash now: the reopened store has removed the orphans.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(7, 7))})
	s2, err := Open("db", &Options{FS: crashed, BulkWriteBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := s2.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	if c2.Count() != 5 {
		t.Fatalf("count %d after the crash, want 5", c2.Count())
	}
	for _, sub := range []byte{subRecord, subAttrs} {
		if got := rawKeys(t, s2, c2.cid, sub); got != 5 {
			t.Fatalf("sub-range %#x holds %d keys after reopening, want the 5 committed", sub, got)
		}
	}
	if _, err := c2.Write(bulkItems("c", 3, 200)); err != nil {
		t.Fatal(err)
	}
	if got := recordIIDs(t, c2); len(got) != 8 || got[7] != 7 {
		t.Fatalf("records %v after a write following the crash, want internal IDs 0..7", got)
	}
	s2.Close()

	// No crash: the next write reuses the orphans' internal IDs; only 2 of
	// the 7 are overwritten, the other 5 stay unread until reopened.
	if _, err := c.Write(bulkItems("d", 2, 300)); err != nil {
		t.Fatal(err)
	}
	if got := recordIIDs(t, c); len(got) != 7 {
		t.Fatalf("ScanRecords read internal IDs %v, want 0..6", got)
	}
	for i, want := range []float32{300, 301} {
		it, err := c.Get(fmt.Sprintf("d%03d", i))
		if err != nil || it.Cloud.Weights[0] != want {
			t.Fatalf("d%03d: %+v, %v; want weight %v", i, it, err, want)
		}
	}
	s.Close()
	s, err = Open("db", &Options{FS: fs, BulkWriteBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err = s.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	if got := rawKeys(t, s, c.cid, subRecord); got != 7 || c.Count() != 7 {
		t.Fatalf("%d records, count %d after reopening, want 7", got, c.Count())
	}
}
