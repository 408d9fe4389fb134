package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
)

// maxLineBytes bounds one JSONL line (a cloud of 1024 points of dimension
// 2048 written in full float32 precision takes ~30 MB), so that --input
// /dev/zero is an error and not a process growing until it is killed.
const maxLineBytes = 64 << 20

type ingestFlags struct {
	input       string
	batch       int
	skipInvalid bool
	// NumPy input.
	points, weights, lengths, ids, attrs string
	// Parquet input.
	parquet string
	pqCols  ingest.ParquetColumns
}

// checkInputs checks that the flags name one input (with NumPy's or
// Parquet's companions only), for cmd ("ingest" or "import").
func (f ingestFlags) checkInputs(cmd string, jsonl bool) error {
	n := 0
	for _, s := range []string{f.points, f.parquet} {
		if s != "" {
			n++
		}
	}
	if jsonl && f.input != "" {
		n++
	}
	if n != 1 {
		if jsonl {
			return usageError{fmt.Errorf("%s: give one of --input (a JSONL file, or - for standard input), --points (a .npy file) or --parquet (a Parquet file)", cmd)}
		}
		return usageError{fmt.Errorf("%s: give either --points (a .npy file) or --parquet (a Parquet file)", cmd)}
	}
	if f.points == "" && (f.weights != "" || f.lengths != "" || f.ids != "" || f.attrs != "") {
		return usageError{fmt.Errorf("%s: --weights, --lengths, --ids and --attrs go with --points (a Parquet file holds them as columns)", cmd)}
	}
	if f.parquet == "" && f.pqCols != (ingest.ParquetColumns{}) {
		return usageError{fmt.Errorf("%s: --id-column, --points-column and --weights-column go with --parquet", cmd)}
	}
	if f.batch <= 0 {
		return usageError{fmt.Errorf("%s: --batch must be positive, got %d", cmd, f.batch)}
	}
	return nil
}

func (a *app) ingestCommand() *cobra.Command {
	var f ingestFlags
	cmd := &cobra.Command{
		Use:   "ingest NAME (--input items.jsonl | --points P.npy [--weights W.npy] [--lengths L.npy] [--ids ids.txt] [--attrs attrs.jsonl] | --parquet F)",
		Short: "Bulk-load clouds (JSONL, NumPy .npy or Parquet) into a collection",
		Long: `ingest reads one JSON cloud per line ({"id": ..., "weights": [...], "points": [[...]],
"attrs": {...}}), or NumPy arrays: points (N, M, d) float32 or float16, weights
(N, M) (default: all 1), lengths (N,) integers giving each item's number of points
(the rest of its M rows is padding), ids as text, one per line (default: the row
number), attrs as JSONL, one object per line, or a Parquet file, one item a row:
column id (string or integer; default: the row number), points (a list of points,
each a list of d floats or doubles, or one flat list of M·d), weights (optional,
a list of floats), and every other column an attribute (string, number, boolean,
or a list of those; null leaves it out); --id-column, --points-column and
--weights-column name other columns. Items are upserted in batches; each
acknowledged batch is durable.
A batch holding an invalid item is refused whole and the ingest stops, saying how
many items were committed before it; --skip-invalid leaves such items out and
counts them instead. The same ID twice means the last one wins, so re-running an
ingest is idempotent.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkInputs("ingest", true); err != nil {
				return err
			}
			return a.withBackend(func(b backend) error {
				c, err := b.Ingest(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				switch {
				case f.points != "":
					err = a.ingestNPY(cmd.Context(), c, f)
				case f.parquet != "":
					err = a.ingestParquet(cmd.Context(), c, f)
				default:
					err = a.ingestJSONL(cmd.Context(), c, f)
				}
				if cerr := c.Close(); err == nil {
					err = cerr
				}
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.input, "input", "", "JSONL file of clouds, or - for standard input")
	f.register(fl)
	return cmd
}

// ingestBatch is a batch of decoded items, or the input position that
// failed to decode.
func (a *app) ingestJSONL(ctx context.Context, c ingestTarget, f ingestFlags) error {
	var r io.Reader = a.stdin
	var size int64 = -1
	if f.input != "-" {
		file, err := os.Open(f.input)
		if err != nil {
			return err
		}
		defer file.Close()
		if st, err := file.Stat(); err == nil {
			size = st.Size()
		}
		r = file
	}
	bar := a.progress(size, "ingest")
	if bar != nil {
		r = io.TeeReader(r, bar)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan ingest.Batch, 1)
	go a.readJSONL(ctx, bufio.NewReaderSize(r, 1<<20), f, batches)
	err := a.commitBatches(ctx, c, f, "line", batches)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	return err
}

// commitBatches upserts batches as they are decoded (decoding runs on its
// own goroutine while the previous batch is validated and committed on the
// others; ingest.Commit) and prints the summary. unit names input
// positions in messages.
func (a *app) commitBatches(ctx context.Context, c ingestTarget, f ingestFlags, unit string, batches <-chan ingest.Batch) error {
	start := time.Now()
	// Only this goroutine writes to stderr: the reader hands its messages
	// over with the batch.
	st, err := ingest.Commit(ctx, c, batches, ingest.Options{SkipInvalid: f.skipInvalid, Unit: unit,
		Log: func(msg string) { fmt.Fprintln(a.stderr, msg) }})
	if err != nil {
		return err
	}
	return a.printIngestSummary(st, start)
}

// readJSONL decodes lines into batches. Decode errors end the stream unless
// skipping, in which case they are reported and counted.
func (a *app) readJSONL(ctx context.Context, r *bufio.Reader, f ingestFlags, out chan<- ingest.Batch) {
	defer close(out)
	var cur ingest.Batch
	floats := 0
	send := func(b ingest.Batch) bool { return ingest.Send(ctx, out, b) }
	var buf []byte
	for line := 1; ; line++ {
		data, err := readLine(ctx, r, buf[:0], maxLineBytes)
		buf = data
		if errors.Is(err, errLineTooLong) {
			err = fmt.Errorf("line %d: %w", line, err)
			if !f.skipInvalid {
				send(ingest.Batch{Err: err})
				return
			}
			cur.Skipped = append(cur.Skipped, fmt.Sprintf("wpcdb: skipped %v", err))
			if err = skipLine(ctx, r); err == nil {
				continue
			}
			data = nil
		}
		if len(trimSpace(data)) > 0 {
			rec, derr := cloudjson.Decode(data)
			if derr == nil && rec.ID == "" {
				derr = errors.New("id: missing (ingest needs an id on every cloud)")
			}
			if derr != nil {
				if !f.skipInvalid {
					send(ingest.Batch{Err: fmt.Errorf("line %d: %w", line, derr)})
					return
				}
				cur.Skipped = append(cur.Skipped, fmt.Sprintf("wpcdb: skipped line %d: %v", line, derr))
			} else {
				cur.Items = append(cur.Items, wpcdb.Item{ID: rec.ID, Cloud: rec.Cloud, Attrs: rec.Attrs})
				cur.Pos = append(cur.Pos, line)
				floats += len(rec.Cloud.Points)
				if len(cur.Items) >= f.batch || floats >= ingest.MaxBatchFloats {
					if !send(cur) {
						return
					}
					cur, floats = ingest.Batch{}, 0
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				send(ingest.Batch{Err: fmt.Errorf("line %d: %w", line, err)})
				return
			}
			break
		}
	}
	if len(cur.Items) > 0 || len(cur.Skipped) > 0 {
		send(cur)
	}
}

var errLineTooLong = fmt.Errorf("longer than %d MiB (the JSONL line limit)", maxLineBytes>>20)

// readLine appends the next line of r (with its newline, if any) to dst.
// It reads in buffer-sized pieces, stopping with errLineTooLong past max
// bytes and with ctx's error when ctx ends (SIGTERM while reading an
// endless line).
func readLine(ctx context.Context, r *bufio.Reader, dst []byte, max int) ([]byte, error) {
	for {
		if err := ctx.Err(); err != nil {
			return dst, err
		}
		chunk, err := r.ReadSlice('\n')
		if len(dst)+len(chunk) > max {
			return dst, errLineTooLong
		}
		dst = append(dst, chunk...)
		if err != bufio.ErrBufferFull {
			return dst, err
		}
	}
}

// skipLine discards the rest of the current line.
func skipLine(ctx context.Context, r *bufio.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := r.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

func (a *app) printIngestSummary(st ingest.Stats, start time.Time) error {
	secs := time.Since(start).Seconds()
	rate := float64(st.Committed) / max(secs, 1e-9)
	if a.g.json {
		return a.printJSON(map[string]any{"ingested": st.Committed, "skipped": st.Skipped, "seconds": secs, "items_per_s": rate})
	}
	msg := fmt.Sprintf("ingested %d items in %.2f s (%.0f items/s)", st.Committed, secs, rate)
	if st.Skipped > 0 {
		msg += fmt.Sprintf(", skipped %d invalid", st.Skipped)
	}
	_, err := fmt.Fprintln(a.stdout, msg)
	return err
}

// progress returns a progress bar on stderr when it is a terminal, or nil.
// total < 0 means unknown (a spinner).
func (a *app) progress(total int64, desc string) *progressbar.ProgressBar {
	f, ok := a.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetPredictTime(true),
	)
}

// register adds the batch and NumPy input flags of ingest and import.
func (f *ingestFlags) register(fl *pflag.FlagSet) {
	fl.IntVar(&f.batch, "batch", ingest.DefaultBatch, "items per durable batch (fewer when clouds are large)")
	fl.BoolVar(&f.skipInvalid, "skip-invalid", false, "skip invalid items (and count them) instead of stopping")
	fl.StringVar(&f.points, "points", "", ".npy of points, shape (N, M, d), float32 or float16")
	fl.StringVar(&f.weights, "weights", "", ".npy of weights, shape (N, M) (default: all 1)")
	fl.StringVar(&f.lengths, "lengths", "", ".npy of points per item, shape (N,), integers (default: M)")
	fl.StringVar(&f.ids, "ids", "", "text file of IDs, one per line (default: the row number)")
	fl.StringVar(&f.attrs, "attrs", "", "JSONL file of attribute objects, one per line (values as in a JSONL cloud's attrs: strings, numbers, booleans, null, lists)")
	fl.StringVar(&f.parquet, "parquet", "", "Parquet file, one item a row: columns id, points (list<list<float>> or a flat list), weights, the others attributes")
	fl.StringVar(&f.pqCols.ID, "id-column", "", `--parquet: the column of IDs (default "id"; without it: the row number)`)
	fl.StringVar(&f.pqCols.Points, "points-column", "", `--parquet: the column of points (default "points")`)
	fl.StringVar(&f.pqCols.Weights, "weights-column", "", `--parquet: the column of weights (default "weights"; without it: all 1)`)
}

// stageProgress returns a bench.RunConfig.Progress that draws a bar per
// stage on a terminal, and the function that ends the last bar's line.
func (a *app) stageProgress() (progress func(stage string, total int) func(done int), done func()) {
	var bar *progressbar.ProgressBar
	end := func() {
		if bar != nil {
			fmt.Fprintln(a.stderr)
			bar = nil
		}
	}
	return func(stage string, total int) func(int) {
		end()
		if bar = a.progress(int64(total), stage); bar == nil {
			return nil
		}
		b := bar
		return func(done int) { b.Set(done) }
	}, end
}
