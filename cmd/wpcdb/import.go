package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb/ingest"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

func (a *app) importCommand() *cobra.Command {
	var f ingestFlags
	cmd := &cobra.Command{
		Use:   "import NAME (--points P.npy [--weights W.npy] [--lengths L.npy] [--ids ids.txt] [--attrs attrs.jsonl] | --parquet F [--id-column C] [--points-column C] [--weights-column C])",
		Short: "Ingest NumPy or Parquet files that are on the database's machine (the server's, with --addr)",
		Long: `import ingests NumPy arrays as ingest --points does, or a Parquet file as ingest
--parquet does (see ingest --help for its columns), but the files are read where
the database runs: with --addr, by the server, from its import directory (wpcdb
serve --import-dir; the paths are relative to it and cannot leave it), so that
files too large to stream through a client never cross the network; the server
reports its progress after every batch. Without --addr the files are read here,
by the same code. Batches and --skip-invalid behave as in ingest.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkInputs("import", false); err != nil {
				return err
			}
			start := time.Now()
			var st ingest.Stats
			var err error
			if a.g.addr != "" {
				st, err = a.importRemote(cmd.Context(), args[0], f)
			} else {
				st, err = a.importEmbedded(cmd.Context(), args[0], f)
			}
			if err != nil {
				return err
			}
			return a.printIngestSummary(st, start)
		},
	}
	fl := cmd.Flags()
	f.register(fl)
	return cmd
}

// importEmbedded runs ingest.ImportNPY on --data's database, as the
// server's Import does.
func (a *app) importEmbedded(ctx context.Context, name string, f ingestFlags) (ingest.Stats, error) {
	if a.g.tlsCA != "" || a.g.tls {
		return ingest.Stats{}, usageError{errNoAddr}
	}
	db, err := a.openDB()
	if err != nil {
		return ingest.Stats{}, err
	}
	c, err := db.Collection(name)
	if err != nil {
		db.Close()
		return ingest.Stats{}, err
	}
	bar := a.progress(-1, "import (items)")
	opts := ingest.ImportOptions{
		Batch: f.batch, SkipInvalid: f.skipInvalid,
		Log: func(msg string) { fmt.Fprintln(a.stderr, msg) },
		Progress: func(p ingest.Progress) {
			if bar != nil {
				bar.ChangeMax(p.Rows)
				bar.Set(p.Read)
			}
		},
	}
	var st ingest.Stats
	if f.parquet != "" {
		st, err = ingest.ImportParquet(ctx, c, os.Open, f.parquet, f.pqCols, opts)
	} else {
		st, err = ingest.ImportNPY(ctx, c, os.Open, f.npyFiles(), opts)
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return st, err
}

// importRemote asks --addr's server to import the files and follows its
// progress.
func (a *app) importRemote(ctx context.Context, name string, f ingestFlags) (ingest.Stats, error) {
	r, err := a.dial()
	if err != nil {
		return ingest.Stats{}, err
	}
	defer r.Close()
	stream, err := r.cli.Import(ctx, &pb.ImportRequest{Collection: name, Points: f.points, Weights: f.weights, Lengths: f.lengths,
		Ids: f.ids, Attrs: f.attrs, Batch: uint32(min(f.batch, 1<<20)), SkipInvalid: f.skipInvalid,
		Parquet: f.parquet, ParquetId: f.pqCols.ID, ParquetPoints: f.pqCols.Points, ParquetWeights: f.pqCols.Weights})
	if err != nil {
		return ingest.Stats{}, fromRPC(ctx, err)
	}
	bar := a.progress(-1, "import (items)")
	defer func() {
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(a.stderr)
		}
	}()
	var st ingest.Stats
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return st, errors.New("import: the server ended the stream before the import was done")
		}
		if err != nil {
			return st, fmt.Errorf("%w (%d items committed before it)", fromRPC(ctx, err), st.Committed)
		}
		st = ingest.Stats{Committed: int(msg.GetCommitted()), Skipped: int(msg.GetSkipped())}
		if bar != nil {
			bar.ChangeMax(int(msg.GetRows()))
			bar.Set(int(msg.GetRead()))
		}
		if msg.GetDone() {
			return st, nil
		}
	}
}
