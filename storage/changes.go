package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"
)

// The change log: a write epoch per committed Write or Delete and an
// entry per item it touched, so that a saved first-stage index is brought
// up to date on load (see the package doc, # Saved index).

// logChanges adds the next write epoch and a change-log entry per item to
// b, and returns the epoch. The caller holds writeMu.
func (c *Coll) logChanges(b *pebble.Batch, iids []uint32) uint64 {
	c.mu.RLock()
	last := c.epoch
	c.mu.RUnlock()
	return c.logChangesAt(b, iids, last)
}

// logChangesAt is logChanges after epoch last (a staged write's base,
// pipeline.go).
func (c *Coll) logChangesAt(b *pebble.Batch, iids []uint32, last uint64) uint64 {
	epoch := last + 1
	b.Set(collKey(c.cid, subEpoch), binary.BigEndian.AppendUint64(nil, epoch), nil)
	prefix := binary.BigEndian.AppendUint64(collKey(c.cid, subChange), epoch)
	k := prefix
	for _, iid := range iids {
		k = binary.BigEndian.AppendUint32(k[:len(prefix)], iid)
		b.Set(k, nil, nil) // the batch copies it
	}
	return epoch
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
