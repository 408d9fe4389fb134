package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// ImportOptions tune ImportNPY and ImportParquet.
type ImportOptions struct {
	Batch       int  // items per batch (0: DefaultBatch; fewer when clouds are large)
	SkipInvalid bool // see Options.SkipInvalid
	// Log receives a message per skipped row; nil drops them.
	Log func(msg string)
	// Progress is called after each committed batch.
	Progress func(Progress)
}

// Progress is where an import is.
type Progress struct {
	Rows, Read int // rows of the input, rows read so far
	Stats
}

// Importer is what an import writes into: a collection (*wpcdb.Collection)
// or, on a cluster node, a sharded collection's router. Config gives the
// dimension and point limit the files are checked against before anything
// is written; LoadDone is called once every batch is committed.
type Importer interface {
	Target
	Config() wpcdb.CollectionConfig
	LoadDone(ctx context.Context) error
}

// ImportNPY ingests the NumPy files (opened with open) into c through
// Commit, then tells c the load is done (LoadDone: its first stage is
// built or calibrated). It is what `wpcdb import` runs embedded and what
// the server's Import RPC runs, with open confined to its import
// directory. Every file is opened and checked before anything is written;
// a problem with the input or a refused batch wraps wpcdb.ErrInvalidArgument.
func ImportNPY(ctx context.Context, c Importer, open Opener, files NPYFiles, o ImportOptions) (_ Stats, err error) {
	// A long path is not echoed whole.
	defer func() { err = wpcerr.CutPaths(err, files.Points, files.Weights, files.Lengths, files.IDs, files.Attrs) }()
	if files.Points == "" {
		return Stats{}, fmt.Errorf("%w: points: a file is required", wpcdb.ErrInvalidArgument)
	}
	cfg := c.Config()
	in, err := OpenNPY(open, files, cfg.Dim, cfg.MaxPoints)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %w; nothing imported", wpcdb.ErrInvalidArgument, err)
	}
	defer in.Close()
	return importFrom(ctx, c, in, o)
}

// Source is an opened file input of rows (NPY, Parquet): what an import
// and the CLI's ingest of files read batches from.
type Source interface {
	Rows() int
	Batches(ctx context.Context, batch int, skipInvalid bool, progress func(rows int)) <-chan Batch
}

// importFrom commits in's batches into c, reporting progress, then tells
// c the load is done.
func importFrom(ctx context.Context, c Importer, in Source, o ImportOptions) (Stats, error) {
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var read atomic.Int64 // set by the reader's goroutine
	batches := in.Batches(ctx, o.Batch, o.SkipInvalid, func(rows int) { read.Store(int64(rows)) })
	st, err := Commit(ctx, c, batches, Options{SkipInvalid: o.SkipInvalid, Unit: "row", Log: o.Log,
		Progress: func(st Stats) {
			if o.Progress != nil {
				o.Progress(Progress{Rows: in.Rows(), Read: int(read.Load()), Stats: st})
			}
		}})
	if err != nil {
		var rowErr *RowError
		if errors.As(err, &rowErr) && !errors.Is(err, wpcdb.ErrInvalidArgument) {
			err = fmt.Errorf("%w: %w", wpcdb.ErrInvalidArgument, err)
		}
		return st, err
	}
	return st, c.LoadDone(ctx)
}
