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
	"golang.org/x/term"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
)

// Batch sizing: DefaultBatch items, fewer when their floats exceed
// maxBatchFloats (a paper-shape cloud has ~100k floats).
const (
	defaultBatch   = 1000
	maxBatchFloats = 8 << 20
)

type ingestFlags struct {
	input       string
	batch       int
	skipInvalid bool
}

func (a *app) ingestCommand() *cobra.Command {
	var f ingestFlags
	cmd := &cobra.Command{
		Use:   "ingest NAME --input items.jsonl",
		Short: "Bulk-load JSON clouds (one per line) into a collection",
		Long: `ingest reads one JSON cloud per line ({"id": ..., "weights": [...], "points": [[...]],
"attrs": {...}}) and upserts them in batches. Each acknowledged batch is durable.
A batch holding an invalid item is refused whole and the ingest stops, saying how
many items were committed before it; --skip-invalid leaves such items out and
counts them instead. The same ID twice means the last one wins, so re-running an
ingest is idempotent.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.input == "" {
				return usageError{errors.New("ingest: --input is required (a JSONL file, or - for standard input)")}
			}
			if f.batch <= 0 {
				return usageError{fmt.Errorf("ingest: --batch must be positive, got %d", f.batch)}
			}
			return a.withDB(func(db *wpcdb.DB) error {
				c, err := db.Collection(args[0])
				if err != nil {
					return err
				}
				return a.ingestJSONL(cmd.Context(), c, f)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.input, "input", "", "JSONL file of clouds, or - for standard input")
	fl.IntVar(&f.batch, "batch", defaultBatch, "items per durable batch (fewer when clouds are large)")
	fl.BoolVar(&f.skipInvalid, "skip-invalid", false, "skip invalid items (and count them) instead of stopping")
	return cmd
}

// jsonlBatch is a batch of decoded lines, or the line that failed to decode.
type jsonlBatch struct {
	items   []wpcdb.Item
	lines   []int // line number of each item
	skipped int   // lines skipped by decode errors before this batch (--skip-invalid)
	err     error // a line that does not decode (only without --skip-invalid)
}

// ingestStats counts what an ingest did.
type ingestStats struct {
	committed int
	skipped   int
	start     time.Time
}

func (a *app) ingestJSONL(ctx context.Context, c *wpcdb.Collection, f ingestFlags) error {
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
	st := ingestStats{start: time.Now()}
	// Decode on one goroutine while the previous batch is validated and
	// committed on the others.
	batches := make(chan jsonlBatch, 1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.readJSONL(ctx, bufio.NewReaderSize(r, 1<<20), f, batches)
	for b := range batches {
		st.skipped += b.skipped
		if b.err != nil {
			return fmt.Errorf("%w; ingest stopped: %d items committed before this batch", b.err, st.committed)
		}
		res, err := c.UpsertWith(ctx, b.items, wpcdb.UpsertOptions{SkipInvalid: f.skipInvalid})
		var bad *wpcdb.InvalidItem
		if errors.As(err, &bad) {
			return fmt.Errorf("line %d (id %q): %w; batch refused, ingest stopped: %d items committed before it",
				b.lines[bad.Index], bad.ID, bad.Cause, st.committed)
		}
		if err != nil {
			return fmt.Errorf("%w; ingest stopped: %d items committed before this batch", err, st.committed)
		}
		for _, s := range res.Skipped {
			fmt.Fprintf(a.stderr, "wpcdb: skipped line %d (id %q): %v\n", b.lines[s.Index], s.ID, s.Cause)
		}
		st.committed += res.Written
		st.skipped += len(res.Skipped)
	}
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	return a.printIngestSummary(st)
}

// readJSONL decodes lines into batches. Decode errors end the stream unless
// skipping, in which case they are reported and counted.
func (a *app) readJSONL(ctx context.Context, r *bufio.Reader, f ingestFlags, out chan<- jsonlBatch) {
	defer close(out)
	var cur jsonlBatch
	floats := 0
	send := func(b jsonlBatch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for line := 1; ; line++ {
		data, err := r.ReadBytes('\n')
		if len(trimSpace(data)) > 0 {
			rec, derr := cloudjson.Decode(data)
			if derr == nil && rec.ID == "" {
				derr = errors.New("id: missing (ingest needs an id on every cloud)")
			}
			if derr != nil {
				if !f.skipInvalid {
					send(jsonlBatch{err: fmt.Errorf("line %d: %w", line, derr)})
					return
				}
				fmt.Fprintf(a.stderr, "wpcdb: skipped line %d: %v\n", line, derr)
				cur.skipped++
			} else {
				cur.items = append(cur.items, wpcdb.Item{ID: rec.ID, Cloud: rec.Cloud, Attrs: rec.Attrs})
				cur.lines = append(cur.lines, line)
				floats += len(rec.Cloud.Points)
				if len(cur.items) >= f.batch || floats >= maxBatchFloats {
					if !send(cur) {
						return
					}
					cur, floats = jsonlBatch{}, 0
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				send(jsonlBatch{err: fmt.Errorf("line %d: %w", line, err)})
				return
			}
			break
		}
	}
	if len(cur.items) > 0 || cur.skipped > 0 {
		send(cur)
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

func (a *app) printIngestSummary(st ingestStats) error {
	secs := time.Since(st.start).Seconds()
	rate := float64(st.committed) / max(secs, 1e-9)
	if a.g.json {
		return a.printJSON(map[string]any{"ingested": st.committed, "skipped": st.skipped, "seconds": secs, "items_per_s": rate})
	}
	msg := fmt.Sprintf("ingested %d items in %.2f s (%.0f items/s)", st.committed, secs, rate)
	if st.skipped > 0 {
		msg += fmt.Sprintf(", skipped %d invalid", st.skipped)
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
