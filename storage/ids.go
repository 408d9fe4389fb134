package storage

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// ID returns the string ID of an internal ID: from the cloud cache, read
// through it when there is one, else from the head of the item's record
// (the cloud is not decoded). A deleted or unknown iid is ErrNotFound.
func (c *Coll) ID(iid uint32) (string, error) {
	if cache := c.store.clouds; cache != nil {
		if e, _, ok := cache.get(cacheKey(c.cid, iid)); ok {
			return e.rec.ID, nil
		}
		// Read it through the cache: the next search finding this item
		// (a hit is likely found again) skips Pebble.
		var buf CloudBuf
		rec, err := c.ReadCloud(iid, &buf)
		return rec.ID, err
	}
	v, closer, err := c.store.db.Get(iidKey(c.cid, subRecord, iid))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", fmt.Errorf("%w: internal id %d in collection %q", ErrNotFound, iid, c.name)
	}
	if err != nil {
		return "", readError(err, fmt.Sprintf("item %d in collection %q", iid, c.name))
	}
	defer closer.Close()
	id, _, err := decodeRecordID(v)
	if err != nil {
		return "", fmt.Errorf("item with internal id %d in collection %q: %w", iid, c.name, err)
	}
	return id, nil
}

// itemName names an item in an error: by its ID, read from rec (the
// bytes of its record; nil: read them) when their head decodes, with its
// internal number; by the number alone when the ID is unreadable too.
func (c *Coll) itemName(iid uint32, rec []byte) string {
	if rec == nil {
		if v, closer, err := c.store.db.Get(iidKey(c.cid, subRecord, iid)); err == nil {
			defer closer.Close()
			rec = v
		}
	}
	if id, _, err := decodeRecordID(rec); err == nil {
		return fmt.Sprintf("item %s (internal id %d) in collection %q", QuoteID(id), iid, c.name)
	}
	return fmt.Sprintf("item with internal id %d in collection %q", iid, c.name)
}
