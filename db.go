// Package wpcdb is the embedded API of wpcdb, a database for weighted point
// clouds: Open a directory, create collections, upsert, get and delete
// clouds. Every acknowledged write is durable (synced to Pebble's WAL before
// the call returns) and atomic per call.
//
// A DB and its Collections are safe for concurrent use by many goroutines.
package wpcdb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Errors a caller can test with errors.Is: every error the package
// returns is of one of these (or a context error). They are the kinds of
// internal/wpcerr, which the lower packages' own errors belong to, so the
// answer does not depend on the layer that found the problem.
var (
	// ErrInvalidArgument: bad input, an invalid cloud, ID, attribute,
	// config, name, filter or request. The message names the item and the
	// field; a *FieldError in the chain has them as values.
	ErrInvalidArgument = wpcerr.InvalidArgument
	// ErrCollectionNotFound: no collection by that name (or it was dropped
	// meanwhile).
	ErrCollectionNotFound = storage.ErrCollectionNotFound
	// ErrCollectionExists: a collection by that name exists.
	ErrCollectionExists = storage.ErrCollectionExists
	// ErrNotFound: no live item with that ID.
	ErrNotFound = storage.ErrNotFound
	// ErrFailedPrecondition: the request cannot be served in the state
	// things are in: too few items to calibrate, a folder that is not a
	// wpcdb database.
	ErrFailedPrecondition = wpcerr.FailedPrecondition
	// ErrResourceExhausted: a request over a memory budget.
	ErrResourceExhausted = wpcerr.ResourceExhausted
	// ErrCorrupt: stored data that does not decode (a damaged disk, never
	// user input).
	ErrCorrupt = wpcerr.Corrupt
	// ErrIncompatible: data written by an incompatible build.
	ErrIncompatible = wpcerr.Incompatible
	// ErrLocked: the data folder is open in another process, or already
	// in this one.
	ErrLocked = wpcerr.Locked
	// ErrClosed: the database was closed.
	ErrClosed = storage.ErrClosed
)

// FieldError is a bad value in a named field: Field ("id", "attrs.year",
// "points[2][17]") and Reason. errors.As finds it in an invalid-argument
// error about one field.
type FieldError = wpcerr.FieldError

// CollectionConfig fixes a collection's dimension, similarity, limits,
// encoding and random-feature sample; see collconfig.Config.
type CollectionConfig = collconfig.Config

// Encodings of stored points.
const (
	EncodingF32  = collconfig.EncodingF32
	EncodingF16  = collconfig.EncodingF16
	EncodingBF16 = collconfig.EncodingBF16
)

// IndexConfig chooses a collection's first-stage index; see
// collconfig.Index.
type IndexConfig = collconfig.Index

// First-stage index kinds.
const (
	IndexAuto = collconfig.IndexAuto
	IndexFlat = collconfig.IndexFlat
	IndexHNSW = collconfig.IndexHNSW
)

// Options configure Open. The zero value is valid.
type Options struct {
	// FS is the filesystem; nil is the OS's (tests use a crashable one).
	FS vfs.FS
	// Logger receives the database's messages; nil discards them.
	Logger *slog.Logger
	// CacheBytes is the block cache size; 0 means 64 MiB.
	CacheBytes int64
	// CloudCacheBytes bounds the cache of clouds that reranks read (each
	// up to 1/1024 of it, at least 64 KiB; half-encoded collections'
	// points kept as stored); 0 means 256 MiB, negative disables it. A
	// Pebble read and decode costs more than scoring a small cloud, and
	// than MaxSim of a ColBERT document.
	CloudCacheBytes int64
	// PointCacheBytes bounds the posting lists a maxsim collection's point
	// index keeps resident in memory (pointindex.Index.SetResidentBytes; the
	// lists beyond it are read from Pebble by every search); 0 means 256
	// MiB (pointindex.DefaultResidentBytes), negative none.
	PointCacheBytes int64
	// Parallelism bounds the goroutines that validate and featurize an
	// upsert; 0 means GOMAXPROCS.
	Parallelism int
	// BulkWriteBytes is the size of an upsert's encoded batch from which it
	// is written as SSTables ingested into Pebble instead of through its
	// log and memtable (same atomicity and durability, a fraction of the
	// work); 0 means 1 MiB (a batch of about 400 compact clouds), negative
	// never.
	BulkWriteBytes int
}

// DB is an open database. Safe for concurrent use.
type DB struct {
	store *storage.Store
	opts  Options

	mu    sync.Mutex
	colls map[*storage.Coll]*Collection
}

// Open opens or creates the database in dir.
func Open(dir string, opts *Options) (*DB, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Parallelism <= 0 {
		o.Parallelism = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := storage.Open(dir, &storage.Options{FS: o.FS, Logger: o.Logger, CacheBytes: o.CacheBytes, CloudCacheBytes: o.CloudCacheBytes,
		BulkWriteBytes: o.BulkWriteBytes})
	if err != nil {
		return nil, err
	}
	return &DB{store: st, opts: o, colls: map[*storage.Coll]*Collection{}}, nil
}

// SaveIndexes saves each open collection's first-stage index with the write
// epoch it reflects, so that the next Open replays only the writes made
// after it. Close does this too; a long-running process calls it now and
// then to keep the replay short after a crash. Safe for concurrent use with
// reads and writes (each collection's writes pause while its index is
// serialized).
func (db *DB) SaveIndexes() error {
	db.mu.Lock()
	colls := make([]*Collection, 0, len(db.colls))
	for _, c := range db.colls {
		colls = append(colls, c)
	}
	db.mu.Unlock()
	var errs []error
	for _, c := range colls {
		if err := c.saveIndex(); err != nil && !errors.Is(err, ErrCollectionNotFound) {
			errs = append(errs, fmt.Errorf("collection %q: save index: %w", c.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Close saves each open collection's first-stage index (so the next Open
// loads it instead of rebuilding it) and closes the database. Collections
// obtained from it become unusable. Nothing acknowledged depends on Close:
// after a crash the index is rebuilt from what Pebble holds.
func (db *DB) Close() error {
	db.mu.Lock()
	for _, c := range db.colls {
		c.stopIndex(ErrClosed)
	}
	db.mu.Unlock()
	return errors.Join(db.SaveIndexes(), db.store.Close())
}

// CreateCollection creates a collection. cfg.Dim is required; every other
// field has a default (see CollectionConfig).
func (db *DB) CreateCollection(ctx context.Context, name string, cfg CollectionConfig) (*Collection, error) {
	cfg, err := checkNewCollection(ctx, name, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Features.Imported {
		return nil, fmt.Errorf("%w: collection %q: an imported feature sample needs CreateCollectionWithSample", ErrInvalidArgument, name)
	}
	c, err := db.store.CreateCollection(name, cfg, nil)
	if err != nil {
		return nil, err
	}
	// The first stage is not loaded: a new collection's first writes go to
	// the change log alone, and the stage is built once from them when a
	// search, LoadDone or Calibrate needs it (the bulk-load path).
	return db.wrap(c)
}

// checkNewCollection fills cfg's defaults and validates the name and cfg
// (their errors are ErrInvalidArgument).
func checkNewCollection(ctx context.Context, name string, cfg CollectionConfig) (CollectionConfig, error) {
	if err := ctx.Err(); err != nil {
		return cfg, err
	}
	cfg = cfg.WithDefaults()
	if err := storage.ValidateName(name); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("collection %q: %w", name, err)
	}
	return cfg, nil
}

// Collection returns an existing collection.
func (db *DB) Collection(name string) (*Collection, error) {
	c, err := db.store.Collection(name)
	if err != nil {
		return nil, err
	}
	return db.wrap(c)
}

func (db *DB) wrap(c *storage.Coll) (*Collection, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if w, ok := db.colls[c]; ok {
		return w, nil
	}
	cfg := c.Config()
	sim, err := wpcsim.New(cfg.Similarity)
	if err != nil {
		return nil, fmt.Errorf("collection %q: %w", c.Name(), err)
	}
	w := &Collection{db: db, coll: c, sim: sim}
	if w.features, err = newFeaturizer(c); err != nil {
		return nil, fmt.Errorf("collection %q: %w", c.Name(), err)
	}
	if err := w.openFirstStage(); err != nil {
		return nil, fmt.Errorf("collection %q: first stage: %w", c.Name(), err)
	}
	db.colls[c] = w
	return w, nil
}

// CollectionInfo describes a collection.
type CollectionInfo struct {
	Name      string
	Config    CollectionConfig
	Count     int    // live items
	DiskBytes uint64 // estimated bytes on disk
	Index     IndexStatus
}

// ListCollections describes every collection, sorted by name.
func (db *DB) ListCollections() ([]CollectionInfo, error) {
	var out []CollectionInfo
	for _, name := range db.store.Collections() {
		c, err := db.Collection(name)
		if errors.Is(err, ErrCollectionNotFound) {
			continue // dropped meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c.Describe())
	}
	return out, nil
}

// DropCollection deletes a collection and every item in it.
func (db *DB) DropCollection(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := db.store.Collection(name)
	if err != nil {
		return err
	}
	if err := db.store.DropCollection(name); err != nil {
		return err
	}
	db.mu.Lock()
	if w, ok := db.colls[c]; ok {
		w.stopIndex(fmt.Errorf("%w: %q", ErrCollectionNotFound, name))
	}
	delete(db.colls, c)
	db.mu.Unlock()
	return nil
}
