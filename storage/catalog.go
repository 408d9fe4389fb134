package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// The catalog: one record per collection under tagCatalog (its ID and
// persisted configuration) and the next collection ID under tagNextCID.

// load checks the format version, opens every collection of the catalog
// and upgrades an older store.
func (s *Store) load() error {
	from, err := s.readFormat()
	if err != nil {
		return err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagCatalog}, UpperBound: []byte{tagCatalog + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		name := string(it.Key()[1:])
		val := it.Value()
		if len(val) < 4 {
			return fmt.Errorf("%w: catalog record of %q", ErrCorrupt, name)
		}
		cfg, err := unmarshalConfig(val[4:])
		if err != nil {
			return fmt.Errorf("collection %q: %w", name, err)
		}
		c := &Coll{store: s, name: name, cid: binary.BigEndian.Uint32(val), cfg: cfg}
		if err := c.loadLive(); err != nil {
			return fmt.Errorf("collection %q: %w", name, err)
		}
		s.colls[name] = c
	}
	if err := iterError(it.Error(), "catalog"); err != nil {
		return err
	}
	return s.upgrade(from)
}

// CreateCollection validates cfg (after defaults), persists it and returns
// the new collection. It fails with ErrCollectionExists if the name is used.
// sample, when not nil, is an imported random-feature sample stored with
// the collection in the same batch (cfg.Features.Imported must be set).
func (s *Store) CreateCollection(name string, cfg collconfig.Config, sample *wpcsim.FeatureSample) (*Coll, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if (sample != nil) != cfg.Features.Imported {
		return nil, fmt.Errorf("%w: an imported feature sample must come with features.imported set, and only then", ErrInvalidConfig)
	}
	if sample != nil {
		if len(sample.W) > 255 {
			return nil, fmt.Errorf("%w: an imported feature sample has at most 255 nonlinear terms", ErrInvalidConfig)
		}
		if err := sample.Validate(cfg.Similarity); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	s.ddl.Lock()
	defer s.ddl.Unlock()
	if _, err := s.Collection(name); err == nil {
		return nil, fmt.Errorf("%w: %q", ErrCollectionExists, name)
	} else if !errors.Is(err, ErrCollectionNotFound) {
		return nil, err
	}
	cid, err := s.nextCID()
	if err != nil {
		return nil, err
	}
	js, err := marshalConfig(cfg)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	b.Set(append([]byte{tagCatalog}, name...), append(binary.BigEndian.AppendUint32(nil, cid), js...), nil)
	b.Set([]byte{tagNextCID}, binary.BigEndian.AppendUint32(nil, cid+1), nil)
	if sample != nil {
		for t := range sample.W {
			b.Set(append(collKey(cid, subFeatures), byte(t), 'W'), appendFloats(nil, sample.W[t]), nil)
			b.Set(append(collKey(cid, subFeatures), byte(t), 'b'), appendFloats(nil, sample.B[t]), nil)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return nil, fmt.Errorf("storage: create %q: %w", name, err)
	}
	c := &Coll{store: s, name: name, cid: cid, cfg: cfg}
	c.resetBitmaps()
	s.mu.Lock()
	s.colls[name] = c
	s.mu.Unlock()
	return c, nil
}

func (s *Store) nextCID() (uint32, error) {
	v, err := s.getUint([]byte{tagNextCID}, 4, 1, "next collection id")
	return uint32(v), err
}

// getUint reads the big-endian unsigned integer of size bytes (4 or 8)
// that the record at key holds: def when there is none, ErrCorrupt naming
// what when the record has another size.
func (s *Store) getUint(key []byte, size int, def uint64, what string) (uint64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return def, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	switch {
	case len(v) != size:
		return 0, fmt.Errorf("%w: %s: %d bytes, want %d", ErrCorrupt, what, len(v), size)
	case size == 4:
		return uint64(binary.BigEndian.Uint32(v)), nil
	}
	return binary.BigEndian.Uint64(v), nil
}

// Collection returns the named collection.
func (s *Store) Collection(name string) (*Coll, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	c, ok := s.colls[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrCollectionNotFound, QuoteID(name))
	}
	return c, nil
}

// Collections returns the collection names, sorted.
func (s *Store) Collections() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.colls))
	for n := range s.colls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DropCollection deletes a collection and all its items in one synced batch.
func (s *Store) DropCollection(name string) error {
	s.ddl.Lock()
	defer s.ddl.Unlock()
	c, err := s.Collection(name)
	if err != nil {
		return err
	}
	c.lockWrites()
	defer c.writeMu.Unlock()
	// Readers that overlap the drop see the collection as gone from here
	// on (CheckLive), so a search racing it fails instead of returning
	// what it read before the range deletion.
	c.mu.Lock()
	c.dropping = true
	c.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	b.Delete(append([]byte{tagCatalog}, name...), nil)
	p := collPrefix(c.cid)
	b.DeleteRange(p, upperBound(p), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		c.mu.Lock()
		c.dropping = false
		c.mu.Unlock()
		return fmt.Errorf("storage: drop %q: %w", name, err)
	}
	if s.clouds != nil {
		s.clouds.dropCollection(c.cid)
	}
	c.mu.Lock()
	c.dropped = true
	c.mu.Unlock()
	s.mu.Lock()
	delete(s.colls, name)
	s.mu.Unlock()
	return nil
}

// EstimateDiskUsage returns the approximate bytes on disk of a collection's
// key range.
func (s *Store) estimateDiskUsage(cid uint32) uint64 {
	p := collPrefix(cid)
	n, err := s.db.EstimateDiskUsage(p, upperBound(p))
	if err != nil {
		return 0
	}
	return n
}
