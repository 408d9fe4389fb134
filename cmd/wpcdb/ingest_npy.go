package main

import (
	"context"
	"fmt"
	"os"

	"github.com/wpcdb/wpcdb/ingest"
)

// ingestNPY ingests NumPy arrays (ingest.OpenNPY) through the pipeline.
func (a *app) ingestNPY(ctx context.Context, c ingestTarget, f ingestFlags) error {
	in, err := ingest.OpenNPY(os.Open, f.npyFiles(), c.Config().Dim, c.Config().MaxPoints)
	if err != nil {
		return fmt.Errorf("%w; nothing ingested", err)
	}
	defer in.Close()
	return a.ingestRows(ctx, c, f, in)
}

func (f ingestFlags) npyFiles() ingest.NPYFiles {
	return ingest.NPYFiles{Points: f.points, Weights: f.weights, Lengths: f.lengths, IDs: f.ids, Attrs: f.attrs}
}

// ingestParquet ingests a Parquet file (ingest.OpenParquet) through the
// pipeline, read here and sent in batches (with --addr, to the server).
func (a *app) ingestParquet(ctx context.Context, c ingestTarget, f ingestFlags) error {
	in, err := ingest.OpenParquet(os.Open, f.parquet, f.pqCols, c.Config().Dim, c.Config().MaxPoints)
	if err != nil {
		return fmt.Errorf("%w; nothing ingested", err)
	}
	defer in.Close()
	return a.ingestRows(ctx, c, f, in)
}

// ingestRows sends a file input's rows through the pipeline in batches,
// with a progress bar on a terminal.
func (a *app) ingestRows(ctx context.Context, c ingestTarget, f ingestFlags, in ingest.Source) error {
	bar := a.progress(int64(in.Rows()), "ingest (rows)")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var progress func(int)
	if bar != nil {
		progress = func(rows int) { bar.Set(rows) }
	}
	err := a.commitBatches(ctx, c, f, "row", in.Batches(ctx, f.batch, f.skipInvalid, progress))
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	return err
}
