package storage

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
)

// The bulk path: a write of at least Options.BulkWriteBytes is not
// committed through the WAL and the memtable alone (which copy it twice,
// then flush and compact it through every level). The records and
// attributes of its new items, nearly all of its bytes, are written as two
// sorted SSTables (ingestFresh) and ingested with pebble.DB.Ingest: their
// keys are internal IDs from the collection's next one up, which no table
// holds, so they go straight to the bottom level, written once and never
// compacted again. The rest of the write (the ID map, postings, counters,
// change log and the records of replaced items: keys that interleave with
// those of earlier writes) is then committed as one synced batch, through
// the WAL (or, when it is itself that large, as SSTables too: commit).
//
// Durability: the tables are synced before the ingest, which adds them to
// the LSM in one synced manifest edit; the batch that follows commits the
// write. Until it does, the new records sit at internal IDs at or after
// the collection's committed next ID, which no ID maps to: nothing reads
// them (ScanRecords and WarmCache stop at the next ID), and the next
// write assigns those IDs again and overwrites them. A crash between the
// two steps leaves such orphans on disk; opening the collection deletes
// them (removeOrphans). So an acknowledged write is complete after a crash
// and one cut short is not there at all.
//
// Measured (100k compact items, 1,000 a batch, 2 cores): ingesting the
// whole batch as one table per key range put the ID-map and posting tables
// of every batch in L0 (user IDs and posting values interleave across
// batches), where Pebble compacted them into L6 again and again (144
// compactions writing 38 MB for 2.3 MB ingested, a third of the load's
// CPU). Through the memtable those keys are flushed once per 64 MiB.

// DefaultBulkWriteBytes is the batch size from which a write is ingested
// as SSTables (Options.BulkWriteBytes).
const DefaultBulkWriteBytes = 1 << 20

// ingestPrefix names the temporary tables of an ingest in the data
// directory; leftovers of a crash are removed on open.
const ingestPrefix = "wpcdb-ingest-"

var ingestSeq atomic.Uint64

// commit commits a write's batch, synced: through the WAL, or as ingested
// SSTables when it is large (see the top of this file).
func (c *Coll) commit(b *pebble.Batch) error {
	s := c.store
	if s.bulkWriteBytes <= 0 || len(b.Repr()) < s.bulkWriteBytes {
		return b.Commit(pebble.Sync)
	}
	return s.ingest(b)
}

// writeBytes estimates the bytes a write adds to Pebble, to choose the
// bulk path.
func writeBytes(e collconfig.Encoding, items []ItemWrite) int {
	n := 0
	for i := range items {
		it := &items[i]
		n += 64 + 2*len(it.ID) + recordLen(e, it.ID, it.Cloud) + 32*len(it.Attrs)
	}
	return n
}

// ingestFresh writes the records and attributes of the new items of a
// write, iid first+k holding items[fresh[k]], as two SSTables, synced and
// ingested in one step (see the top of this file).
func (c *Coll) ingestFresh(items []ItemWrite, first uint32, fresh []int) error {
	return c.writeFresh(items, first, fresh).ingest(c.store)
}

// freshTables are the tables of a bulk write's new records and attributes,
// written but not yet ingested: a staged write (pipeline.go) has them
// written and synced on their own goroutines (writeFresh) and ingests them
// when its turn comes, so the tables' bytes are encoded and go to the disk
// while the write before commits and the next batch is prepared.
type freshTables struct {
	paths []string
	files []vfs.File
	done  chan struct{} // closed when the tables are written and synced (or failed), err set
	err   error
}

// writeFresh starts writing the tables of ingestFresh, and syncing them,
// on their own goroutines, and returns at once; ingest waits for them. On
// an error nothing is left behind but the temporary names discard
// removes. items must not change until then.
//
// Measured (bench.Ingest of 100k compact items, load average ~8): encoding
// the records and building the tables took 0.40 of the load's 1.62 CPU-s,
// all of it in the caller's Stage, the one goroutine that prepares the
// next batch; off it, the two cores overlap it with that preparation.
func (c *Coll) writeFresh(items []ItemWrite, first uint32, fresh []int) *freshTables {
	t := &freshTables{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		if t.err = c.buildFresh(t, items, first, fresh); t.err != nil {
			return
		}
		// Each file synced on its own goroutine: the disk overlaps them.
		errs := make([]error, len(t.files))
		var wg sync.WaitGroup
		for i, f := range t.files {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f.Sync()
				if err := f.Close(); errs[i] == nil {
					errs[i] = err
				}
			}()
		}
		wg.Wait()
		t.files = nil
		t.err = errors.Join(errs...)
	}()
	return t
}

// buildFresh writes the tables of ingestFresh into t, unsynced.
func (c *Coll) buildFresh(t *freshTables, items []ItemWrite, first uint32, fresh []int) error {
	s := c.store
	var buf, key []byte
	for _, sub := range []byte{subRecord, subAttrs} {
		path := s.fs.PathJoin(s.dir, fmt.Sprintf("%s%d-%d.sst", ingestPrefix, ingestSeq.Add(1), len(t.paths)))
		f, err := s.fs.Create(path, "")
		if err != nil {
			return err
		}
		t.paths = append(t.paths, path)
		t.files = append(t.files, f)
		o := s.writerOptions()
		if sub == subRecord {
			// Points and weights are floats, which Snappy does not shrink
			// (a table of compact f32 records stored 1.02× their payload
			// with it): the tables keep them as they are, without the
			// compression attempt per block.
			o.Compression = sstable.NoCompression
			// The block size stays the level's (4 KiB: a compact record
			// a block). Measured (BenchmarkCommit, 50k items, six
			// alternating runs, load ~8): 32 KiB blocks took 14.7 µs of
			// CPU an item against 15.4, within the noise (p = 0.59),
			// and a point read would read eight times the bytes.
		}
		bw := tableBuffers.Get().(*bufio.Writer)
		bw.Reset(f)
		w := sstable.NewWriter(&unsyncedWritable{f: f, bw: bw}, o)
		for k, i := range fresh {
			it := &items[i]
			key = iidKeyTo(key[:0], c.cid, sub, first+uint32(k))
			if sub == subRecord {
				buf = slices.Grow(buf[:0], recordLen(c.cfg.Encoding, it.ID, it.Cloud))
				buf = appendRecord(buf, c.cfg.Encoding, it.ID, it.Cloud, it.Half, it.Self)
			} else {
				buf = appendAttrs(buf[:0], it.Attrs)
			}
			if err := w.Set(key, buf); err != nil {
				w.Close()
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}

// ingest waits for the tables to be written and synced and ingests them
// (Pebble links them into the LSM in one synced manifest edit), then
// removes the temporary names.
func (t *freshTables) ingest(s *Store) error {
	defer t.discard(s)
	<-t.done
	if t.err != nil {
		return t.err
	}
	return s.db.Ingest(context.Background(), t.paths)
}

// discard waits for the tables' goroutine, closes and removes the tables
// (after an ingest, Pebble holds its own links to them).
func (t *freshTables) discard(s *Store) {
	<-t.done
	for _, f := range t.files {
		f.Close()
	}
	t.files = nil
	for _, p := range t.paths {
		s.fs.Remove(p)
	}
	t.paths = nil
}

// unsyncedWritable is the sink of a table that writeFresh builds: its
// bytes are written to the file through a buffer, and Finish flushes them
// without syncing; freshTables.ingest syncs the file.
type unsyncedWritable struct {
	f  vfs.File
	bw *bufio.Writer
}

func (w *unsyncedWritable) Write(p []byte) error {
	_, err := w.bw.Write(p)
	return err
}

func (w *unsyncedWritable) Finish() error {
	err := w.bw.Flush()
	w.release()
	return err
}

func (w *unsyncedWritable) Abort() { w.release() }

// release returns the buffer to tableBuffers.
func (w *unsyncedWritable) release() {
	if w.bw != nil {
		w.bw.Reset(nil)
		tableBuffers.Put(w.bw)
		w.bw = nil
	}
}

// tableBuffers are the buffers of the tables writeFresh builds: 256 KiB
// each, two a batch, zeroed on every allocation (0.05 of 1.6 CPU-s in a
// 100k compact load when each table made its own).
var tableBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 256<<10) }}

// removeOrphans deletes the records and attributes at internal IDs at or
// after the collection's next one: those of a bulk write whose tables were
// ingested but whose batch was not committed (a crash between the two).
// Nothing else writes there, so it finds nothing after a clean run.
func (c *Coll) removeOrphans() error {
	b := c.store.db.NewBatch()
	defer b.Close()
	for _, sub := range []byte{subRecord, subAttrs} {
		lo, hi := iidKey(c.cid, sub, c.nextIID), upperBound(collKey(c.cid, sub))
		it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		found := it.First()
		if err := errors.Join(iterError(it.Error(), fmt.Sprintf("records of collection %q", c.name)), it.Close()); err != nil {
			return err
		}
		if found {
			b.DeleteRange(lo, hi, nil)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: removing the records of an interrupted write from %q: %w", c.name, err)
	}
	return nil
}

// writerOptions are the options of the tables a bulk write builds: those
// of the bottom level, where they go.
func (s *Store) writerOptions() sstable.WriterOptions {
	return s.popts.MakeWriterOptions(len(s.popts.Levels)-1, s.db.TableFormat())
}

// keyWriter is where a write puts its ID-map and posting changes: its
// batch, or sortedOps. Both copy what they are given: the caller may reuse
// its key and value buffers after Set and Delete.
type keyWriter interface {
	Set(key, value []byte, _ *pebble.WriteOptions) error
	Delete(key []byte, _ *pebble.WriteOptions) error
}

// sortedOps collects a bulk write's ID-map and posting changes and adds
// them to its batch in key order. The memtable inserts each key of a batch
// from the position of the previous one: in the order of the items, a
// batch's IDs and postings jump across the keyspace at every key; sorted,
// each insert starts next to its place. Measured (100k compact items, 1,000
// a batch, two runs each on a loaded machine): the memtable's inserts took
// 0.33–0.64 CPU-s unsorted, 0.17–0.20 sorted plus 0.16–0.23 for sorting
// and copying into the batch; Write as a whole 1.11–1.45 against
// 0.99–1.22 CPU-s.
//
// Set and Delete copy the key and value into the arena, so the callers
// build their keys in one reused buffer, as they do for a batch (which
// copies too). Measured (the same load, load average ~8): appending an
// operation per key, each key allocated and grown on its own, took 0.24
// of the load's 1.62 CPU-s, most of it growing slices.
type sortedOps struct {
	ops    []batchOp
	arena  []byte   // the keys and values, in chunks of sortedOpsChunk
	chunks [][]byte // the arena's chunks, reused when the sortedOps is
	used   int      // chunks[:used] hold this write's bytes
}

// sortedOpsChunk is the size of the arena's chunks: a chunk holds a few
// thousand keys.
const sortedOpsChunk = 64 << 10

// sortedOpsPool holds sortedOps whose operations were applied, their
// slices reused by the next bulk write (a thousand compact items fill
// four thousand operations and 100 KB of keys each batch).
var sortedOpsPool = sync.Pool{New: func() any { return new(sortedOps) }}

// newSortedOps returns an empty sortedOps with room for n operations.
func newSortedOps(n int) *sortedOps {
	s := sortedOpsPool.Get().(*sortedOps)
	s.ops = slices.Grow(s.ops[:0], n)
	s.arena, s.used = nil, 0
	return s
}

// release returns s to the pool once its operations are applied: its
// keys, values and operations are not used after.
func (s *sortedOps) release() {
	clear(s.ops) // no stale slices
	s.ops, s.arena = s.ops[:0], nil
	sortedOpsPool.Put(s)
}

func (s *sortedOps) Set(key, value []byte, _ *pebble.WriteOptions) error {
	s.ops = append(s.ops, batchOp{pebble.InternalKeyKindSet, len(s.ops), s.copy(key), s.copy(value)})
	return nil
}

func (s *sortedOps) Delete(key []byte, _ *pebble.WriteOptions) error {
	s.ops = append(s.ops, batchOp{pebble.InternalKeyKindDelete, len(s.ops), s.copy(key), nil})
	return nil
}

// copy returns p copied into the arena (nil for an empty p).
func (s *sortedOps) copy(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	if cap(s.arena)-len(s.arena) < len(p) {
		switch {
		case len(p) > sortedOpsChunk:
			return slices.Clone(p) // not pooled
		case s.used < len(s.chunks):
			s.arena = s.chunks[s.used][:0]
		default:
			s.arena = make([]byte, 0, sortedOpsChunk)
			s.chunks = append(s.chunks, s.arena)
		}
		s.used++
	}
	n := len(s.arena)
	s.arena = append(s.arena, p...)
	return s.arena[n:len(s.arena):len(s.arena)]
}

// apply adds the operations to b in key order; of those on one key, in the
// order they were made (the last one wins, as in the batch).
func (s *sortedOps) apply(b *pebble.Batch) {
	sortOps(s.ops)
	for _, op := range s.ops {
		if op.kind == pebble.InternalKeyKindSet {
			b.Set(op.key, op.value, nil)
		} else {
			b.Delete(op.key, nil)
		}
	}
}

// batchOp is one operation of a batch: a set or a point delete, the seq'th.
type batchOp struct {
	kind       pebble.InternalKeyKind
	seq        int
	key, value []byte
}

// sortOps sorts operations by key and, on one key, in the order they were
// made. An unstable sort with seq as the tie-break: the stable one (an
// insertion sort and in-place merges) took 0.26 CPU-s of a 100k compact
// load, a quarter of wpcdb's own CPU.
func sortOps(ops []batchOp) {
	slices.SortFunc(ops, func(x, y batchOp) int {
		if c := bytes.Compare(x.key, y.key); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
}

// ingest writes the operations of b (sets and point deletes; the last one
// per key wins, as in the batch) into one SSTable per collection key range
// and ingests them.
func (s *Store) ingest(b *pebble.Batch) error {
	var ops []batchOp
	r := b.Reader()
	for {
		kind, k, v, ok, err := r.Next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if kind != pebble.InternalKeyKindSet && kind != pebble.InternalKeyKindDelete {
			return b.Commit(pebble.Sync) // not a plain write: the usual path
		}
		ops = append(ops, batchOp{kind, len(ops), k, v})
	}
	sortOps(ops) // of the operations on one key, the batch's last comes last
	var paths []string
	defer func() {
		for _, p := range paths {
			s.fs.Remove(p)
		}
	}()
	var w *sstable.Writer
	var rangeOf []byte
	finish := func() error {
		if w == nil {
			return nil
		}
		err := w.Close()
		w = nil
		return err
	}
	for i, op := range ops {
		if i+1 < len(ops) && bytes.Equal(ops[i+1].key, op.key) {
			continue // overwritten later in the batch
		}
		if r := keyRange(op.key); w == nil || !bytes.Equal(r, rangeOf) {
			if err := finish(); err != nil {
				return err
			}
			path := s.fs.PathJoin(s.dir, fmt.Sprintf("%s%d-%d.sst", ingestPrefix, ingestSeq.Add(1), len(paths)))
			f, err := s.fs.Create(path, "")
			if err != nil {
				return err
			}
			paths = append(paths, path)
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.writerOptions())
			rangeOf = r
		}
		var err error
		if op.kind == pebble.InternalKeyKindSet {
			err = w.Set(op.key, op.value)
		} else {
			err = w.Delete(op.key)
		}
		if err != nil {
			finish()
			return err
		}
	}
	if err := finish(); err != nil {
		return err
	}
	if len(paths) == 0 {
		return nil
	}
	return s.db.Ingest(context.Background(), paths)
}

// keyRange is the range of the collection keyspace a key is in (its tag,
// collection ID and sub-tag), or the key's tag for others.
func keyRange(k []byte) []byte {
	if len(k) >= 6 && k[0] == tagCollection {
		return k[:6]
	}
	return k[:min(len(k), 1)]
}

// removeIngestLeftovers deletes the temporary tables of ingests a crash cut
// short (Pebble linked what it ingested; these are only ours).
func removeIngestLeftovers(s *Store) error {
	names, err := s.fs.List(s.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if strings.HasPrefix(n, ingestPrefix) {
			errs = append(errs, s.fs.Remove(s.fs.PathJoin(s.dir, n)))
		}
	}
	return errors.Join(errs...)
}
