package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// errImportsDisabled: the server was started without an import directory.
var errImportsDisabled = wpcerr.New(wpcdb.ErrFailedPrecondition, "server: imports are disabled: the server has no import directory")

// importer returns the local collection called name, or else what
// Options.ImportTo gives for it.
func (s *service) importer(ctx context.Context, name string) (ingest.Importer, error) {
	c, err := s.collection(name)
	if err == nil {
		return c, nil
	}
	if s.importTo == nil || !errors.Is(err, wpcdb.ErrCollectionNotFound) {
		return nil, err
	}
	return s.importTo(ctx, name)
}

// Import ingests NumPy files or a Parquet file from the server's import
// directory (ingest.ImportNPY or ingest.ImportParquet, the code `wpcdb
// import` runs embedded) and streams
// its progress after every committed batch, then a last message with done
// set. Every path is relative to the directory and opened through an
// os.Root on it, so neither "..", an absolute path nor a symlink reaches a
// file outside it.
func (s *service) Import(req *pb.ImportRequest, stream pb.WPCDBService_ImportServer) error {
	ctx := stream.Context()
	if s.importRoot == "" {
		return errImportsDisabled
	}
	c, err := s.importer(ctx, req.GetCollection())
	if err != nil {
		return err
	}
	files := ingest.NPYFiles{Points: req.GetPoints(), Weights: req.GetWeights(), Lengths: req.GetLengths(), IDs: req.GetIds(), Attrs: req.GetAttrs()}
	pq := req.GetParquet()
	if (pq == "") == (files.Points == "") {
		return invalid("give either points (NumPy files) or parquet (a Parquet file)")
	}
	if pq != "" && (files.Weights != "" || files.Lengths != "" || files.IDs != "" || files.Attrs != "") {
		return invalid("weights, lengths, ids and attrs go with points; a Parquet file holds them as columns")
	}
	if pq == "" && (req.GetParquetId() != "" || req.GetParquetPoints() != "" || req.GetParquetWeights() != "") {
		return invalid("parquet_id, parquet_points and parquet_weights go with parquet")
	}
	for _, f := range []struct{ field, path string }{{"points", files.Points}, {"weights", files.Weights}, {"lengths", files.Lengths}, {"ids", files.IDs}, {"attrs", files.Attrs}, {"parquet", pq}} {
		if f.path != "" && !filepath.IsLocal(f.path) {
			return invalid("%s %s: must be a relative path inside the server's import directory", f.field, quoteShort(f.path))
		}
	}
	if req.GetBatch() > 1<<20 {
		return invalid("batch: %d items exceeds %d", req.GetBatch(), 1<<20)
	}
	root, err := os.OpenRoot(s.importRoot)
	if err != nil {
		return err
	}
	defer root.Close()
	// The reader and the pipelined commit hold at most ingest.InFlightFloats
	// floats of batches (ingest.StageAhead), which is the whole default
	// budget: reserving all of it held every other request back for the
	// whole import, and an import into a sharded collection waited, until
	// their deadline, for its own shard writes to this node (each
	// UpsertBatch is admitted again). So an import reserves at most half the
	// budget: the rest serves the other requests and those shard writes, and
	// imports queue one behind the other. Imports of the largest batches
	// (near ingest.MaxBatchFloats) may hold up to twice what they reserved.
	release, err := s.admit(ctx, min(ingest.InFlightFloats, s.inflightMax/2))
	if err != nil {
		return err
	}
	defer release()
	var sendErr error
	progress := func(p ingest.Progress, done bool) *pb.ImportResponse {
		return &pb.ImportResponse{Rows: uint64(p.Rows), Read: uint64(p.Read), Committed: uint64(p.Committed), Skipped: uint64(p.Skipped), Done: done}
	}
	var last ingest.Progress
	opts := ingest.ImportOptions{
		Batch: int(req.GetBatch()), SkipInvalid: req.GetSkipInvalid(),
		Progress: func(p ingest.Progress) {
			last = p
			if sendErr == nil {
				sendErr = stream.Send(progress(p, false))
			}
		},
	}
	var st ingest.Stats
	if pq != "" {
		cols := ingest.ParquetColumns{ID: req.GetParquetId(), Points: req.GetParquetPoints(), Weights: req.GetParquetWeights()}
		st, err = ingest.ImportParquet(ctx, c, root.Open, pq, cols, opts)
	} else {
		st, err = ingest.ImportNPY(ctx, c, root.Open, files, opts)
	}
	if err != nil {
		return err
	}
	if sendErr != nil {
		return sendErr
	}
	last.Stats, last.Read = st, last.Rows
	return stream.Send(progress(last, true))
}
