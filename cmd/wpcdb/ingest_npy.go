package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// npyInput is the opened NumPy input of an ingest: the points and weights
// arrays are read row by row; lengths, IDs and attributes are small enough
// to read whole (attributes are read line by line too).
type npyInput struct {
	n, m, d  int
	points   *npy.Reader
	weights  *npy.Reader // nil: every weight 1
	lengths  []int64     // nil: every item has m points
	ids      []string    // nil: the row number
	attrs    *bufio.Scanner
	closers  []*os.File
	attrPath string
}

func (in *npyInput) close() {
	for _, f := range in.closers {
		f.Close()
	}
}

func (in *npyInput) open(path string) (*npy.Reader, error) {
	f, err := os.Open(path)
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

// openNPY opens and checks every input file before anything is written.
func openNPY(f ingestFlags, dim, maxPoints int) (*npyInput, error) {
	in := &npyInput{}
	fail := func(err error) (*npyInput, error) { in.close(); return nil, err }
	var err error
	if in.points, err = in.open(f.points); err != nil {
		return fail(err)
	}
	if err := in.points.CheckFloat(); err != nil {
		return fail(fmt.Errorf("%s: %w", f.points, err))
	}
	sh := in.points.Header.Shape
	if len(sh) != 3 || sh[0] < 0 || sh[1] < 1 || sh[2] < 1 {
		return fail(fmt.Errorf("%s: shape %s, want (N, M, d)", f.points, in.points.Header.ShapeString()))
	}
	in.n, in.m, in.d = sh[0], sh[1], sh[2]
	if in.d != dim {
		return fail(fmt.Errorf("%s: points have dimension %d, the collection %d", f.points, in.d, dim))
	}
	if maxPoints > 0 && in.m > maxPoints {
		return fail(fmt.Errorf("%s: shape %s: M = %d points per item exceeds the collection's maximum of %d", f.points, in.points.Header.ShapeString(), in.m, maxPoints))
	}
	if f.weights != "" {
		if in.weights, err = in.open(f.weights); err != nil {
			return fail(err)
		}
		if err := in.weights.CheckFloat(); err != nil {
			return fail(fmt.Errorf("%s: %w", f.weights, err))
		}
		if ws := in.weights.Header.Shape; len(ws) != 2 || ws[0] != in.n || ws[1] != in.m {
			return fail(fmt.Errorf("%s: shape %s, want (%d, %d) to match the points", f.weights, in.weights.Header.ShapeString(), in.n, in.m))
		}
	}
	if f.lengths != "" {
		r, err := in.open(f.lengths)
		if err != nil {
			return fail(err)
		}
		if ls := r.Header.Shape; len(ls) != 1 || ls[0] != in.n {
			return fail(fmt.Errorf("%s: shape %s, want (%d,) to match the points", f.lengths, r.Header.ShapeString(), in.n))
		}
		if in.lengths, err = r.ReadInts(in.n); err != nil {
			return fail(fmt.Errorf("%s: %w", f.lengths, err))
		}
		if err := r.Done(); err != nil {
			return fail(fmt.Errorf("%s: %w", f.lengths, err))
		}
		for i, l := range in.lengths {
			if l < 1 || l > int64(in.m) {
				return fail(fmt.Errorf("%s: row %d: length %d, want 1..%d (M)", f.lengths, i, l, in.m))
			}
		}
	}
	if f.ids != "" {
		file, err := os.Open(f.ids)
		if err != nil {
			return fail(err)
		}
		in.closers = append(in.closers, file)
		sc := bufio.NewScanner(file)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			in.ids = append(in.ids, sc.Text())
		}
		if err := sc.Err(); err != nil {
			return fail(fmt.Errorf("%s: %w", f.ids, err))
		}
		if len(in.ids) != in.n {
			return fail(fmt.Errorf("%s: %d IDs for %d rows of points", f.ids, len(in.ids), in.n))
		}
	}
	if f.attrs != "" {
		file, err := os.Open(f.attrs)
		if err != nil {
			return fail(err)
		}
		in.closers = append(in.closers, file)
		in.attrs = bufio.NewScanner(file)
		in.attrs.Buffer(make([]byte, 64<<10), 16<<20)
		in.attrPath = f.attrs
	}
	return in, nil
}

// row reads item i. A row that cannot become an item is an error naming
// the row and the file; the caller decides whether to skip it.
func (in *npyInput) row(i int, pts, ws []float32) (wpcdb.Item, error) {
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
				return wpcdb.Item{}, fmt.Errorf("%s: %w", in.attrPath, err)
			}
			return wpcdb.Item{}, fmt.Errorf("%s: ends at line %d, before row %d of the points", in.attrPath, i, i)
		}
		var attrs map[string]any
		if err := json.Unmarshal(in.attrs.Bytes(), &attrs); err != nil {
			return it, &rowError{fmt.Errorf("%s line %d: %w", in.attrPath, i+1, err)}
		}
		for k, v := range attrs {
			if _, ok := v.(float64); !ok {
				if _, ok := v.(string); !ok {
					if _, ok := v.(bool); !ok {
						return it, &rowError{fmt.Errorf("%s line %d: attrs.%s: value must be a string, number or boolean", in.attrPath, i+1, k)}
					}
				}
			}
		}
		it.Attrs = attrs
	}
	return it, nil
}

// rowError is a bad row that --skip-invalid may skip (unlike a read error
// of the files themselves, which ends the ingest).
type rowError struct{ error }

func (a *app) ingestNPY(ctx context.Context, c ingestTarget, f ingestFlags) error {
	in, err := openNPY(f, c.Config().Dim, c.Config().MaxPoints)
	if err != nil {
		return fmt.Errorf("%w; nothing ingested", err)
	}
	defer in.close()
	bar := a.progress(int64(in.n), "ingest (rows)")
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan ingestBatch, 1)
	go func() {
		defer close(batches)
		perBatch := max(1, min(f.batch, maxBatchFloats/(in.m*in.d)))
		pts := make([]float32, in.m*in.d)
		ws := make([]float32, in.m)
		var cur ingestBatch
		send := func(b ingestBatch) bool { return sendBatch(ctx, batches, b) }
		for i := 0; i < in.n; i++ {
			it, err := in.row(i, pts, ws)
			if err != nil {
				if _, ok := err.(*rowError); ok && f.skipInvalid {
					cur.skipped = append(cur.skipped, fmt.Sprintf("wpcdb: skipped row %d: %v", i, err))
					continue
				}
				send(ingestBatch{err: fmt.Errorf("row %d: %w", i, err)})
				return
			}
			cur.items = append(cur.items, it)
			cur.pos = append(cur.pos, i)
			if len(cur.items) >= perBatch {
				if !send(cur) {
					return
				}
				if bar != nil {
					bar.Set(i + 1)
				}
				cur = ingestBatch{}
			}
		}
		if err := in.points.Done(); err != nil {
			send(ingestBatch{err: fmt.Errorf("%s: %w", f.points, err)})
			return
		}
		if in.weights != nil {
			if err := in.weights.Done(); err != nil {
				send(ingestBatch{err: fmt.Errorf("%s: %w", f.weights, err)})
				return
			}
		}
		if len(cur.items) > 0 || len(cur.skipped) > 0 {
			send(cur)
		}
	}()
	err = a.commitBatches(ctx, c, f, "row", batches)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(a.stderr)
	}
	return err
}
