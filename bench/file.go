package bench

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FileWorkload is the user's own data: items and queries read from JSONL
// files in the format `wpcdb ingest` reads, one JSON cloud per line.
type FileWorkload struct {
	Items   ItemSlice
	Queries []wpcsim.Cloud
	// Dim is the items' dimension (every item and query has it).
	Dim int
	// ItemsSHA256 and QueriesSHA256 are the hex digests of the two files,
	// which identify the data for the ground-truth cache.
	ItemsSHA256, QueriesSHA256 string
}

// FileOptions say how to read a FileWorkload.
type FileOptions struct {
	// MaxItems and MaxQueries cap how many lines are used (0: all).
	MaxItems, MaxQueries int
	// RawPoints is the collection's point rule: unless set, a zero point
	// is invalid (it cannot be normalized).
	RawPoints bool
}

// ReadFileWorkload reads items (every line needs a distinct "id") and
// queries (an "id" is allowed and ignored). The dimension is the first
// item's. Every cloud is validated as the collection will validate it; an
// error names the file, the line and the field. An empty file is an error.
func ReadFileWorkload(itemsPath, queriesPath string, opts FileOptions) (*FileWorkload, error) {
	w := &FileWorkload{}
	lines := map[string]int{} // id → line
	var err error
	w.ItemsSHA256, err = readJSONL(itemsPath, opts.MaxItems, func(line int, rec cloudjson.Record) error {
		if rec.ID == "" {
			return errors.New("id: missing (every item needs an id)")
		}
		if prev, ok := lines[rec.ID]; ok {
			return fmt.Errorf("id: %q is also on line %d (a benchmark needs distinct ids)", rec.ID, prev)
		}
		lines[rec.ID] = line
		if w.Dim == 0 {
			w.Dim = rec.Cloud.Dim
		}
		if err := rec.Cloud.Validate(wpcsim.Limits{Dim: w.Dim, RawPoints: opts.RawPoints}); err != nil {
			return err
		}
		w.Items = append(w.Items, wpcdb.Item{ID: rec.ID, Cloud: rec.Cloud, Attrs: rec.Attrs})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(w.Items) == 0 {
		return nil, fmt.Errorf("bench: %s: no items", itemsPath)
	}
	w.QueriesSHA256, err = readJSONL(queriesPath, opts.MaxQueries, func(line int, rec cloudjson.Record) error {
		if err := rec.Cloud.Validate(wpcsim.Limits{Dim: w.Dim, RawPoints: opts.RawPoints}); err != nil {
			return err
		}
		w.Queries = append(w.Queries, rec.Cloud)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(w.Queries) == 0 {
		return nil, fmt.Errorf("bench: %s: no queries", queriesPath)
	}
	return w, nil
}

// Shape returns the dimension and the most points of any item or query.
func (w *FileWorkload) Shape() (dim, maxPoints int) {
	_, maxPoints = w.Items.Shape()
	for _, q := range w.Queries {
		maxPoints = max(maxPoints, q.Len())
	}
	return w.Dim, maxPoints
}

// readJSONL decodes the non-blank lines of path, up to limit clouds (0:
// all), handing each to fn, and returns the SHA-256 of the whole file
// (whatever the limit: the limit is part of the cache key on its own).
func readJSONL(path string, limit int, fn func(line int, rec cloudjson.Record) error) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	r := bufio.NewReaderSize(io.TeeReader(f, h), 1<<20)
	n := 0
	for line := 1; ; line++ {
		data, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(data)) > 0 && (limit <= 0 || n < limit) {
			rec, derr := cloudjson.Decode(data)
			if derr == nil {
				derr = fn(line, rec)
			}
			if derr != nil {
				return "", fmt.Errorf("bench: %s line %d: %w", path, line, derr)
			}
			n++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("bench: %s line %d: %w", path, line, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
