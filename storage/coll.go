package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/RoaringBitmap/roaring/v2"
	bsi "github.com/RoaringBitmap/roaring/v2/BitSliceIndexing"
	"github.com/cockroachdb/pebble/v2"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// Coll is one collection. Safe for concurrent use: writes are serialized,
// reads run concurrently with each other and with writes.
type Coll struct {
	store *Store
	name  string
	cid   uint32
	cfg   CollectionConfig

	writeMu sync.Mutex // serializes Write, Delete and Drop
	saveMu  sync.Mutex // held by an IndexSave from begin to commit or abort

	mu      sync.RWMutex // guards the in-memory index below
	dropped bool
	// dropping is set from the start of DropCollection (cleared if it
	// fails): CheckLive reports the collection gone from then on.
	dropping bool
	nextIID  uint32
	epoch    uint64 // write epoch of the last committed Write or Delete
	live     *roaring.Bitmap
	attrs    map[string]*attrIndex
	// attrsLoaded: attrs reflects the postings. Opening a collection does
	// not read them (LoadAttrs does, on the first filter), so that reading
	// items or counting starts fast; until then writes leave attrs alone.
	attrsLoaded bool
}

// attrIndex holds the bitmaps of one attribute: one per string or boolean
// value, and for numbers bit-sliced indexes over order-preserving keys, so
// that a range compiles to a bitmap in a few dozen bitmap operations.
type attrIndex struct {
	values  map[any]*roaring.Bitmap // string or bool value → items
	numbers numIndex
}

// numIndex is a bit-sliced index of numbers. roaring's BSI compares
// negative int64 keys wrongly (v2.30.0: a range of negative keys returns
// items with positive ones), so keys stay non-negative: SortableFloat puts
// negative numbers in [0, 2^63) and the others in [2^63, 2^64), and each
// half has its own BSI keyed by the offset into its half.
type numIndex struct {
	neg, pos *bsi.BSI // nil until used
}

// numKey maps a number to its half (negative or not) and a non-negative
// key whose order within the half is the numeric order; -0 counts as +0,
// and consecutive float64s have consecutive keys.
func numKey(f float64) (negative bool, key int64) {
	if f == 0 {
		f = 0 // -0 → +0
	}
	u := SortableFloat(f)
	if u < 1<<63 {
		return true, int64(u)
	}
	return false, int64(u - 1<<63)
}

func (n *numIndex) set(iid uint32, f float64) {
	negative, key := numKey(f)
	if negative {
		if n.neg == nil {
			n.neg = bsi.NewDefaultBSI()
		}
		n.neg.SetValue(uint64(iid), key)
		return
	}
	if n.pos == nil {
		n.pos = bsi.NewDefaultBSI()
	}
	n.pos.SetValue(uint64(iid), key)
}

func (n *numIndex) clear(iid uint32) {
	for _, b := range []*bsi.BSI{n.neg, n.pos} {
		if b != nil {
			b.ClearValues(roaring.BitmapOf(iid))
		}
	}
}

func (n *numIndex) existence() *roaring.Bitmap {
	out := roaring.New()
	for _, b := range []*bsi.BSI{n.neg, n.pos} {
		if b != nil {
			out.Or(b.GetExistenceBitmap())
		}
	}
	return out
}

// rangeKeys returns the items whose sortable key lies in [lo, hi] (full
// 64-bit sortable keys), splitting the range over the two halves.
func (n *numIndex) rangeKeys(lo, hi uint64) *roaring.Bitmap {
	out := roaring.New()
	if lo > hi {
		return out
	}
	const half = uint64(1) << 63
	if n.neg != nil && lo < half {
		out.Or(n.neg.CompareValue(0, bsi.RANGE, int64(lo), int64(min(hi, half-1)), nil))
	}
	if n.pos != nil && hi >= half {
		out.Or(n.pos.CompareValue(0, bsi.RANGE, int64(max(lo, half)-half), int64(hi-half), nil))
	}
	return out
}

// Name returns the collection's name.
func (c *Coll) Name() string { return c.name }

// Config returns the collection's configuration.
func (c *Coll) Config() CollectionConfig { return c.cfg }

// Item is a stored item.
type Item struct {
	ID    string
	IID   uint32 // dense internal ID
	Cloud wpcsim.Cloud
	Self  wpcsim.Self
	Attrs map[string]any
}

// ItemWrite is one item to store: its cloud as it will read back (see
// Quantize), φ, g(X,X) and attributes. The caller validates the cloud;
// Write trusts it and checks only the ID, attributes and dimension.
type ItemWrite struct {
	ID    string
	Cloud wpcsim.Cloud
	// Half, if not nil, holds Cloud's points in the collection's f16 or
	// bf16 encoding, as QuantizeBits returned them: stored as they are
	// instead of encoded again.
	Half  []uint16
	Phi   []float32
	Self  wpcsim.Self
	Attrs map[string]any
}

// CheckID validates an item ID: 1–512 bytes of valid UTF-8 without
// control characters (a newline or NUL in an ID would forge rows in
// tabular output and lines in ID files). IDs are never rewritten: two
// different byte strings are two different items.
func CheckID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: id: must not be empty", ErrInvalidItem)
	}
	if len(id) > MaxIDLength {
		return fmt.Errorf("%w: id: %d bytes exceeds %d", ErrInvalidItem, len(id), MaxIDLength)
	}
	for i, r := range id {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(id[i:]); size == 1 {
				return fmt.Errorf("%w: id: not valid UTF-8 (byte %d)", ErrInvalidItem, i)
			}
		}
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: id: control character %U at byte %d", ErrInvalidItem, r, i)
		}
	}
	return nil
}

// CheckLive returns ErrCollectionNotFound once the collection is dropped
// or being dropped. A reader that read items while a drop ran calls it
// after reading: what it read may be partial. Safe for concurrent use.
func (c *Coll) CheckLive() error { return c.checkLive() }

func (c *Coll) checkLive() error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.dropped || c.dropping {
		return fmt.Errorf("%w: %q", ErrCollectionNotFound, c.name)
	}
	return nil
}

// Write stores items in one synced batch: all or nothing. Within items the
// same ID twice means the last one wins. An existing ID is replaced in
// place (it keeps its internal ID). It returns the internal IDs, in order.
func (c *Coll) Write(items []ItemWrite) ([]uint32, error) {
	for i := range items {
		if err := CheckID(items[i].ID); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		if err := CheckAttrs(items[i].Attrs); err != nil {
			return nil, fmt.Errorf("item %d (%s): %w", i, QuoteID(items[i].ID), err)
		}
		if items[i].Cloud.Dim != c.cfg.Dim {
			return nil, fmt.Errorf("%w: item %d (%s): dimension %d, collection has %d", ErrInvalidItem, i, QuoteID(items[i].ID), items[i].Cloud.Dim, c.cfg.Dim)
		}
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.checkLive(); err != nil {
		return nil, err
	}
	db := c.store.db
	// Size the batch for its records and φ up front: growing it copies
	// everything written so far (megabytes for a batch of a thousand).
	size := 64
	for i := range items {
		it := &items[i]
		size += 128 + 3*len(it.ID) + recordLen(c.cfg.Encoding, it.ID, it.Cloud) + vectorLen(it.Phi) + 64*len(it.Attrs)
	}
	b := db.NewBatchWithSize(size)
	defer b.Close()

	type change struct {
		iid      uint32
		oldAttrs map[string]any
		newAttrs map[string]any
	}
	changes := make([]change, 0, len(items))
	assigned := map[string]int{} // ID → index in changes, for repeats in the batch
	iids := make([]uint32, len(items))
	c.mu.RLock()
	next := c.nextIID
	c.mu.RUnlock()
	var key []byte
	for i := range items {
		it := &items[i]
		var ch change
		if j, ok := assigned[it.ID]; ok {
			// Repeated in this batch: the earlier write's attributes are
			// what this one replaces.
			ch = changes[j]
			ch.oldAttrs = ch.newAttrs
		} else {
			iid, found, err := c.lookup(it.ID)
			if err != nil {
				return nil, err
			}
			if found {
				old, err := c.readAttrs(iid)
				if err != nil {
					return nil, err
				}
				ch = change{iid: iid, oldAttrs: old}
			} else {
				if next == ^uint32(0) {
					return nil, fmt.Errorf("storage: collection %q has used all 2^32-1 internal IDs", c.name)
				}
				ch = change{iid: next}
				next++
				b.Set(idKey(c.cid, it.ID), binary.BigEndian.AppendUint32(nil, ch.iid), nil)
			}
		}
		// Postings: remove the old values, add the new ones.
		for name, v := range ch.oldAttrs {
			if nv, ok := it.Attrs[name]; !ok || nv != v {
				b.Delete(postingKey(c.cid, name, v, ch.iid), nil)
			}
		}
		for name, v := range it.Attrs {
			if ov, ok := ch.oldAttrs[name]; !ok || ov != v {
				b.Set(postingKey(c.cid, name, v, ch.iid), nil, nil)
			}
		}
		ch.newAttrs = it.Attrs
		// The record and φ are encoded straight into the batch.
		key = iidKeyTo(key[:0], c.cid, subRecord, ch.iid)
		op := b.SetDeferred(len(key), recordLen(c.cfg.Encoding, it.ID, it.Cloud))
		copy(op.Key, key)
		if v := appendRecord(op.Value[:0], c.cfg.Encoding, it.ID, it.Cloud, it.Half, it.Self); len(v) != len(op.Value) {
			panic("storage: record length mismatch")
		}
		if err := op.Finish(); err != nil {
			return nil, err
		}
		key = iidKeyTo(key[:0], c.cid, subPhi, ch.iid)
		op = b.SetDeferred(len(key), vectorLen(it.Phi))
		copy(op.Key, key)
		if v := appendVector(op.Value[:0], it.Self, it.Phi); len(v) != len(op.Value) {
			panic("storage: φ length mismatch")
		}
		if err := op.Finish(); err != nil {
			return nil, err
		}
		b.Set(iidKey(c.cid, subAttrs, ch.iid), encodeAttrs(it.Attrs), nil)
		iids[i] = ch.iid
		if j, ok := assigned[it.ID]; ok {
			changes[j] = ch
		} else {
			assigned[it.ID] = len(changes)
			changes = append(changes, ch)
		}
	}
	b.Set(collKey(c.cid, subNextIID), binary.BigEndian.AppendUint32(nil, next), nil)
	epoch := c.logChanges(b, iids)
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: write to %q: %w", c.name, err)
	}
	if c.store.clouds != nil {
		c.store.clouds.invalidate(c.cid, iids)
	}
	c.mu.Lock()
	c.nextIID = next
	c.epoch = epoch
	for _, ch := range changes {
		c.live.Add(ch.iid)
		c.unindexAttrs(ch.iid, ch.oldAttrs)
		c.indexAttrs(ch.iid, ch.newAttrs)
	}
	c.mu.Unlock()
	return iids, nil
}

// lookup maps a string ID to its internal ID.
func (c *Coll) lookup(id string) (uint32, bool, error) {
	v, closer, err := c.store.db.Get(idKey(c.cid, id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, readError(err, fmt.Sprintf("id map entry of %s in collection %q", QuoteID(id), c.name))
	}
	defer closer.Close()
	if len(v) != 4 {
		return 0, false, fmt.Errorf("%w: id map entry of %s", ErrCorrupt, QuoteID(id))
	}
	return binary.BigEndian.Uint32(v), true, nil
}

func (c *Coll) readAttrs(iid uint32) (map[string]any, error) {
	v, closer, err := c.store.db.Get(iidKey(c.cid, subAttrs, iid))
	if err != nil {
		return nil, readError(err, fmt.Sprintf("attributes of item %d in collection %q", iid, c.name))
	}
	defer closer.Close()
	attrs, err := decodeAttrs(v)
	if err != nil {
		return nil, fmt.Errorf("item %d in collection %q: %w", iid, c.name, err)
	}
	return attrs, nil
}

// Delete removes the items with these IDs in one synced batch and returns
// the internal IDs of those that existed. Unknown IDs are skipped.
func (c *Coll) Delete(ids []string) ([]uint32, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.checkLive(); err != nil {
		return nil, err
	}
	b := c.store.db.NewBatch()
	defer b.Close()
	type gone struct {
		iid   uint32
		attrs map[string]any
	}
	var removed []gone
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		iid, found, err := c.lookup(id)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		attrs, err := c.readAttrs(iid)
		if err != nil {
			return nil, err
		}
		for name, v := range attrs {
			b.Delete(postingKey(c.cid, name, v, iid), nil)
		}
		b.Delete(idKey(c.cid, id), nil)
		b.Delete(iidKey(c.cid, subRecord, iid), nil)
		b.Delete(iidKey(c.cid, subPhi, iid), nil)
		b.Delete(iidKey(c.cid, subAttrs, iid), nil)
		removed = append(removed, gone{iid, attrs})
	}
	if len(removed) == 0 {
		return nil, nil
	}
	iids := make([]uint32, len(removed))
	for i, g := range removed {
		iids[i] = g.iid
	}
	epoch := c.logChanges(b, iids)
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: delete from %q: %w", c.name, err)
	}
	if c.store.clouds != nil {
		c.store.clouds.invalidate(c.cid, iids)
	}
	c.mu.Lock()
	c.epoch = epoch
	for _, g := range removed {
		c.live.Remove(g.iid)
		c.unindexAttrs(g.iid, g.attrs)
	}
	c.mu.Unlock()
	return iids, nil
}

// Get returns the live item with this ID, or ErrNotFound.
func (c *Coll) Get(id string) (Item, error) {
	if err := c.checkLive(); err != nil {
		return Item{}, err
	}
	iid, found, err := c.lookup(id)
	if err != nil {
		return Item{}, err
	}
	if !found {
		return Item{}, fmt.Errorf("%w: %s in collection %q", ErrNotFound, QuoteID(id), c.name)
	}
	return c.GetByIID(iid)
}

// GetByIID returns the item with this internal ID.
func (c *Coll) GetByIID(iid uint32) (Item, error) {
	id, cloud, self, err := c.Cloud(iid)
	if err != nil {
		return Item{}, err
	}
	attrs, err := c.readAttrs(iid)
	if err != nil {
		return Item{}, err
	}
	return Item{ID: id, IID: iid, Cloud: cloud, Self: self, Attrs: attrs}, nil
}

// Cloud reads only an item's record: its string ID, cloud and g(X,X).
// GetByIID also reads attributes.
func (c *Coll) Cloud(iid uint32) (string, wpcsim.Cloud, wpcsim.Self, error) {
	return c.ReadCloud(iid, nil)
}

// ReadCloud is Cloud decoding into buf (nil: fresh memory): the rerank
// path, which reads many records and should allocate for none. The cloud
// aliases buf until its next use.
func (c *Coll) ReadCloud(iid uint32, buf *CloudBuf) (string, wpcsim.Cloud, wpcsim.Self, error) {
	cache := c.store.clouds
	var gen uint64
	if cache != nil {
		e, g, ok := cache.get(cacheKey(c.cid, iid))
		if ok {
			return e.id, e.cloud, e.self, nil
		}
		gen = g
	}
	v, closer, err := c.store.db.Get(iidKey(c.cid, subRecord, iid))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", wpcsim.Cloud{}, wpcsim.Self{}, fmt.Errorf("%w: internal id %d in collection %q", ErrNotFound, iid, c.name)
	}
	if err != nil {
		return "", wpcsim.Cloud{}, wpcsim.Self{}, readError(err, fmt.Sprintf("item %d in collection %q", iid, c.name))
	}
	defer closer.Close()
	id, cl, self, err := decodeRecordInto(v, c.cfg.Encoding, c.cfg.Dim, buf)
	if err != nil {
		return "", wpcsim.Cloud{}, wpcsim.Self{}, fmt.Errorf("item %d in collection %q: %w", iid, c.name, err)
	}
	if cache == nil {
		return id, cl, self, nil
	}
	if size := int64(4*(len(cl.Points)+len(cl.Weights)) + len(id) + 64); size <= maxCachedCloudBytes {
		// The cache keeps its own copy: buf is reused by the caller.
		own := wpcsim.Cloud{Dim: cl.Dim, Weights: slices.Clone(cl.Weights), Points: slices.Clone(cl.Points)}
		cache.put(gen, &cachedCloud{key: cacheKey(c.cid, iid), id: id, cloud: own, self: self, size: size})
	}
	return id, cl, self, nil
}

// Lookup maps a string ID to its internal ID (ok false when absent).
func (c *Coll) Lookup(id string) (uint32, bool, error) { return c.lookup(id) }

// Phi returns the stored φ and g(X,X) of an item.
func (c *Coll) Phi(iid uint32) ([]float32, wpcsim.Self, error) {
	v, closer, err := c.store.db.Get(iidKey(c.cid, subPhi, iid))
	if err != nil {
		return nil, wpcsim.Self{}, readError(err, fmt.Sprintf("φ of item %d in collection %q", iid, c.name))
	}
	defer closer.Close()
	phi, self, err := decodeVector(v)
	if err != nil {
		return nil, self, fmt.Errorf("item %d in collection %q: %w", iid, c.name, err)
	}
	return phi, self, nil
}

// ScanVectors calls fn with every item's internal ID, g(X,X) and φ, in
// internal-ID order, reading only the small φ keys (never the points): this
// is how a first-stage index is rebuilt. phi is only valid during the call.
func (c *Coll) ScanVectors(fn func(iid uint32, self wpcsim.Self, phi []float32) error) error {
	p := collKey(c.cid, subPhi)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	var buf []float32
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(p)+4 {
			return fmt.Errorf("%w: φ key %x", ErrCorrupt, k)
		}
		self, phi, err := decodeVectorInto(buf[:0], it.Value())
		if err != nil {
			return err
		}
		buf = phi
		if err := fn(binary.BigEndian.Uint32(k[len(p):]), self, phi); err != nil {
			return err
		}
	}
	return iterError(it.Error(), fmt.Sprintf("φ vectors of collection %q", c.name))
}

// Count returns the number of live items.
func (c *Coll) Count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return int(c.live.GetCardinality())
}

// Live returns a copy of the bitmap of live internal IDs.
func (c *Coll) Live() *roaring.Bitmap {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live.Clone()
}

// Equal returns a copy of the bitmap of items whose attribute name equals v
// (a string or bool), empty when none.
func (c *Coll) Equal(name string, v any) *roaring.Bitmap {
	if c.LoadAttrs() != nil {
		return roaring.New()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if a := c.attrs[name]; a != nil {
		if bm := a.values[v]; bm != nil {
			return bm.Clone()
		}
	}
	return roaring.New()
}

// Has returns the bitmap of items that have attribute name, of any type.
func (c *Coll) Has(name string) *roaring.Bitmap {
	if c.LoadAttrs() != nil {
		return roaring.New()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := roaring.New()
	a := c.attrs[name]
	if a == nil {
		return out
	}
	for _, bm := range a.values {
		out.Or(bm)
	}
	out.Or(a.numbers.existence())
	return out
}

// Range returns the bitmap of items whose numeric attribute name lies
// between lo and hi, each end included unless loOpen / hiOpen. Infinite
// bounds are allowed.
func (c *Coll) Range(name string, lo, hi float64, loOpen, hiOpen bool) *roaring.Bitmap {
	if c.LoadAttrs() != nil {
		return roaring.New()
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	a := c.attrs[name]
	if a == nil {
		return roaring.New()
	}
	if lo == 0 {
		lo = 0 // -0 → +0
	}
	if hi == 0 {
		hi = 0
	}
	klo, khi := SortableFloat(lo), SortableFloat(hi)
	if loOpen {
		if klo == ^uint64(0) {
			return roaring.New()
		}
		klo++
	}
	if hiOpen {
		if khi == 0 {
			return roaring.New()
		}
		khi--
	}
	return a.numbers.rangeKeys(klo, khi)
}

// DiskUsage estimates the bytes the collection occupies on disk.
func (c *Coll) DiskUsage() uint64 { return c.store.estimateDiskUsage(c.cid) }

// FeatureSample returns the imported random-feature sample stored with the
// collection (only when Config().Features.Imported).
func (c *Coll) FeatureSample() (wpcsim.FeatureSample, error) {
	out := wpcsim.FeatureSample{Dim: c.cfg.Dim}
	for t := 0; t < 256; t++ {
		w, errW := c.getFloats(append(collKey(c.cid, subFeatures), byte(t), 'W'))
		b, errB := c.getFloats(append(collKey(c.cid, subFeatures), byte(t), 'b'))
		if errors.Is(errW, pebble.ErrNotFound) && errors.Is(errB, pebble.ErrNotFound) {
			break
		}
		if err := errors.Join(errW, errB); err != nil {
			return out, fmt.Errorf("%w: feature sample term %d: %w", ErrCorrupt, t, err)
		}
		out.W = append(out.W, w)
		out.B = append(out.B, b)
	}
	if err := out.Validate(c.cfg.Similarity); err != nil {
		return out, fmt.Errorf("%w: stored feature sample: %w", ErrCorrupt, err)
	}
	return out, nil
}

func (c *Coll) getFloats(key []byte) ([]float32, error) {
	v, closer, err := c.store.db.Get(key)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return decodeFloats(v)
}

// resetIndex empties the in-memory index (a new collection: no postings).
func (c *Coll) resetIndex() {
	c.live = roaring.New()
	c.attrs = map[string]*attrIndex{}
	c.attrsLoaded = true
}

// indexAttrs and unindexAttrs keep the attribute bitmaps up to date with a
// committed write (c.mu held). Both are idempotent, so a write whose
// postings LoadAttrs already read is applied again harmlessly.
func (c *Coll) indexAttrs(iid uint32, attrs map[string]any) {
	if !c.attrsLoaded {
		return
	}
	for name, v := range attrs {
		addAttr(c.attrs, iid, name, v)
	}
}

func addAttr(attrs map[string]*attrIndex, iid uint32, name string, v any) {
	a := attrs[name]
	if a == nil {
		a = &attrIndex{values: map[any]*roaring.Bitmap{}}
		attrs[name] = a
	}
	if f, ok := v.(float64); ok {
		a.numbers.set(iid, f)
		return
	}
	bm := a.values[v]
	if bm == nil {
		bm = roaring.New()
		a.values[v] = bm
	}
	bm.Add(iid)
}

func (c *Coll) unindexAttrs(iid uint32, attrs map[string]any) {
	if !c.attrsLoaded {
		return
	}
	for name, v := range attrs {
		a := c.attrs[name]
		if a == nil {
			continue
		}
		if _, ok := v.(float64); ok {
			a.numbers.clear(iid)
			continue
		}
		if bm := a.values[v]; bm != nil {
			bm.Remove(iid)
			if bm.IsEmpty() {
				delete(a.values, v)
			}
		}
	}
}

// loadIndex rebuilds the bitmap of live items from the ID map; the
// attribute bitmaps wait for LoadAttrs.
func (c *Coll) loadIndex() error {
	c.resetIndex()
	c.attrsLoaded = false
	db := c.store.db
	v, closer, err := db.Get(collKey(c.cid, subNextIID))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return err
	default:
		if len(v) != 4 {
			closer.Close()
			return fmt.Errorf("%w: next internal id", ErrCorrupt)
		}
		c.nextIID = binary.BigEndian.Uint32(v)
		closer.Close()
	}
	if c.epoch, err = c.getUint64(collKey(c.cid, subEpoch)); err != nil {
		return err
	}
	p := collKey(c.cid, subID)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	var ids []uint32
	for it.First(); it.Valid(); it.Next() {
		if len(it.Value()) != 4 {
			it.Close()
			return fmt.Errorf("%w: id map entry %q", ErrCorrupt, it.Key()[len(p):])
		}
		ids = append(ids, binary.BigEndian.Uint32(it.Value()))
	}
	if err := errors.Join(iterError(it.Error(), fmt.Sprintf("id map of collection %q", c.name)), it.Close()); err != nil {
		return err
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	c.live.AddMany(ids)
	return nil
}

// LoadAttrs reads the attribute bitmaps from the postings, once. A filter
// needs them; opening a collection does not read them, so that commands
// that get items or count start fast. Equal, Has and Range call it and
// match nothing when it fails: call it first to see the error.
func (c *Coll) LoadAttrs() error {
	c.mu.RLock()
	loaded := c.attrsLoaded
	c.mu.RUnlock()
	if loaded {
		return nil
	}
	// Under the write lock: a write committed meanwhile either has its
	// postings read here or updates the loaded bitmaps after.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.attrsLoaded {
		return nil
	}
	p := collKey(c.cid, subPosting)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	attrs := map[string]*attrIndex{}
	for it.First(); it.Valid(); it.Next() {
		name, v, iid, err := parsePosting(it.Key()[len(p):])
		if err != nil {
			return fmt.Errorf("collection %q: %w", c.name, err)
		}
		addAttr(attrs, iid, name, v)
	}
	if err := iterError(it.Error(), fmt.Sprintf("postings of collection %q", c.name)); err != nil {
		return err
	}
	c.attrs, c.attrsLoaded = attrs, true
	return nil
}

// logChanges adds the next write epoch and a change-log entry per item to
// b, and returns the epoch. The caller holds writeMu.
func (c *Coll) logChanges(b *pebble.Batch, iids []uint32) uint64 {
	c.mu.RLock()
	epoch := c.epoch + 1
	c.mu.RUnlock()
	b.Set(collKey(c.cid, subEpoch), binary.BigEndian.AppendUint64(nil, epoch), nil)
	for _, iid := range iids {
		k := binary.BigEndian.AppendUint64(collKey(c.cid, subChange), epoch)
		b.Set(binary.BigEndian.AppendUint32(k, iid), nil, nil)
	}
	return epoch
}

// getUint64 reads a big-endian uint64 key; 0 when absent.
func (c *Coll) getUint64(key []byte) (uint64, error) {
	v, closer, err := c.store.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: uint64 key %x", ErrCorrupt, key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Epoch returns the write epoch of the last committed Write or Delete. An
// index that reflects every change up to it may be saved with it.
func (c *Coll) Epoch() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// ChangesSince calls fn once for every item written or deleted after epoch
// (in internal-ID order), so a loaded index can be brought up to date: the
// caller looks each one up (live or not) and re-adds or deletes it.
func (c *Coll) ChangesSince(epoch uint64, fn func(iid uint32) error) error {
	lo := binary.BigEndian.AppendUint64(collKey(c.cid, subChange), epoch+1)
	hi := upperBound(collKey(c.cid, subChange))
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	changed := roaring.New()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) < len(lo)+4 {
			it.Close()
			return fmt.Errorf("%w: change log key %x of collection %q", ErrCorrupt, k, c.name)
		}
		changed.Add(binary.BigEndian.Uint32(k[len(k)-4:]))
	}
	if err := errors.Join(iterError(it.Error(), fmt.Sprintf("change log of collection %q", c.name)), it.Close()); err != nil {
		return err
	}
	for iter := changed.Iterator(); iter.HasNext(); {
		if err := fn(iter.Next()); err != nil {
			return err
		}
	}
	return nil
}

// IsLive reports whether the internal ID is a live item.
func (c *Coll) IsLive(iid uint32) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live.Contains(iid)
}
