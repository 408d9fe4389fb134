package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Point postings: the posting lists of a point-level first stage
// (package pointindex), kept in Pebble under their own key range and read
// on demand, through the block cache (see the package doc, # Point
// postings). Storage owns the keys; the values are pointindex's bytes,
// opaque here.

// PointPostings are one item's postings in one generation of a point
// index: its entries grouped by posting list.
type PointPostings struct {
	// Gen is the index generation (a retrained index writes a new one).
	Gen uint32
	// Points is how many postings the item has in all (its points).
	Points uint32
	// Lists are the lists holding the item's postings, ascending, and
	// Values the item's bytes in each (non-empty).
	Lists  []uint32
	Values [][]byte
}

// pointPostingKey is the key of item iid's postings in list l of gen.
func pointPostingKey(dst []byte, cid, gen, l, iid uint32) []byte {
	dst = append(dst, collKey(cid, subPointList)...)
	dst = binary.BigEndian.AppendUint32(dst, gen)
	dst = binary.BigEndian.AppendUint32(dst, l)
	return binary.BigEndian.AppendUint32(dst, iid)
}

// pointItemKey is the key of item iid's entry in gen: which lists hold
// its postings.
func pointItemKey(cid, gen, iid uint32) []byte {
	k := binary.BigEndian.AppendUint32(collKey(cid, subPointItem), gen)
	return binary.BigEndian.AppendUint32(k, iid)
}

// encodePointItem is an item entry: uvarint points, uvarint lists, then
// each list as the uvarint gap from the previous one (the first from 0).
func encodePointItem(p *PointPostings) []byte {
	b := binary.AppendUvarint(nil, uint64(p.Points))
	b = binary.AppendUvarint(b, uint64(len(p.Lists)))
	prev := uint32(0)
	for _, l := range p.Lists {
		b = binary.AppendUvarint(b, uint64(l-prev))
		prev = l
	}
	return b
}

// decodePointItem reads an item entry: its points and lists.
func decodePointItem(v []byte) (points uint32, lists []uint32, err error) {
	bad := fmt.Errorf("%w: point-index item entry of %d bytes", ErrCorrupt, len(v))
	p, n := binary.Uvarint(v)
	if n <= 0 || p > 1<<32-1 {
		return 0, nil, bad
	}
	v = v[n:]
	m, n := binary.Uvarint(v)
	if n <= 0 || m > uint64(len(v)) { // each list takes at least a byte
		return 0, nil, bad
	}
	v = v[n:]
	lists = make([]uint32, 0, m)
	var at uint64
	for range m {
		g, n := binary.Uvarint(v)
		if n <= 0 {
			return 0, nil, bad
		}
		v = v[n:]
		at += g
		if at > 1<<32-1 || (len(lists) > 0 && g == 0) {
			return 0, nil, bad
		}
		lists = append(lists, uint32(at))
	}
	if len(v) != 0 {
		return 0, nil, bad
	}
	return uint32(p), lists, nil
}

func checkPointPostings(iid uint32, p *PointPostings) error {
	if len(p.Lists) != len(p.Values) {
		return fmt.Errorf("%w: item %d: %d point-index lists, %d values", ErrInvalidItem, iid, len(p.Lists), len(p.Values))
	}
	for i, l := range p.Lists {
		if (i > 0 && l <= p.Lists[i-1]) || len(p.Values[i]) == 0 {
			return fmt.Errorf("%w: item %d: point-index lists not ascending or an empty value", ErrInvalidItem, iid)
		}
	}
	return nil
}

// pointGensLocked returns the generations holding point postings, read
// from Pebble on first use (a seek per generation). Callers hold writeMu.
func (c *Coll) pointGensLocked() ([]uint32, error) {
	if c.pointGensRead {
		return c.pointGens, nil
	}
	p := collKey(c.cid, subPointItem)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var gens []uint32
	for ok := it.First(); ok; {
		k := it.Key()
		if len(k) != len(p)+8 {
			return nil, fmt.Errorf("%w: point-index item key of %d bytes", ErrCorrupt, len(k))
		}
		g := binary.BigEndian.Uint32(k[len(p):])
		gens = append(gens, g)
		if g == 1<<32-1 {
			break
		}
		ok = it.SeekGE(binary.BigEndian.AppendUint32(slices.Clone(p), g+1))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	c.pointGens, c.pointGensRead = gens, true
	return gens, nil
}

// notePointGenLocked records that gen holds postings (writeMu held).
func (c *Coll) notePointGenLocked(gen uint32) error {
	gens, err := c.pointGensLocked()
	if err != nil {
		return err
	}
	if !slices.Contains(gens, gen) {
		c.pointGens = append(gens, gen)
	}
	return nil
}

// getter reads a key, from a batch that may hold it or the database.
type getter interface {
	Get(key []byte) ([]byte, io.Closer, error)
}

// deletePoints adds to b the deletion of item iid's postings in gen, as
// its entry (read through r) lists them.
func (c *Coll) deletePoints(b *pebble.Batch, r getter, gen, iid uint32) error {
	ik := pointItemKey(c.cid, gen, iid)
	v, closer, err := r.Get(ik)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, lists, err := decodePointItem(v)
	closer.Close()
	if err != nil {
		return fmt.Errorf("item %d in collection %q: %w", iid, c.name, err)
	}
	var k []byte
	for _, l := range lists {
		k = pointPostingKey(k[:0], c.cid, gen, l, iid)
		b.Delete(k, nil)
	}
	return b.Delete(ik, nil)
}

// putPoints adds item iid's postings p to b (its old ones in p.Gen are
// deleted already).
func (c *Coll) putPoints(b *pebble.Batch, iid uint32, p *PointPostings) {
	var k []byte
	for i, l := range p.Lists {
		k = pointPostingKey(k[:0], c.cid, p.Gen, l, iid)
		b.Set(k, p.Values[i], nil)
	}
	b.Set(pointItemKey(c.cid, p.Gen, iid), encodePointItem(p), nil)
}

// writePoints adds to b what a write of item iid does to the point
// postings: its postings in every generation are deleted (an entry written
// earlier in the same batch is in written, the database does not have it
// yet), then p's are set. With p nil (no point index loaded) the item has
// none until the index is synced (pointindex replays it).
func (c *Coll) writePoints(b *pebble.Batch, gens []uint32, written map[uint32]*PointPostings, iid uint32, p *PointPostings) error {
	for _, g := range gens {
		if prev, ok := written[iid]; ok && prev != nil && prev.Gen == g {
			var k []byte
			for _, l := range prev.Lists {
				k = pointPostingKey(k[:0], c.cid, g, l, iid)
				b.Delete(k, nil)
			}
			b.Delete(pointItemKey(c.cid, g, iid), nil)
			continue
		}
		if _, ok := written[iid]; ok {
			continue // deleted by the earlier write in this batch
		}
		if err := c.deletePoints(b, c.store.db, g, iid); err != nil {
			return err
		}
	}
	if p != nil {
		c.putPoints(b, iid, p)
	}
	if written != nil {
		written[iid] = p
	}
	return nil
}

// PointReader reads the posting lists of one generation, through one
// Pebble iterator (a consistent view of the postings as of its opening).
// It is not safe for concurrent use.
type PointReader struct {
	c    *Coll
	it   *pebble.Iterator
	pre  int // length of a list's key prefix
	gen  uint32
	seek []byte
}

// NewPointReader opens a reader of gen's posting lists. Close it.
func (c *Coll) NewPointReader(gen uint32) (*PointReader, error) {
	lo := binary.BigEndian.AppendUint32(collKey(c.cid, subPointList), gen)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(lo)})
	if err != nil {
		return nil, err
	}
	return &PointReader{c: c, it: it, pre: len(lo) + 4, gen: gen}, nil
}

// List calls fn with every item holding postings in list l, ascending by
// internal ID, and its bytes there (valid only during the call).
func (r *PointReader) List(l uint32, fn func(iid uint32, v []byte)) error {
	r.seek = pointPostingKey(r.seek[:0], r.c.cid, r.gen, l, 0)
	prefix := r.seek[:r.pre]
	for ok := r.it.SeekGE(r.seek); ok; ok = r.it.Next() {
		k := r.it.Key()
		if len(k) != r.pre+4 || string(k[:r.pre]) != string(prefix) {
			if len(k) > r.pre && string(k[:r.pre]) == string(prefix) {
				return fmt.Errorf("%w: point posting key of %d bytes", ErrCorrupt, len(k))
			}
			break
		}
		v, err := r.it.ValueAndErr()
		if err != nil {
			return err
		}
		fn(binary.BigEndian.Uint32(k[r.pre:]), v)
	}
	return r.it.Error()
}

// Close releases the reader's iterator.
func (r *PointReader) Close() error { return r.it.Close() }

// PointItems calls fn with every item that has postings in gen, ascending
// by internal ID, and its point count.
func (c *Coll) PointItems(gen uint32, fn func(iid, points uint32) error) error {
	p := binary.BigEndian.AppendUint32(collKey(c.cid, subPointItem), gen)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != len(p)+4 {
			return fmt.Errorf("%w: point-index item key of %d bytes", ErrCorrupt, len(k))
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		n, _, err := decodePointItem(v)
		if err != nil {
			return err
		}
		if err := fn(binary.BigEndian.Uint32(k[len(p):]), n); err != nil {
			return err
		}
	}
	return it.Error()
}

// PointWriter writes point postings outside of item writes (an index
// build, or the sync of items written while no index was loaded), in
// unsynced batches of about a megabyte; Flush commits the last one synced.
// Item writes that run meanwhile may race with it: the caller replays the
// change log afterwards (pointindex's builder does).
type PointWriter struct {
	c   *Coll
	b   *pebble.Batch
	gen uint32 // the generation the batch writes, when has
	has bool
	// wrote counts the bytes committed since the last Flush.
	wrote int
}

// NewPointWriter returns a writer of point postings.
func (c *Coll) NewPointWriter() *PointWriter {
	return &PointWriter{c: c}
}

const pointWriterBatch = 1 << 20

func (w *PointWriter) batch() *pebble.Batch {
	if w.b == nil {
		w.b = w.c.store.db.NewIndexedBatch()
	}
	return w.b
}

// Put replaces item iid's postings in p.Gen by p.
func (w *PointWriter) Put(iid uint32, p PointPostings) error {
	if err := checkPointPostings(iid, &p); err != nil {
		return err
	}
	b := w.batch()
	if err := w.c.deletePoints(b, b, p.Gen, iid); err != nil {
		return err
	}
	w.c.putPoints(b, iid, &p)
	w.gen, w.has = p.Gen, true
	if len(b.Repr()) >= pointWriterBatch {
		return w.commit(pebble.NoSync)
	}
	return nil
}

// Delete removes item iid's postings in gen.
func (w *PointWriter) Delete(gen, iid uint32) error {
	b := w.batch()
	return w.c.deletePoints(b, b, gen, iid)
}

func (w *PointWriter) commit(o *pebble.WriteOptions) error {
	if w.b == nil {
		return nil
	}
	w.c.writeMu.Lock()
	defer w.c.writeMu.Unlock()
	if err := w.c.checkLive(); err != nil {
		return err
	}
	if w.has {
		if err := w.c.notePointGenLocked(w.gen); err != nil {
			return err
		}
	}
	w.wrote += len(w.b.Repr())
	err := w.b.Commit(o)
	w.b.Close()
	w.b, w.has = nil, false
	return err
}

// Flush commits what the writer holds, synced. After a large write (an
// index build) it also flushes Pebble's memtable: searches then read the
// postings from tables, whose blocks iterate at about half the CPU of the
// memtable's skiplist (measured on 1,000 ColBERT-shaped documents: 4.1 ms
// against 8.8 ms a search, BenchmarkPointSearch).
func (w *PointWriter) Flush() error {
	if err := w.commit(pebble.Sync); err != nil {
		return err
	}
	if w.wrote < flushMemtableAfter {
		return nil
	}
	w.wrote = 0
	return w.c.store.db.Flush()
}

// flushMemtableAfter is the bytes of postings a PointWriter commits before
// its Flush flushes the memtable.
const flushMemtableAfter = 2 << 20

// DropPointGens deletes the point postings of every generation but keep,
// synced: a retrained or rebuilt index's predecessors, or what a build cut
// short by a crash left.
func (c *Coll) DropPointGens(keep uint32) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.checkLive(); err != nil {
		return err
	}
	gens, err := c.pointGensLocked()
	if err != nil {
		return err
	}
	b := c.store.db.NewBatch()
	defer b.Close()
	var left []uint32
	for _, g := range gens {
		if g == keep {
			left = append(left, g)
			continue
		}
		for _, sub := range []byte{subPointList, subPointItem} {
			p := binary.BigEndian.AppendUint32(collKey(c.cid, sub), g)
			b.DeleteRange(p, upperBound(p), nil)
		}
	}
	if len(left) == len(gens) {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return err
	}
	c.pointGens = left
	return nil
}

// PointGens returns the generations that hold point postings, ascending.
func (c *Coll) PointGens() ([]uint32, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	gens, err := c.pointGensLocked()
	return slices.Sorted(slices.Values(gens)), err
}

// PointDiskBytes estimates the bytes on disk of gen's point postings
// (Pebble's estimate: memtables count nothing, flushed tables their size).
func (c *Coll) PointDiskBytes(gen uint32) (int64, error) {
	var total uint64
	for _, sub := range []byte{subPointList, subPointItem} {
		p := binary.BigEndian.AppendUint32(collKey(c.cid, sub), gen)
		n, err := c.store.db.EstimateDiskUsage(p, upperBound(p))
		if err != nil {
			return 0, err
		}
		total += n
	}
	return int64(total), nil
}
