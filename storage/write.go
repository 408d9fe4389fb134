package storage

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Writes: Write and Delete, each one synced Pebble batch.

// ItemWrite is one item to store: its cloud as it will read back (see
// Quantize), g(X,X) and attributes. The caller validates the cloud; Write
// trusts it and checks only the ID, attributes and dimension. φ is not
// stored: it is recomputed from the record when an index is built.
type ItemWrite struct {
	ID    string
	Cloud wpcsim.Cloud
	// Half, if not nil, holds Cloud's points in the collection's f16 or
	// bf16 encoding, as QuantizeBits returned them: stored as they are
	// instead of encoded again.
	Half  []uint16
	Self  wpcsim.Self
	Attrs map[string]any
	// Points, if not nil, are the item's postings in the loaded point
	// index (points.go), written in the same batch; the item's postings
	// of every generation are deleted either way.
	Points *PointPostings
}

// CheckID validates an item ID: 1–512 bytes of valid UTF-8 without
// control characters (a newline or NUL in an ID would forge rows in
// tabular output and lines in ID files). IDs are never rewritten: two
// different byte strings are two different items.
func CheckID(id string) error {
	if id == "" {
		return invalidItem("id", "must not be empty")
	}
	if len(id) > MaxIDLength {
		return invalidItem("id", "%d bytes exceeds %d", len(id), MaxIDLength)
	}
	for i, r := range id {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(id[i:]); size == 1 {
				return invalidItem("id", "not valid UTF-8 (byte %d)", i)
			}
		}
		if unicode.IsControl(r) {
			return invalidItem("id", "control character %U at byte %d", r, i)
		}
	}
	return nil
}

// Write stores items in one synced batch (a large write: its new items'
// records and attributes as ingested SSTables, then one synced batch;
// bulk.go): all or nothing. Within items the
// same ID twice means the last one wins. An existing ID is replaced in
// place (it keeps its internal ID). It returns the internal IDs, in order.
// It is Stage followed by Wait (pipeline.go).
func (c *Coll) Write(items []ItemWrite) ([]uint32, error) {
	p, err := c.Stage(items, nil)
	if err != nil {
		return nil, err
	}
	return p.Wait()
}

// Stage does the part of Write that needs no disk sync, in the caller, and
// leaves the rest to the returned PendingWrite's commit, which runs after
// the commits of the writes staged before it (pipeline.go has the design).
// then, if not nil, is called on the commit's goroutine once the write is
// durable and applied (or failed), before Wait returns. An error here
// means nothing was staged and then is not called. The items' clouds and
// attributes must not change until Wait returns: a bulk write's tables
// are encoded from them on their own goroutine (bulk.go).
func (c *Coll) Stage(items []ItemWrite, then func(iids []uint32, err error)) (*PendingWrite, error) {
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
		if p := items[i].Points; p != nil {
			if err := checkPointPostings(uint32(i), p); err != nil {
				return nil, err
			}
		}
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.checkLive(); err != nil {
		return nil, err
	}
	gens, err := c.pointGensLocked()
	if err != nil {
		return nil, err
	}
	// Point postings are edited only by a write that runs alone (the
	// staged writes' overlay does not cover them), and so is a write that
	// touches an ID a staged write holds (pipeline.go).
	alone := len(gens) > 0
	for i := range items {
		if items[i].Points != nil {
			alone = true
		}
	}
	first, epoch := c.stagedBaseLocked(items, alone)
	// A large write is a bulk write (bulk.go): the records and attributes
	// of its new items are written as SSTables and ingested first, the
	// rest (IDs, postings, counters, change log, replaced items) committed
	// after them in one batch.
	bulk := c.store.bulkWriteBytes > 0 && writeBytes(c.cfg.Encoding, items) >= c.store.bulkWriteBytes
	// Size the batch for its records up front: growing it copies
	// everything written so far (megabytes for a batch of a thousand).
	size := 64
	for i := range items {
		it := &items[i]
		size += 128 + 3*len(it.ID) + 64*len(it.Attrs)
		if !bulk {
			size += recordLen(c.cfg.Encoding, it.ID, it.Cloud)
		}
	}
	b := c.store.db.NewBatchWithSize(size)
	p := &PendingWrite{c: c, b: b, done: make(chan struct{}), then: then}
	handed := false
	defer func() {
		if !handed { // not handed to the commit
			b.Close()
		}
	}()

	changes := make([]writeChange, 0, len(items))
	assigned := make(map[string]int, len(items)) // ID → index in changes, for repeats in the batch
	iids := make([]uint32, len(items))
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].ID
	}
	existing, err := c.lookupMany(ids)
	if err != nil {
		return nil, err
	}
	next := first
	// The ID map and posting changes go into b directly, or, in a bulk
	// write, in key order (see sortedOps).
	var small keyWriter = b
	var ops *sortedOps
	if bulk {
		n := 1 // each new ID, and each item's postings
		for i := range items {
			n += 1 + len(items[i].Attrs)
		}
		ops = newSortedOps(n)
		small = ops
	}
	// fresh[k] is the item whose record and attributes iid first+k gets
	// (the last of its repeats), for a bulk write.
	var fresh []int
	for i := range items {
		if p := items[i].Points; p != nil && !slices.Contains(gens, p.Gen) {
			gens = append(slices.Clip(gens), p.Gen)
		}
	}
	points := c.newPointEdits()
	var key, iidBytes []byte
	idPrefix := collKey(c.cid, subID)
	for i := range items {
		it := &items[i]
		var ch writeChange
		if j, ok := assigned[it.ID]; ok {
			// Repeated in this batch: the earlier write's attributes are
			// what this one replaces.
			ch = changes[j]
			ch.oldAttrs = ch.newAttrs
		} else {
			if iid, found := existing[it.ID]; found {
				old, err := c.readAttrs(iid)
				if err != nil {
					return nil, err
				}
				ch = writeChange{iid: iid, oldAttrs: old}
			} else {
				if next == ^uint32(0) {
					return nil, fmt.Errorf("storage: collection %q has used all 2^32-1 internal IDs", c.name)
				}
				ch = writeChange{iid: next}
				next++
				key = append(append(key[:0], idPrefix...), it.ID...)
				iidBytes = binary.BigEndian.AppendUint32(iidBytes[:0], ch.iid)
				small.Set(key, iidBytes, nil)
			}
		}
		key = writePostings(small, c.cid, ch.iid, ch.oldAttrs, it.Attrs, key)
		if ch.iid >= first { // a new item: no postings to delete
			for _, g := range gens {
				if _, ok := points.items[[2]uint32{g, ch.iid}]; !ok {
					points.items[[2]uint32{g, ch.iid}] = nil
				}
			}
		}
		if err := points.write(gens, ch.iid, it.Points); err != nil {
			return nil, err
		}
		ch.newAttrs = it.Attrs
		if bulk && ch.iid >= first {
			if k := int(ch.iid - first); k < len(fresh) {
				fresh[k] = i
			} else {
				fresh = append(fresh, i)
			}
		} else {
			// The record is encoded straight into the batch.
			key = iidKeyTo(key[:0], c.cid, subRecord, ch.iid)
			op := b.SetDeferred(len(key), recordLen(c.cfg.Encoding, it.ID, it.Cloud))
			copy(op.Key, key)
			if v := appendRecord(op.Value[:0], c.cfg.Encoding, it.ID, it.Cloud, it.Half, it.Self); len(v) != len(op.Value) {
				panic("storage: record length mismatch")
			}
			if err := op.Finish(); err != nil {
				return nil, err
			}
			b.Set(iidKey(c.cid, subAttrs, ch.iid), encodeAttrs(it.Attrs), nil)
		}
		iids[i] = ch.iid
		if j, ok := assigned[it.ID]; ok {
			changes[j] = ch
		} else {
			assigned[it.ID] = len(changes)
			changes = append(changes, ch)
		}
	}
	points.apply(small)
	if len(fresh) > 0 {
		// Written and synced on their own goroutines, while this
		// goroutine goes on and the writes staged before commit.
		p.tables = c.writeFresh(items, first, fresh)
	}
	b.Set(collKey(c.cid, subNextIID), binary.BigEndian.AppendUint32(nil, next), nil)
	epoch = c.logChangesAt(b, iids, epoch)
	p.iids, p.changes, p.next, p.epoch, p.ids = iids, changes, next, epoch, assigned
	handed = true
	p.encode(ops)
	if alone {
		// Committed here, under writeMu, which guards pointGens (nothing
		// is staged before it: stagedBaseLocked waited).
		c.commitGroup([]*PendingWrite{p})
		if p.err == nil {
			c.pointGens = gens
		}
		return p, nil
	}
	c.pushStagedLocked(p)
	c.enqueueLocked(p)
	return p, nil
}

// writeChange is what a write does to one item: its internal ID and its
// attributes before and after.
type writeChange struct {
	iid      uint32
	oldAttrs map[string]any
	newAttrs map[string]any
}

// Delete removes the items with these IDs in one synced batch and returns
// the internal IDs of those that existed. Unknown IDs are skipped.
func (c *Coll) Delete(ids []string) ([]uint32, error) {
	c.lockWrites()
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
	gens, err := c.pointGensLocked()
	if err != nil {
		return nil, err
	}
	points := c.newPointEdits()
	var key []byte
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
		key = writePostings(b, c.cid, iid, attrs, nil, key)
		if err := points.write(gens, iid, nil); err != nil {
			return nil, err
		}
		b.Delete(idKey(c.cid, id), nil)
		b.Delete(iidKey(c.cid, subRecord, iid), nil)
		b.Delete(iidKey(c.cid, subAttrs, iid), nil)
		removed = append(removed, gone{iid, attrs})
	}
	if len(removed) == 0 {
		return nil, nil
	}
	points.apply(b)
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

// writePostings adds to b the posting changes of item iid whose attributes
// go from old to next: the postings only old has are deleted, those only
// next has are set. key is a buffer for the keys (b copies them); it is
// returned, grown, for the next call.
func writePostings(b keyWriter, cid, iid uint32, old, next map[string]any, key []byte) []byte {
	// Both sides go through postingsOf's sets, a new item's too: a list
	// holding -0 and +0 keeps one of them there (equal keys), and its
	// stored postings must be the ones a later update deletes. Setting
	// every element's key (to save the sets' CPU) left the other one
	// behind after an update, and the filter then matched it
	// (query's TestCompileStorageRandom, seed 1).
	was, is := postingsOf(old), postingsOf(next)
	for p := range was {
		if _, ok := is[p]; !ok {
			key = postingKeyTo(key[:0], cid, p.name, p.v, iid)
			b.Delete(key, nil)
		}
	}
	for p := range is {
		if _, ok := was[p]; !ok {
			key = postingKeyTo(key[:0], cid, p.name, p.v, iid)
			b.Set(key, nil, nil)
		}
	}
	return key
}
