package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"

	"github.com/cockroachdb/pebble/v2"
)

// ScanIDs calls fn with the string and internal ID of every item whose ID
// sorts after after (byte-wise; "" starts at the first), in ID order, until
// fn returns false or an error. It reads the ID map only. The scan sees a
// consistent snapshot of the ID map as of its start.
func (c *Coll) ScanIDs(after string, fn func(id string, iid uint32) (bool, error)) error {
	if err := c.checkLive(); err != nil {
		return err
	}
	p := collKey(c.cid, subID)
	lo := p
	if after != "" {
		// The smallest key after idKey(after) is idKey(after) + "\x00".
		lo = append(idKey(c.cid, after), 0)
	}
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: upperBound(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		v := it.Value()
		if len(v) != 4 {
			return fmt.Errorf("%w: id map entry %q", ErrCorrupt, it.Key()[len(p):])
		}
		more, err := fn(string(it.Key()[len(p):]), binary.BigEndian.Uint32(v))
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// Attrs returns the attributes of the item with this internal ID;
// ErrNotFound when there is no such item (deleted meanwhile).
func (c *Coll) Attrs(iid uint32) (map[string]any, error) {
	v, closer, err := c.store.db.Get(iidKey(c.cid, subAttrs, iid))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: internal id %d in collection %q", ErrNotFound, iid, c.name)
	}
	if err != nil {
		return nil, readError(err, "attributes of "+c.itemName(iid, nil))
	}
	defer closer.Close()
	attrs, err := decodeAttrs(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.itemName(iid, nil), err)
	}
	return attrs, nil
}

// UpdateAttrs sets and removes attributes of the item with this ID in one
// synced batch, without rewriting its cloud, and keeps the filter bitmaps
// in step. A name in both set and unset is an error, as is an unknown ID
// (ErrNotFound). It returns the attributes after the update.
func (c *Coll) UpdateAttrs(id string, set map[string]any, unset []string) (map[string]any, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	for _, name := range unset {
		if _, ok := set[name]; ok {
			return nil, invalidItem("attrs."+name, "both set and unset")
		}
	}
	c.lockWrites()
	defer c.writeMu.Unlock()
	if err := c.checkLive(); err != nil {
		return nil, err
	}
	iid, found, err := c.lookup(id)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: %q in collection %q", ErrNotFound, id, c.name)
	}
	old, err := c.readAttrs(iid)
	if err != nil {
		return nil, err
	}
	next := maps.Clone(old)
	if next == nil {
		next = map[string]any{}
	}
	maps.Copy(next, set)
	for _, name := range unset {
		delete(next, name)
	}
	if err := CheckAttrs(next); err != nil {
		return nil, fmt.Errorf("item %q: %w", id, err)
	}
	b := c.store.db.NewBatch()
	defer b.Close()
	writePostings(b, c.cid, iid, old, next, nil)
	b.Set(iidKey(c.cid, subAttrs, iid), encodeAttrs(next), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: update attributes in %q: %w", c.name, err)
	}
	c.mu.Lock()
	c.unindexAttrs(iid, old)
	c.indexAttrs(iid, next)
	c.mu.Unlock()
	return next, nil
}
