package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// versionKey holds the store's format version (FormatVersion, in
// config.go) as a big-endian uint32. Opening an older store upgrades it
// (migrateFormat1 in savedindex_migrate.go, migrateFormat2 here).
var versionKey = []byte("\x00version")

// readFormat returns the store's format version, writing FormatVersion
// into a new store. A version this build does not read is ErrIncompatible.
func (s *Store) readFormat() (uint32, error) {
	v, closer, err := s.db.Get(versionKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, FormatVersion), pebble.Sync); err != nil {
			return 0, fmt.Errorf("storage: write format version: %w", err)
		}
	case err != nil:
		return 0, fmt.Errorf("storage: read format version: %w", err)
	default:
		got := uint32(0)
		if len(v) == 4 {
			got = binary.BigEndian.Uint32(v)
		}
		closer.Close()
		switch got {
		case 1, 2, FormatVersion:
			return got, nil
		default:
			return 0, fmt.Errorf("%w: store format %d, this build reads formats 1 to %d", ErrIncompatible, got, FormatVersion)
		}
	}
	return FormatVersion, nil
}

// upgrade brings a store of format from up to FormatVersion, once the
// catalog is loaded.
func (s *Store) upgrade(from uint32) error {
	if from == 1 {
		if err := s.migrateFormat1(); err != nil {
			return err
		}
	}
	if from < FormatVersion {
		return s.migrateFormat2()
	}
	return nil
}

// migrateFormat2 turns a format 2 store (or a format 1 one just migrated)
// into format 3: the stored φ vectors are deleted, in one synced batch
// with the new version, since format 3 recomputes φ from the records. An
// upgrade cut short leaves format 2 and is done again on the next open.
func (s *Store) migrateFormat2() error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, c := range s.colls {
		p := collKey(c.cid, subPhi)
		if err := b.DeleteRange(p, upperBound(p), nil); err != nil {
			return err
		}
	}
	if err := b.Set(versionKey, binary.BigEndian.AppendUint32(nil, FormatVersion), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("storage: upgrading format 2: %w", err)
	}
	s.logger.Info("storage: upgraded the store to format 3: stored φ vectors deleted (recomputed from the records)")
	return nil
}
