package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
)

// The bulk path: a write of at least Options.BulkWriteBytes is not
// committed through the WAL and the memtable (which copy it twice, then
// flush and compact it through every level) but written as sorted
// SSTables, one per key range of the collection (records, attributes, IDs,
// postings, change log, counters), and ingested with pebble.DB.Ingest in
// one atomic step: the tables are synced before the ingest, which adds all
// of them to the LSM in one synced manifest edit, so an acknowledged write
// is complete after a crash and one cut short is not there at all. Tables
// whose range overlaps nothing (a load's records, attributes and change
// log, whose keys grow) go straight to the bottom level: written once,
// never compacted again. The contents are exactly the batch's: Write builds
// the same batch either way.

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

// batchOp is one operation of a batch: a set or a point delete.
type batchOp struct {
	kind       pebble.InternalKeyKind
	key, value []byte
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
		ops = append(ops, batchOp{kind, k, v})
	}
	// Stable: of the operations on one key, the batch's last comes last.
	slices.SortStableFunc(ops, func(a, b batchOp) int { return bytes.Compare(a.key, b.key) })
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
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), s.popts.MakeWriterOptions(len(s.popts.Levels)-1, s.db.TableFormat()))
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
