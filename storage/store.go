package storage

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
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
	// CloudCacheBytes bounds the cache of clouds that ReadCloud serves
	// reranks from (cloudcache.go); 0 means 256 MiB, negative disables it.
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

// memTableBytes is the size of each Pebble memtable.
const memTableBytes = 64 << 20

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

// Close flushes the memtable to a table (every write was already synced
// to the WAL) and closes Pebble.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.closed = true
	colls := make([]*Coll, 0, len(s.colls))
	for _, c := range s.colls {
		colls = append(colls, c)
	}
	s.mu.Unlock()
	// Staged writes still committing (a caller that closes without
	// waiting for them) finish first: Pebble must not be closed under
	// their commit.
	for _, c := range colls {
		c.lockWrites()
		c.writeMu.Unlock()
	}
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

// CloudCacheStats describes the decoded-cloud cache shared by the store's
// collections (zero when it is disabled).
func (s *Store) CloudCacheStats() CloudCacheStats { return s.clouds.stats() }
