package storage

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
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
	// Shift groups items in a list's values: items iid>>Shift share one
	// (fixed per generation; see the package doc, # Point postings).
	Shift uint8
	// Points is how many postings the item has in all (its points).
	Points uint32
	// Lists are the lists holding the item's postings, ascending, and
	// Values the item's bytes in each (non-empty).
	Lists  []uint32
	Values [][]byte
}

// MaxPointShift bounds PointPostings.Shift: at most 2^16 items a value.
const MaxPointShift = 16

// pointBlockKey is the key of the value holding the postings in list l of
// gen of the items iid>>shift == block.
func pointBlockKey(dst []byte, cid, gen, l, block uint32) []byte {
	dst = append(dst, collKey(cid, subPointList)...)
	dst = binary.BigEndian.AppendUint32(dst, gen)
	dst = binary.BigEndian.AppendUint32(dst, l)
	return binary.BigEndian.AppendUint32(dst, block)
}

// pointItemKey is the key of item iid's entry in gen: which lists hold
// its postings.
func pointItemKey(cid, gen, iid uint32) []byte {
	k := binary.BigEndian.AppendUint32(collKey(cid, subPointItem), gen)
	return binary.BigEndian.AppendUint32(k, iid)
}

// pointItem is an item's entry.
type pointItem struct {
	points uint32
	shift  uint8
	lists  []uint32
}

// encodePointItem is an item entry: uvarint points, shift (1), uvarint
// lists, then each list as the uvarint gap from the previous one (the
// first from 0).
func encodePointItem(p *PointPostings) []byte {
	b := binary.AppendUvarint(nil, uint64(p.Points))
	b = append(b, p.Shift)
	b = binary.AppendUvarint(b, uint64(len(p.Lists)))
	prev := uint32(0)
	for _, l := range p.Lists {
		b = binary.AppendUvarint(b, uint64(l-prev))
		prev = l
	}
	return b
}

// decodePointItem reads an item entry.
func decodePointItem(v []byte) (pointItem, error) {
	bad := fmt.Errorf("%w: point-index item entry of %d bytes", ErrCorrupt, len(v))
	p, n := binary.Uvarint(v)
	if n <= 0 || p > 1<<32-1 || len(v) < n+1 {
		return pointItem{}, bad
	}
	shift := v[n]
	v = v[n+1:]
	m, n := binary.Uvarint(v)
	if n <= 0 || m > uint64(len(v)) || shift > MaxPointShift { // each list takes at least a byte
		return pointItem{}, bad
	}
	v = v[n:]
	lists := make([]uint32, 0, m)
	var at uint64
	for range m {
		g, n := binary.Uvarint(v)
		if n <= 0 {
			return pointItem{}, bad
		}
		v = v[n:]
		at += g
		if at > 1<<32-1 || (len(lists) > 0 && g == 0) {
			return pointItem{}, bad
		}
		lists = append(lists, uint32(at))
	}
	if len(v) != 0 {
		return pointItem{}, bad
	}
	return pointItem{points: uint32(p), shift: shift, lists: lists}, nil
}

func checkPointPostings(iid uint32, p *PointPostings) error {
	if len(p.Lists) != len(p.Values) || p.Shift > MaxPointShift {
		return fmt.Errorf("%w: item %d: %d point-index lists, %d values, shift %d", ErrInvalidItem, iid, len(p.Lists), len(p.Values), p.Shift)
	}
	for i, l := range p.Lists {
		if (i > 0 && l <= p.Lists[i-1]) || len(p.Values[i]) == 0 {
			return fmt.Errorf("%w: item %d: point-index lists not ascending or an empty value", ErrInvalidItem, iid)
		}
	}
	return nil
}

// blockEntry is one item's bytes in a list's value.
type blockEntry struct {
	iid uint32
	v   []byte
}

// A list's value for a block of items is its items' entries, ascending by
// iid: uvarint (iid − block<<shift), uvarint length, bytes.
func encodeBlock(dst []byte, base uint32, es []blockEntry) []byte {
	for _, e := range es {
		dst = binary.AppendUvarint(dst, uint64(e.iid-base))
		dst = binary.AppendUvarint(dst, uint64(len(e.v)))
		dst = append(dst, e.v...)
	}
	return dst
}

// walkBlock calls fn with every entry of a block value (v's bytes, not
// copied); entries out of order or past the block are ErrCorrupt.
func walkBlock(v []byte, base uint32, shift uint8, fn func(iid uint32, v []byte)) error {
	var prev uint64
	first := true
	for len(v) > 0 {
		off, n := binary.Uvarint(v)
		if n <= 0 || off>>shift != 0 || (!first && off <= prev) {
			return fmt.Errorf("%w: point postings block entry", ErrCorrupt)
		}
		v = v[n:]
		ln, n := binary.Uvarint(v)
		if n <= 0 || ln == 0 || ln > uint64(len(v)-n) {
			return fmt.Errorf("%w: point postings block entry of %d bytes", ErrCorrupt, ln)
		}
		v = v[n:]
		fn(base+uint32(off), v[:ln])
		v = v[ln:]
		prev, first = off, false
	}
	return nil
}

// pointEdits are the point-posting changes of one batch: the touched
// item entries and list values, read once from the database and written
// once by apply, so that several items of a batch sharing a value see
// each other's changes.
type pointEdits struct {
	c      *Coll
	items  map[[2]uint32]*pointItem // (gen, iid) → entry, nil when absent
	dirty  map[[2]uint32]bool       // the entries changed
	blocks map[string]*editedBlock  // key → entries (the changed ones)
}

type editedBlock struct {
	base  uint32
	shift uint8
	es    []blockEntry
}

func (c *Coll) newPointEdits() *pointEdits {
	return &pointEdits{c: c, items: map[[2]uint32]*pointItem{}, dirty: map[[2]uint32]bool{}, blocks: map[string]*editedBlock{}}
}

func (e *pointEdits) item(gen, iid uint32) (*pointItem, error) {
	if it, ok := e.items[[2]uint32{gen, iid}]; ok {
		return it, nil
	}
	v, closer, err := e.c.store.db.Get(pointItemKey(e.c.cid, gen, iid))
	if errors.Is(err, pebble.ErrNotFound) {
		e.items[[2]uint32{gen, iid}] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	it, err := decodePointItem(v)
	closer.Close()
	if err != nil {
		return nil, fmt.Errorf("item %d in collection %q: %w", iid, e.c.name, err)
	}
	e.items[[2]uint32{gen, iid}] = &it
	return &it, nil
}

func (e *pointEdits) block(gen, l, iid uint32, shift uint8) (*editedBlock, error) {
	key := string(pointBlockKey(nil, e.c.cid, gen, l, iid>>shift))
	if b, ok := e.blocks[key]; ok {
		return b, nil
	}
	b := &editedBlock{base: iid >> shift << shift, shift: shift}
	v, closer, err := e.c.store.db.Get([]byte(key))
	if err != nil && !errors.Is(err, pebble.ErrNotFound) {
		return nil, err
	}
	if err == nil {
		err = walkBlock(v, b.base, shift, func(iid uint32, v []byte) {
			b.es = append(b.es, blockEntry{iid, slices.Clone(v)})
		})
		closer.Close()
		if err != nil {
			return nil, err
		}
	}
	e.blocks[key] = b
	return b, nil
}

// delete removes item iid's postings in gen.
func (e *pointEdits) delete(gen, iid uint32) error {
	it, err := e.item(gen, iid)
	if err != nil || it == nil {
		return err
	}
	for _, l := range it.lists {
		b, err := e.block(gen, l, iid, it.shift)
		if err != nil {
			return err
		}
		if i, ok := slices.BinarySearchFunc(b.es, iid, func(x blockEntry, t uint32) int { return cmp.Compare(x.iid, t) }); ok {
			b.es = slices.Delete(b.es, i, i+1)
		}
	}
	e.items[[2]uint32{gen, iid}] = nil
	e.dirty[[2]uint32{gen, iid}] = true
	return nil
}

// put sets item iid's postings p (its old ones in p.Gen deleted first).
func (e *pointEdits) put(iid uint32, p *PointPostings) error {
	if err := e.delete(p.Gen, iid); err != nil {
		return err
	}
	for i, l := range p.Lists {
		b, err := e.block(p.Gen, l, iid, p.Shift)
		if err != nil {
			return err
		}
		if b.shift != p.Shift {
			return fmt.Errorf("%w: point postings of shift %d in a generation of shift %d", ErrInvalidItem, p.Shift, b.shift)
		}
		at, _ := slices.BinarySearchFunc(b.es, iid, func(x blockEntry, t uint32) int { return cmp.Compare(x.iid, t) })
		b.es = slices.Insert(b.es, at, blockEntry{iid, p.Values[i]})
	}
	e.items[[2]uint32{p.Gen, iid}] = &pointItem{points: p.Points, shift: p.Shift, lists: p.Lists}
	e.dirty[[2]uint32{p.Gen, iid}] = true
	return nil
}

// apply adds every edit to b.
func (e *pointEdits) apply(b keyWriter) {
	for k := range e.dirty {
		it := e.items[k]
		key := pointItemKey(e.c.cid, k[0], k[1])
		if it == nil {
			b.Delete(key, nil)
		} else {
			b.Set(key, encodePointItem(&PointPostings{Points: it.points, Shift: it.shift, Lists: it.lists}), nil)
		}
	}
	for k, blk := range e.blocks {
		if len(blk.es) == 0 {
			b.Delete([]byte(k), nil)
		} else {
			b.Set([]byte(k), encodeBlock(nil, blk.base, blk.es), nil)
		}
	}
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

// writePoints records in e what a write of item iid does to the point
// postings: its postings in every generation are deleted, then p's are
// set. With p nil (no point index loaded) the item has none until the
// index is synced (pointindex.Index.Sync).
func (e *pointEdits) write(gens []uint32, iid uint32, p *PointPostings) error {
	for _, g := range gens {
		if err := e.delete(g, iid); err != nil {
			return err
		}
	}
	if p != nil {
		return e.put(iid, p)
	}
	return nil
}

// PointReader reads the posting lists of one generation, through one
// Pebble iterator (a consistent view of the postings as of its opening).
// It is not safe for concurrent use.
type PointReader struct {
	c     *Coll
	it    *pebble.Iterator
	pre   int // length of a list's key prefix
	gen   uint32
	shift uint8
	seek  []byte
}

// NewPointReader opens a reader of gen's posting lists, written with
// shift. Close it.
func (c *Coll) NewPointReader(gen uint32, shift uint8) (*PointReader, error) {
	lo := binary.BigEndian.AppendUint32(collKey(c.cid, subPointList), gen)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(lo)})
	if err != nil {
		return nil, err
	}
	return &PointReader{c: c, it: it, pre: len(lo) + 4, gen: gen, shift: shift}, nil
}

// List calls fn with every item holding postings in list l, ascending by
// internal ID, and its bytes there (valid only during the call).
func (r *PointReader) List(l uint32, fn func(iid uint32, v []byte)) error {
	r.seek = pointBlockKey(r.seek[:0], r.c.cid, r.gen, l, 0)
	prefix := r.seek[:r.pre]
	for ok := r.it.SeekGE(r.seek); ok; ok = r.it.Next() {
		k := r.it.Key()
		if len(k) < r.pre || string(k[:r.pre]) != string(prefix) {
			break
		}
		if len(k) != r.pre+4 {
			return fmt.Errorf("%w: point postings key of %d bytes", ErrCorrupt, len(k))
		}
		block := binary.BigEndian.Uint32(k[r.pre:])
		if block > (1<<32-1)>>r.shift {
			return fmt.Errorf("%w: point postings block %d", ErrCorrupt, block)
		}
		v, err := r.it.ValueAndErr()
		if err != nil {
			return err
		}
		if err := walkBlock(v, block<<r.shift, r.shift, fn); err != nil {
			return err
		}
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
		e, err := decodePointItem(v)
		if err != nil {
			return err
		}
		if err := fn(binary.BigEndian.Uint32(k[len(p):]), e.points); err != nil {
			return err
		}
	}
	return it.Error()
}

// PointWriter writes point postings outside of item writes (an index
// build, or the sync of items written while no index was loaded), in
// unsynced batches of about a megabyte; Flush commits the last one synced.
// It holds the collection's write lock from its first change of a batch
// to the batch's commit (item writes wait, a few milliseconds), since the
// values it rewrites are shared with other items. It is not safe for
// concurrent use.
type PointWriter struct {
	c      *Coll
	e      *pointEdits
	size   int // about the bytes e holds
	gens   []uint32
	locked bool
	// wrote counts the bytes committed since the last Flush.
	wrote int
}

// NewPointWriter returns a writer of point postings.
func (c *Coll) NewPointWriter() *PointWriter {
	return &PointWriter{c: c}
}

const pointWriterBatch = 1 << 20

func (w *PointWriter) begin() error {
	if w.locked {
		return nil
	}
	w.c.lockWrites()
	if err := w.c.checkLive(); err != nil {
		w.c.writeMu.Unlock()
		return err
	}
	w.locked = true
	w.e = w.c.newPointEdits()
	w.size = 0
	w.gens = w.gens[:0]
	return nil
}

// Put replaces item iid's postings in p.Gen by p.
func (w *PointWriter) Put(iid uint32, p PointPostings) error {
	if err := checkPointPostings(iid, &p); err != nil {
		return err
	}
	if err := w.begin(); err != nil {
		return err
	}
	if err := w.e.put(iid, &p); err != nil {
		return err
	}
	if !slices.Contains(w.gens, p.Gen) {
		w.gens = append(w.gens, p.Gen)
	}
	for _, v := range p.Values {
		w.size += len(v) + 8
	}
	if w.size >= pointWriterBatch {
		return w.commit(pebble.NoSync)
	}
	return nil
}

// Delete removes item iid's postings in gen.
func (w *PointWriter) Delete(gen, iid uint32) error {
	if err := w.begin(); err != nil {
		return err
	}
	return w.e.delete(gen, iid)
}

func (w *PointWriter) commit(o *pebble.WriteOptions) error {
	if !w.locked {
		return nil
	}
	defer func() {
		w.locked, w.e = false, nil
		w.c.writeMu.Unlock()
	}()
	for _, g := range w.gens {
		if err := w.c.notePointGenLocked(g); err != nil {
			return err
		}
	}
	b := w.c.store.db.NewBatch()
	defer b.Close()
	w.e.apply(b)
	w.wrote += len(b.Repr())
	return b.Commit(o)
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
	c.lockWrites()
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
	c.lockWrites()
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
