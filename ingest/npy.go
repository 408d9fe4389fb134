package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// NPY is an opened NumPy input: the points and weights arrays are read
// row by row; lengths, IDs and attributes are small enough to read whole
// (attributes are read line by line too).
type NPY struct {
	n, m, d  int
	points   *npy.Reader
	weights  *npy.Reader // nil: every weight 1
	lengths  []int64     // nil: every item has m points
	ids      []string    // nil: the row number
	attrs    *bufio.Scanner
	closers  []*os.File
	attrPath string
	// The points' and weights' file names, for messages.
	pointsPath, weightsPath string
	opener                  Opener
}

// Rows is the number of rows (items) of the input.
func (in *NPY) Rows() int { return in.n }

// Close closes the input's files.
func (in *NPY) Close() {
	for _, f := range in.closers {
		f.Close()
	}
}

func (in *NPY) open(path string) (*npy.Reader, error) {
	f, err := in.opener(path)
	if err != nil {
		return nil, err
	}
	in.closers = append(in.closers, f)
	r, err := npy.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// The shape is checked against the file's size before anything sized
	// by it is allocated or multiplied.
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().IsRegular() {
		if err := r.CheckFileSize(st.Size()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	} else if _, ok := r.Header.Len(); !ok {
		return nil, fmt.Errorf("%s: shape %s overflows", path, r.Header.ShapeString())
	}
	return r, nil
}

// NPYFiles name the files of a NumPy input: Points (N, M, d) float32 or
// float16, and optionally Weights (N, M), Lengths (N,) integers (the
// points of row i are its first Lengths[i]), IDs (one a line; default the
// row number) and Attrs (one JSON object a line).
type NPYFiles struct {
	Points, Weights, Lengths, IDs, Attrs string
}

// Opener opens an input file: os.Open, or one confined to a directory
// (os.Root.Open) for a server reading files a client named.
type Opener func(name string) (*os.File, error)

// OpenNPY opens and checks every input file before anything is written:
// shapes against each other, the collection's dimension and maxPoints, and
// the files' sizes, before anything sized by them is allocated.
func OpenNPY(open Opener, f NPYFiles, dim, maxPoints int) (*NPY, error) {
	in := &NPY{opener: open, pointsPath: f.Points, weightsPath: f.Weights}
	fail := func(err error) (*NPY, error) { in.Close(); return nil, err }
	var err error
	if in.points, err = in.open(f.Points); err != nil {
		return fail(err)
	}
	if err := in.points.CheckFloat(); err != nil {
		return fail(fmt.Errorf("%s: %w", f.Points, err))
	}
	sh := in.points.Header.Shape
	if len(sh) != 3 || sh[0] < 0 || sh[1] < 1 || sh[2] < 1 {
		return fail(fmt.Errorf("%s: shape %s, want (N, M, d)", f.Points, in.points.Header.ShapeString()))
	}
	in.n, in.m, in.d = sh[0], sh[1], sh[2]
	if in.d != dim {
		return fail(fmt.Errorf("%s: points have dimension %d, the collection %d", f.Points, in.d, dim))
	}
	if maxPoints > 0 && in.m > maxPoints {
		return fail(fmt.Errorf("%s: shape %s: M = %d points per item exceeds the collection's maximum of %d", f.Points, in.points.Header.ShapeString(), in.m, maxPoints))
	}
	if f.Weights != "" {
		if in.weights, err = in.open(f.Weights); err != nil {
			return fail(err)
		}
		if err := in.weights.CheckFloat(); err != nil {
			return fail(fmt.Errorf("%s: %w", f.Weights, err))
		}
		if ws := in.weights.Header.Shape; len(ws) != 2 || ws[0] != in.n || ws[1] != in.m {
			return fail(fmt.Errorf("%s: shape %s, want (%d, %d) to match the points", f.Weights, in.weights.Header.ShapeString(), in.n, in.m))
		}
	}
	if f.Lengths != "" {
		r, err := in.open(f.Lengths)
		if err != nil {
			return fail(err)
		}
		if ls := r.Header.Shape; len(ls) != 1 || ls[0] != in.n {
			return fail(fmt.Errorf("%s: shape %s, want (%d,) to match the points", f.Lengths, r.Header.ShapeString(), in.n))
		}
		if in.lengths, err = r.ReadInts(in.n); err != nil {
			return fail(fmt.Errorf("%s: %w", f.Lengths, err))
		}
		if err := r.Done(); err != nil {
			return fail(fmt.Errorf("%s: %w", f.Lengths, err))
		}
		for i, l := range in.lengths {
			if l < 1 || l > int64(in.m) {
				return fail(fmt.Errorf("%s: row %d: length %d, want 1..%d (M)", f.Lengths, i, l, in.m))
			}
		}
	}
	if f.IDs != "" {
		file, err := open(f.IDs)
		if err != nil {
			return fail(err)
		}
		in.closers = append(in.closers, file)
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), maxIDLine)
		for sc.Scan() {
			if len(in.ids) == in.n {
				return fail(fmt.Errorf("%s: more IDs than the %d rows of points", f.IDs, in.n))
			}
			in.ids = append(in.ids, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return fail(fmt.Errorf("%s: %w", f.IDs, lineError(err, len(in.ids)+1, maxIDLine)))
		}
		if len(in.ids) != in.n {
			return fail(fmt.Errorf("%s: %d IDs for %d rows of points", f.IDs, len(in.ids), in.n))
		}
	}
	if f.Attrs != "" {
		file, err := open(f.Attrs)
		if err != nil {
			return fail(err)
		}
		in.closers = append(in.closers, file)
		in.attrs = bufio.NewScanner(file)
		in.attrs.Buffer(make([]byte, 64<<10), maxAttrsLine)
		in.attrPath = f.Attrs
	}
	return in, nil
}

// Line limits of the NumPy ingest's text files: an ID is at most 512
// bytes and an item's attributes at most 1 MiB as stored, so longer lines
// are refused as they are read instead of growing a buffer.
const (
	maxIDLine    = 1 << 20
	maxAttrsLine = 16 << 20
)

// lineError names the line and the limit when a text file's line is too
// long (bufio.Scanner says only "token too long").
func lineError(err error, line, limit int) error {
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("line %d: longer than %d bytes", line, limit)
	}
	return err
}

// row reads item i. A row that cannot become an item is an error naming
// the row and the file; the caller decides whether to skip it.
func (in *NPY) row(i int, pts, ws []float32) (wpcdb.Item, error) {
	if err := in.points.ReadFloats(pts); err != nil {
		return wpcdb.Item{}, err
	}
	if in.weights != nil {
		if err := in.weights.ReadFloats(ws); err != nil {
			return wpcdb.Item{}, err
		}
	}
	l := in.m
	if in.lengths != nil {
		l = int(in.lengths[i])
	}
	it := wpcdb.Item{ID: strconv.Itoa(i), Cloud: wpcsim.Cloud{Dim: in.d, Weights: make([]float32, l), Points: append([]float32(nil), pts[:l*in.d]...)}}
	if in.weights != nil {
		copy(it.Cloud.Weights, ws[:l])
	} else {
		for k := range it.Cloud.Weights {
			it.Cloud.Weights[k] = 1
		}
	}
	if in.ids != nil {
		it.ID = in.ids[i]
	}
	if in.attrs != nil {
		if !in.attrs.Scan() {
			if err := in.attrs.Err(); err != nil {
				return wpcdb.Item{}, fmt.Errorf("%s: %w", in.attrPath, lineError(err, i+1, maxAttrsLine))
			}
			return wpcdb.Item{}, fmt.Errorf("%s: ends at line %d, before row %d of the points", in.attrPath, i, i)
		}
		attrs, err := cloudjson.DecodeAttrs(in.attrs.Bytes())
		if err != nil {
			return it, &RowError{fmt.Errorf("%s line %d: %w", in.attrPath, i+1, err)}
		}
		it.Attrs = attrs
	}
	return it, nil
}

// RowError is a bad row that SkipInvalid may skip (unlike a read error of
// the files themselves, which ends the ingest).
type RowError struct{ error }

// Batches reads the rows into batches of at most batch items (fewer when
// large; see MaxBatchFloats) on a goroutine, until ctx ends. A bad row
// (RowError) ends the input, or with skipInvalid is skipped with a
// message; progress, if set, is called with the rows read so far.
func (in *NPY) Batches(ctx context.Context, batch int, skipInvalid bool, progress func(rows int)) <-chan Batch {
	batches := make(chan Batch, 1)
	go func() {
		defer close(batches)
		perBatch := max(1, min(batch, MaxBatchFloats/(in.m*in.d)))
		pts := make([]float32, in.m*in.d)
		ws := make([]float32, in.m)
		var cur Batch
		send := func(b Batch) bool { return Send(ctx, batches, b) }
		for i := 0; i < in.n; i++ {
			it, err := in.row(i, pts, ws)
			if err != nil {
				if _, ok := err.(*RowError); ok && skipInvalid {
					cur.Skipped = append(cur.Skipped, fmt.Sprintf("wpcdb: skipped row %d: %v", i, err))
					continue
				}
				send(Batch{Err: fmt.Errorf("row %d: %w", i, err)})
				return
			}
			cur.Items = append(cur.Items, it)
			cur.Pos = append(cur.Pos, i)
			if len(cur.Items) >= perBatch {
				if !send(cur) {
					return
				}
				if progress != nil {
					progress(i + 1)
				}
				cur = Batch{}
			}
		}
		if err := in.points.Done(); err != nil {
			send(Batch{Err: fmt.Errorf("%s: %w", in.pointsPath, err)})
			return
		}
		if in.weights != nil {
			if err := in.weights.Done(); err != nil {
				send(Batch{Err: fmt.Errorf("%s: %w", in.weightsPath, err)})
				return
			}
		}
		if len(cur.Items) > 0 || len(cur.Skipped) > 0 {
			send(cur)
		}
	}()
	return batches
}
