package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Options configure a Store. The zero value is valid.
type Options struct {
	// FS is the filesystem; nil means the OS's. Tests pass
	// vfs.NewCrashableMem() to simulate crashes.
	FS vfs.FS
	// Logger receives Pebble's and the store's messages; nil discards them.
	Logger *slog.Logger
	// CacheBytes is Pebble's block cache size; 0 means 64 MiB.
	CacheBytes int64
	// CloudCacheBytes bounds the cache of decoded small clouds that
	// ReadCloud serves reranks from; 0 means 256 MiB, negative disables it.
	CloudCacheBytes int64
	// IndexPageBytes is the payload of a saved first-stage index page; 0
	// means DefaultIndexPageBytes, and it is at most MaxIndexPageBytes.
	// Tests make it small.
	IndexPageBytes int
	// BulkWriteBytes is the batch size from which a write is ingested as
	// SSTables instead of going through the WAL and memtable (bulk.go); 0
	// means DefaultBulkWriteBytes, negative never. Tests make it 1.
	BulkWriteBytes int
}

// DefaultCloudCacheBytes is the decoded-cloud cache's default budget.
const DefaultCloudCacheBytes = 256 << 20

// Store is the Pebble database holding every collection. Safe for
// concurrent use.
type Store struct {
	db      *pebble.DB
	fs      vfs.FS
	release func() // gives the folder back to claimFolder
	logger  *slog.Logger

	mu     sync.RWMutex // guards colls and closed; held briefly
	colls  map[string]*Coll
	closed bool
	ddl    sync.Mutex  // serializes create and drop
	clouds *cloudCache // nil when disabled

	indexPageBytes int
	bulkWriteBytes int
	dir            string
	popts          *pebble.Options
}

// Open opens the store in dir, creating it if dir is absent or empty. A
// folder that holds files but no IdentityFile is refused with
// ErrNotDatabase, and a database whose manifest marker is missing with
// ErrCorrupt: in both cases nothing in dir is changed. A folder another
// process has open is refused with ErrLocked.
func Open(dir string, opts *Options) (_ *Store, err error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IndexPageBytes < 0 || o.IndexPageBytes > MaxIndexPageBytes {
		return nil, fmt.Errorf("storage: index page size %d: must be between 1 and %d bytes", o.IndexPageBytes, MaxIndexPageBytes)
	}
	if o.IndexPageBytes == 0 {
		o.IndexPageBytes = DefaultIndexPageBytes
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	release, err := claimFolder(o.FS, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()
	state, err := inspectFolder(o.FS, dir)
	if err != nil {
		return nil, err
	}
	switch state {
	case folderNew:
		if err := writeIdentity(o.FS, dir); err != nil {
			return nil, err
		}
	case folderLegacy:
		ok, err := isLegacyDatabase(o.FS, dir)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s holds a Pebble database that is not wpcdb's; refusing to open it (nothing was changed)", ErrNotDatabase, dir)
		}
		if err := writeIdentity(o.FS, dir); err != nil {
			return nil, err
		}
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 64 << 20
	}
	cache := pebble.NewCache(o.CacheBytes)
	popts := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		Logger:             pebbleLogger{o.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		// A batch of a thousand small clouds is megabytes: with Pebble's
		// default 4 MiB memtable, each one over half of it is flushed to
		// L0 on its own (a flushable batch), and a bulk load waits on
		// flushes and L0 compactions instead of writing.
		MemTableSize: memTableBytes,
		// Fewer, larger levels: a bulk load's data is rewritten by fewer
		// compactions on its way down.
		LBaseMaxBytes: 1 << 30,
		// Creating is decided above, from the folder's contents: Pebble
		// must never take a damaged database for a new one.
		ErrorIfExists:    state == folderNew,
		ErrorIfNotExists: state != folderNew,
		EventListener: &pebble.EventListener{
			// Pebble's default is Fatalf. A corrupt block is reported to the
			// reader as an error (ErrCorrupt), which must not kill a server.
			DataCorruption: func(info pebble.DataCorruptionInfo) {
				o.Logger.Error("data corruption", "component", "pebble", "path", info.Path, "error", info.Details)
			},
		},
	}
	// Bloom filters on every level: an upsert looks up each ID, and in a
	// load almost every one is new, so without them each lookup reads a
	// block of every level that might hold it.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	popts.EnsureDefaults() // the bulk path writes tables with these options
	db, err := pebble.Open(dir, popts)
	cache.Unref() // the DB holds its own reference
	if err != nil {
		if errors.Is(err, pebble.ErrDBDoesNotExist) {
			return nil, fmt.Errorf("%w: %s: no manifest marker; refusing to open it (nothing was changed)", ErrCorrupt, dir)
		}
		if pebble.IsCorruptionError(err) {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, dir, err)
		}
		return nil, lockedError(dir, err)
	}
	if o.CloudCacheBytes == 0 {
		o.CloudCacheBytes = DefaultCloudCacheBytes
	}
	if o.BulkWriteBytes == 0 {
		o.BulkWriteBytes = DefaultBulkWriteBytes
	}
	s := &Store{db: db, fs: o.FS, release: release, logger: o.Logger, colls: map[string]*Coll{}, clouds: newCloudCache(o.CloudCacheBytes), indexPageBytes: o.IndexPageBytes,
		bulkWriteBytes: o.BulkWriteBytes, dir: dir, popts: popts}
	if err := removeIngestLeftovers(s); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

var versionKey = []byte("\x00version")

// memTableBytes is the size of each Pebble memtable.
const memTableBytes = 64 << 20

// load checks the format version and opens every collection of the catalog.
func (s *Store) load() error {
	from := FormatVersion
	v, closer, err := s.db.Get(versionKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set(versionKey, binary.BigEndian.AppendUint32(nil, FormatVersion), pebble.Sync); err != nil {
			return fmt.Errorf("storage: write format version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("storage: read format version: %w", err)
	default:
		got := uint32(0)
		if len(v) == 4 {
			got = binary.BigEndian.Uint32(v)
		}
		closer.Close()
		switch got {
		case 1, 2, FormatVersion:
			from = got
		default:
			return fmt.Errorf("%w: store format %d, this build reads formats 1 to %d", ErrIncompatible, got, FormatVersion)
		}
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
	v, closer, err := s.db.Get([]byte{tagNextCID})
	if errors.Is(err, pebble.ErrNotFound) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != 4 {
		return 0, fmt.Errorf("%w: next collection id", ErrCorrupt)
	}
	return binary.BigEndian.Uint32(v), nil
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
	c.writeMu.Lock()
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

// Checkpoint writes a consistent copy of the whole store to dir (which must
// not exist), openable with Open. Files are hard-linked where possible.
func (s *Store) Checkpoint(dir string) error {
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("storage: checkpoint to %s: %w", dir, err)
	}
	return writeIdentity(s.fs, dir)
}

// DiskUsage returns the bytes of the store's files.
func (s *Store) DiskUsage() uint64 { return s.db.Metrics().DiskSpaceUsage() }

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

// Close flushes the memtable to a table (every write was already synced
// to the WAL) and closes Pebble.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	s.mu.Unlock()
	// Flush the memtable so a cleanly closed database keeps nothing in its
	// WAL: Pebble reads a damaged WAL record as the log's torn end and
	// would silently drop what follows it.
	ferr := s.db.Flush()
	err := errors.Join(ferr, s.db.Close())
	s.release()
	return err
}

// pebbleLogger forwards Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is Pebble's report of a broken invariant (or a failed WAL or
// MANIFEST write) after which it cannot go on: its callers do not expect
// it to return, so it panics. Corruption found while reading is not
// reported here: Open's DataCorruption listener logs it and the read
// returns an error (ErrCorrupt).
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic(msg)
}
