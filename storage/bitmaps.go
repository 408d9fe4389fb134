package storage

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	bsi "github.com/RoaringBitmap/roaring/v2/BitSliceIndexing"
	"github.com/cockroachdb/pebble/v2"
)

// Attribute bitmaps: one roaring bitmap per string, boolean or null value
// (a list's elements included) and a bit-sliced index per numeric
// attribute, rebuilt from the postings by LoadAttrs and kept up to date by
// every committed write.

// attrIndex holds the bitmaps of one attribute: one per posting value
// (string, bool, nil for null, listMarker{} for every item whose value is
// a list), for scalar numbers bit-sliced indexes over order-preserving
// keys, so that a range compiles to a bitmap in a few dozen bitmap
// operations, and for numbers in lists one bitmap per number (a
// bit-sliced index holds one value per item).
type attrIndex struct {
	values      map[any]*roaring.Bitmap
	numbers     numIndex
	listNumbers map[float64]*roaring.Bitmap // -0 as +0
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

// Equal returns a copy of the bitmap of items whose attribute name equals v
// (a string, bool or nil for null) or is a list holding v, empty when
// none.
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
	return out // (a list's marker is in values, so listNumbers add nothing)
}

// Range returns the bitmap of items whose numeric attribute name lies
// between lo and hi, or is a list holding such a number, each end included
// unless loOpen / hiOpen. Infinite bounds are allowed.
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
	out := a.numbers.rangeKeys(klo, khi)
	for f, bm := range a.listNumbers {
		if k := SortableFloat(f); k >= klo && k <= khi {
			out.Or(bm)
		}
	}
	return out
}

// resetBitmaps empties the live and attribute bitmaps (a new collection: no postings).
func (c *Coll) resetBitmaps() {
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
	eachPosting(attrs, func(name string, v any) { addAttr(c.attrs, iid, name, v) })
}

// addAttr adds item iid's posting value v of attribute name.
func addAttr(attrs map[string]*attrIndex, iid uint32, name string, v any) {
	a := attrs[name]
	if a == nil {
		a = &attrIndex{values: map[any]*roaring.Bitmap{}}
		attrs[name] = a
	}
	switch x := v.(type) {
	case float64:
		a.numbers.set(iid, x)
		return
	case listNumber:
		f := float64(x)
		if f == 0 {
			f = 0 // -0 → +0
		}
		if a.listNumbers == nil {
			a.listNumbers = map[float64]*roaring.Bitmap{}
		}
		bm := a.listNumbers[f]
		if bm == nil {
			bm = roaring.New()
			a.listNumbers[f] = bm
		}
		bm.Add(iid)
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
	for p := range postingsOf(attrs) {
		a := c.attrs[p.name]
		if a == nil {
			continue
		}
		switch x := p.v.(type) {
		case float64:
			a.numbers.clear(iid)
		case listNumber:
			f := float64(x)
			if f == 0 {
				f = 0
			}
			removeFrom(a.listNumbers, f, iid)
		default:
			removeFrom(a.values, p.v, iid)
		}
	}
}

// removeFrom removes iid from m[k], dropping the bitmap when it empties.
func removeFrom[K comparable](m map[K]*roaring.Bitmap, k K, iid uint32) {
	if bm := m[k]; bm != nil {
		bm.Remove(iid)
		if bm.IsEmpty() {
			delete(m, k)
		}
	}
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
