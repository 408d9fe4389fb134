package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Format 1 saved indexes (one Pebble value per blob), rewritten in pages.

// migrateFormat1 turns a format 1 store into format 2. Only the saved
// first-stage index changed: format 1 kept each blob in one Pebble value
// (0x10 cid 0x09 name) with its epoch (0x10 cid 0x0a). Each collection's
// blobs are rewritten in pages as they are, with their epoch (the change
// log after it is still there), and the old keys deleted in the same
// batch; blobs that cannot be read are dropped, and the index is rebuilt
// from the items when first needed. The version is written last, so an
// upgrade cut short resumes on the next open.
func (s *Store) migrateFormat1() error {
	var migrated, dropped []string
	for name, c := range s.colls {
		ok, err := c.migrateLegacyIndex()
		if err != nil {
			s.logger.Warn("storage: format 1 saved first-stage index unreadable; dropped, it is rebuilt from the items on first use",
				"collection", name, "err", err)
			b := s.db.NewBatch()
			c.deleteLegacyIndex(b)
			err = b.Commit(pebble.Sync)
			b.Close()
			if err != nil {
				return fmt.Errorf("storage: upgrading format 1: collection %q: %w", name, err)
			}
			dropped = append(dropped, name)
			continue
		}
		if ok {
			migrated = append(migrated, name)
		}
	}
	if err := s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, 2), pebble.Sync); err != nil {
		return fmt.Errorf("storage: upgrading format 1: %w", err)
	}
	s.logger.Warn("storage: upgraded the store from format 1 to 2: saved first-stage indexes rewritten in pages",
		"migrated", migrated, "dropped", dropped)
	return nil
}

func (c *Coll) deleteLegacyIndex(b *pebble.Batch) {
	legacy := collKey(c.cid, subLegacyIndex)
	b.DeleteRange(legacy, upperBound(legacy), nil)
	b.Delete(collKey(c.cid, subLegacyIndexAt), nil)
}

// migrateLegacyIndex rewrites a format 1 saved index in pages; ok is false
// when the collection had none.
func (c *Coll) migrateLegacyIndex() (ok bool, err error) {
	v, closer, err := c.store.db.Get(collKey(c.cid, subLegacyIndexAt))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if len(v) != 8 {
		closer.Close()
		return false, fmt.Errorf("%w: format 1 saved index epoch", ErrCorrupt)
	}
	epoch := binary.BigEndian.Uint64(v)
	closer.Close()
	save, err := c.BeginIndexSave()
	if err != nil {
		return false, err
	}
	p := collKey(c.cid, subLegacyIndex)
	it, err := c.store.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: upperBound(p)})
	if err != nil {
		save.Abort()
		return false, err
	}
	for it.First(); it.Valid() && err == nil; it.Next() {
		var val []byte
		if val, err = it.ValueAndErr(); err == nil {
			err = save.PutBlob(string(it.Key()[len(p):]), val)
		}
	}
	if err = errors.Join(err, it.Error(), it.Close()); err != nil {
		save.Abort()
		return false, err
	}
	return true, save.Commit(epoch) // deletes the format 1 keys too
}
