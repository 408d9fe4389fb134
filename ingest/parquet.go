package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/parquet-go/parquet-go/format"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// The Parquet input (`wpcdb import --parquet`, the Import RPC's parquet
// field). One row is one item; the columns are found by name among the
// file's top-level fields:
//
//   - points (required): the item's points, either a list of points, each
//     a list of d floats (list<list<float|double>>, what NumPy-backed
//     writers such as pandas and pyarrow produce for a column of (M, d)
//     arrays), or one flat list of M·d floats, row-major
//     (list<float|double>); d is the collection's dimension;
//   - weights (optional): list<float|double>, one per point; a missing
//     column or a null list means every weight 1;
//   - id (optional): a string or an integer column; missing: the row
//     number, counted from 0 over the whole file as with NumPy input;
//   - every other top-level column is an attribute of the same name: a
//     string (BYTE_ARRAY annotated STRING/UTF8 or ENUM), boolean, integer
//     (int32, int64; integers beyond ±2^53 are refused since attribute
//     numbers are float64), float or double column, or a list of those; a
//     null leaves the attribute out. A column of another type (binary,
//     timestamp, decimal, struct, map) is refused when the file is opened.
//
// The file is read one row group at a time and one page at a time per
// column; nothing sized by the file's claims is allocated before it is
// checked (see checkParquetLayout).

// ParquetColumns name the columns an input's fields come from; an empty
// name is the default ("id", "points", "weights").
type ParquetColumns struct {
	ID, Points, Weights string
}

func (c ParquetColumns) withDefaults() ParquetColumns {
	if c.ID == "" {
		c.ID = "id"
	}
	if c.Points == "" {
		c.Points = "points"
	}
	if c.Weights == "" {
		c.Weights = "weights"
	}
	return c
}

// Limits of a Parquet input, checked before anything sized by the file is
// allocated.
const (
	// MaxParquetFooter bounds the file's metadata (schema, row groups,
	// statistics): a few KiB for a typical file; a larger claim is a
	// damaged file, not data.
	MaxParquetFooter = 64 << 20
	// MaxParquetPage bounds one page, compressed or not (writers use
	// pages of 1 MiB or less by default). The reader holds one page per
	// column it reads.
	MaxParquetPage = 64 << 20
	// MaxParquetPageValues bounds the values of one page (pyarrow writes
	// at most 20,000 rows a page by default; parquet-go pages are sized
	// by bytes).
	MaxParquetPageValues = 1 << 24
)

// Parquet is an opened Parquet input.
type Parquet struct {
	path      string
	file      *os.File
	size      int64
	pf        *parquet.File
	rows      int64
	dim       int
	maxFloats int // points of an item times dim, at most
	points    pqColumn
	weights   *pqColumn // nil: every weight 1
	id        *pqColumn // nil: the row number
	attrs     []pqColumn
}

// pqColumn is a top-level field of the file read as one leaf column.
type pqColumn struct {
	name   string
	leaf   int // column index
	kind   parquet.Kind
	scalar scalarKind
	maxRep int
	maxDef int
	// defAt[k] is the definition level at which the k-th repeated
	// ancestor (1-based) has at least one element; defAt[0] is the level
	// at which the field itself is not null.
	defAt []int
}

type scalarKind int

const (
	scalarFloat scalarKind = iota
	scalarInt
	scalarUint
	scalarBool
	scalarString
	scalarBytes // an ID only
)

// Rows is the number of rows (items) of the input.
func (in *Parquet) Rows() int { return int(in.rows) }

// Close closes the input's file.
func (in *Parquet) Close() {
	if in.file != nil {
		in.file.Close()
	}
}

// OpenParquet opens path (with open) and checks its metadata, layout and
// schema against the collection's dimension and maxPoints before anything
// is written. Every problem is an error naming the file and the column.
func OpenParquet(open Opener, path string, cols ParquetColumns, dim, maxPoints int) (in *Parquet, err error) {
	cols = cols.withDefaults()
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	in = &Parquet{path: path, file: f, dim: dim, maxFloats: maxPoints * dim}
	defer func() {
		if err != nil {
			f.Close()
			in = nil
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	in.size = st.Size()
	if err := checkParquetFooter(f, in.size); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	err = safely(func() error {
		var err error
		in.pf, err = parquet.OpenFile(f, in.size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := in.checkLayout(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := in.bindColumns(cols); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}

// checkLayout checks the row counts and each column chunk's place in the
// file, and then every page header (checkChunkPages), so that no page
// read later allocates more than MaxParquetPage or more than its chunk
// holds.
func (in *Parquet) checkLayout() error {
	md := in.pf.Metadata()
	var rows int64
	for g, rg := range md.RowGroups {
		if rg.NumRows < 0 || rows+rg.NumRows < rows {
			return fmt.Errorf("row group %d: %d rows: corrupt metadata", g, rg.NumRows)
		}
		rows += rg.NumRows
		if len(rg.Columns) != len(in.pf.Schema().Columns()) {
			return fmt.Errorf("row group %d: %d column chunks for %d columns: corrupt metadata", g, len(rg.Columns), len(in.pf.Schema().Columns()))
		}
		for c := range rg.Columns {
			if err := checkChunkPages(in.file, in.size, &rg.Columns[c].MetaData); err != nil {
				return fmt.Errorf("row group %d, column %s: %w", g, pathString(rg.Columns[c].MetaData.PathInSchema), err)
			}
		}
	}
	if rows != md.NumRows {
		return fmt.Errorf("the row groups hold %d rows, the file claims %d: corrupt metadata", rows, md.NumRows)
	}
	in.rows = rows
	return nil
}

// bindColumns finds the input's fields among the file's top-level fields
// and checks their types.
func (in *Parquet) bindColumns(cols ParquetColumns) error {
	schema := in.pf.Schema()
	if cols.Points == cols.Weights || cols.Points == cols.ID || cols.Weights == cols.ID {
		return fmt.Errorf("the columns of IDs (%q), points (%q) and weights (%q) must differ", cols.ID, cols.Points, cols.Weights)
	}
	if !hasField(schema, cols.Points) {
		return fmt.Errorf("no column %q (points)", cols.Points)
	}
	seen := map[string]bool{}
	var havePoints bool
	for _, field := range schema.Fields() {
		name := field.Name()
		if seen[name] {
			return fmt.Errorf("column %q appears twice", name)
		}
		seen[name] = true
		c, err := leafOf(schema, field)
		if err != nil {
			return err
		}
		switch name {
		case cols.Points, cols.Weights:
			if c.scalar != scalarFloat || c.maxRep < 1 || c.maxRep > 2 || (name == cols.Weights && c.maxRep != 1) {
				want := "a list of float or double, or a list of lists of them"
				if name == cols.Weights {
					want = "a list of float or double"
				}
				return fmt.Errorf("column %q (%s) is %s, want %s", name, cols.fieldOf(name), describe(c), want)
			}
			if name == cols.Points {
				in.points, havePoints = c, true
			} else {
				in.weights = &c
			}
		case cols.ID:
			if c.maxRep != 0 || (c.scalar != scalarString && c.scalar != scalarBytes && c.scalar != scalarInt && c.scalar != scalarUint) {
				return fmt.Errorf("column %q (id) is %s, want a string or an integer", name, describe(c))
			}
			in.id = &c
		default:
			if c.maxRep > 1 || c.scalar == scalarBytes {
				return fmt.Errorf("column %q (attribute) is %s, want a string, number or boolean, or a list of those", name, describe(c))
			}
			if name == "" || len(name) > storage.MaxAttrNameLength || !utf8.ValidString(name) {
				return fmt.Errorf("column %q: an attribute name must be 1 to %d bytes of UTF-8", name, storage.MaxAttrNameLength)
			}
			in.attrs = append(in.attrs, c)
		}
	}
	if !havePoints {
		return fmt.Errorf("no column %q (points)", cols.Points)
	}
	return nil
}

func hasField(s *parquet.Schema, name string) bool {
	for _, f := range s.Fields() {
		if f.Name() == name {
			return true
		}
	}
	return false
}

func (c ParquetColumns) fieldOf(name string) string {
	switch name {
	case c.Points:
		return "points"
	case c.Weights:
		return "weights"
	}
	return "id"
}

// leafOf reads a top-level field as one leaf column: a scalar, or lists
// (LIST-annotated or bare repeated) nested down to one scalar.
func leafOf(schema *parquet.Schema, field parquet.Field) (pqColumn, error) {
	c := pqColumn{name: field.Name()}
	var path []string
	def := 0
	node := field
	for depth := 0; ; depth++ {
		if depth > 8 {
			return c, fmt.Errorf("column %q nests deeper than wpcdb reads", c.name)
		}
		path = append(path, node.Name())
		if node.Optional() {
			def++
		}
		if node.Repeated() {
			if depth == 0 { // a bare repeated field: null is the empty list
				c.defAt = append(c.defAt, 0)
			}
			def++
			c.defAt = append(c.defAt, def)
		} else if depth == 0 {
			c.defAt = append(c.defAt, def)
		}
		if node.Leaf() {
			break
		}
		fields := node.Fields()
		if len(fields) != 1 {
			return c, fmt.Errorf("column %q is a group of %d fields (a struct or map), want a scalar or a list", c.name, len(fields))
		}
		node = fields[0]
	}
	leaf, ok := schema.Lookup(path...)
	if !ok {
		return c, fmt.Errorf("column %q: no leaf at %v", c.name, path)
	}
	c.leaf, c.maxRep, c.maxDef = leaf.ColumnIndex, leaf.MaxRepetitionLevel, leaf.MaxDefinitionLevel
	if len(c.defAt) != c.maxRep+1 {
		return c, fmt.Errorf("column %q: %d repeated levels in a schema claiming %d: corrupt schema", c.name, len(c.defAt)-1, c.maxRep)
	}
	t := node.Type()
	c.kind = t.Kind()
	lt := t.LogicalType()
	var logical format.LogicalTypeValue
	if lt != nil {
		logical = lt.Value
	}
	ct := t.ConvertedType()
	switch c.kind {
	case parquet.Float, parquet.Double:
		if logical == nil {
			c.scalar = scalarFloat
			return c, nil
		}
	case parquet.Boolean:
		c.scalar = scalarBool
		return c, nil
	case parquet.Int32, parquet.Int64:
		switch x := logical.(type) {
		case nil:
			if ct == nil || isIntConverted(*ct) {
				c.scalar = scalarInt
				if ct != nil && isUintConverted(*ct) {
					c.scalar = scalarUint
				}
				return c, nil
			}
		case *format.IntType:
			c.scalar = scalarInt
			if !x.IsSigned {
				c.scalar = scalarUint
			}
			return c, nil
		}
	case parquet.ByteArray:
		switch logical.(type) {
		case *format.StringType, *format.EnumType:
			c.scalar = scalarString
			return c, nil
		case nil:
			if ct != nil && (*ct == deprecated.UTF8 || *ct == deprecated.Enum) {
				c.scalar = scalarString
			} else {
				c.scalar = scalarBytes
			}
			return c, nil
		}
	}
	return c, fmt.Errorf("column %q is %s, which wpcdb does not read", c.name, t)
}

func isIntConverted(ct deprecated.ConvertedType) bool {
	switch ct {
	case deprecated.Int8, deprecated.Int16, deprecated.Int32, deprecated.Int64:
		return true
	}
	return isUintConverted(ct)
}

func isUintConverted(ct deprecated.ConvertedType) bool {
	switch ct {
	case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32, deprecated.Uint64:
		return true
	}
	return false
}

func describe(c pqColumn) string {
	s := map[scalarKind]string{scalarFloat: "float", scalarInt: "integer", scalarUint: "unsigned integer", scalarBool: "boolean", scalarString: "string", scalarBytes: "binary"}[c.scalar]
	if c.kind == parquet.Double {
		s = "double"
	}
	for range c.maxRep {
		s = "list<" + s + ">"
	}
	return "a " + s
}

func pathString(p []string) string {
	s := ""
	for i, e := range p {
		if i > 0 {
			s += "."
		}
		s += e
	}
	return strconv.Quote(s)
}

// safely runs f, turning a panic of the Parquet library (a decoder meeting
// bytes it did not expect) into an error: a damaged file must be an error,
// never a crash of the server reading it. The checks before (footer,
// pages) catch what they can; this is the backstop.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt parquet data: %v", r)
		}
	}()
	return f()
}

// pqCursor reads the values of one column chunk, page by page, a block
// at a time. A page of floats or doubles without a dictionary is read
// from its arrays of levels and values (fast); any other page through
// its ValueReader, as parquet.Values (24 bytes each).
//
// Measured on the compact workload's first 100k items (~640 floats an
// item, snappy): the reader took 17 µs of CPU an item through the
// ValueReader alone, 12–13 µs with the arrays (NumPy's reader: 10–11 µs).
// TestParquetRoundTrip imports the same items both ways.
type pqCursor struct {
	col   *pqColumn
	pages parquet.Pages
	left  int64 // values the chunk's metadata promises still
	done  bool
	float bool // the column is points or weights: pages may be read fast

	// The ValueReader of the current page.
	vals parquet.ValueReader
	buf  []parquet.Value
	i, n int

	// The arrays of the current page, when fast.
	fast       bool
	reps, defs []byte
	f32        []float32
	f64        []float64
	li, vi     int
}

func (c *pqCursor) close() {
	if c.pages != nil {
		c.pages.Close()
	}
}

// ensure makes a value current, reading the next page when needed; false
// at the end of the chunk.
func (c *pqCursor) ensure() (bool, error) {
	for {
		if c.fast {
			if c.li < len(c.defs) {
				return true, nil
			}
			c.fast = false
		} else if c.i < c.n {
			return true, nil
		}
		if c.done {
			return false, nil
		}
		if c.vals == nil {
			var page parquet.Page
			err := safely(func() error {
				var err error
				page, err = c.pages.ReadPage()
				return err
			})
			if err == io.EOF {
				c.done = true
				return false, nil
			}
			if err != nil {
				return false, err
			}
			if ok, err := c.loadFast(page); err != nil {
				return false, err
			} else if ok {
				continue
			}
			c.vals = page.Values()
		}
		if c.buf == nil {
			c.buf = make([]parquet.Value, 1024)
		}
		var n int
		err := safely(func() error {
			var err error
			n, err = c.vals.ReadValues(c.buf)
			return err
		})
		c.i, c.n = 0, n
		if c.left -= int64(n); c.left < 0 {
			return false, errors.New("more values than the column chunk's metadata says: corrupt file")
		}
		if err == io.EOF {
			c.vals = nil
		} else if err != nil {
			return false, err
		}
	}
}

// loadFast takes page's arrays when it can be read fast.
func (c *pqCursor) loadFast(page parquet.Page) (bool, error) {
	if !c.float || page.Dictionary() != nil {
		return false, nil
	}
	reps, defs := page.RepetitionLevels(), page.DefinitionLevels()
	if len(defs) == 0 || len(reps) != len(defs) {
		return false, nil
	}
	var f32 []float32
	var f64 []float64
	err := safely(func() error {
		d := page.Data()
		switch d.Kind() {
		case encoding.Float:
			f32 = d.Float()
		case encoding.Double:
			f64 = d.Double()
		}
		return nil
	})
	if err != nil || (f32 == nil && f64 == nil) {
		return false, err
	}
	present := 0
	for k, d := range defs {
		if int(d) > c.col.maxDef || int(reps[k]) > c.col.maxRep {
			return false, fmt.Errorf("levels (%d, %d) beyond the schema's (%d, %d): corrupt file", reps[k], d, c.col.maxRep, c.col.maxDef)
		}
		if int(d) == c.col.maxDef {
			present++
		}
	}
	if present != len(f32)+len(f64) {
		return false, fmt.Errorf("a page of %d values with %d present levels: corrupt file", len(f32)+len(f64), present)
	}
	if c.left -= int64(len(defs)); c.left < 0 {
		return false, errors.New("more values than the column chunk's metadata says: corrupt file")
	}
	c.fast, c.reps, c.defs, c.f32, c.f64, c.li, c.vi = true, reps, defs, f32, f64, 0, 0
	return true, nil
}

// level returns the current value's repetition and definition levels.
func (c *pqCursor) level() (rep, def int) {
	if c.fast {
		return int(c.reps[c.li]), int(c.defs[c.li])
	}
	v := &c.buf[c.i]
	return v.RepetitionLevel(), v.DefinitionLevel()
}

// floatValue is the current value of a float column (defined only when
// present: its definition level is the maximum).
func (c *pqCursor) floatValue() float32 {
	if !c.fast {
		return floatOf(&c.buf[c.i])
	}
	if c.f32 != nil {
		return c.f32[c.vi]
	}
	return float32(c.f64[c.vi])
}

func (c *pqCursor) advance() {
	if c.fast {
		if int(c.defs[c.li]) == c.col.maxDef {
			c.vi++
		}
		c.li++
		return
	}
	c.i++
}

// rowLevels calls f for each value of the current row (the first has
// repetition level 0) and moves past it; false: the chunk ended.
func (c *pqCursor) rowLevels(f func(rep, def int)) (bool, error) {
	ok, err := c.ensure()
	if err != nil || !ok {
		return false, err
	}
	if rep, _ := c.level(); rep != 0 {
		return false, errors.New("a row starts with a repeated value: corrupt file")
	}
	for {
		rep, def := c.level()
		if !c.fast {
			if err := checkLevels(c.col, &c.buf[c.i]); err != nil {
				return false, err
			}
		}
		f(rep, def)
		c.advance()
		if ok, err = c.ensure(); err != nil {
			return false, err
		}
		if !ok {
			return true, nil
		}
		if rep, _ := c.level(); rep == 0 {
			return true, nil
		}
	}
}

// row calls f with each value of the current row, read as parquet.Values
// (a column that is not points or weights is never read fast).
func (c *pqCursor) row(f func(v *parquet.Value)) (bool, error) {
	return c.rowLevels(func(int, int) { f(&c.buf[c.i]) })
}

func checkLevels(c *pqColumn, v *parquet.Value) error {
	if r, d := v.RepetitionLevel(), v.DefinitionLevel(); r > c.maxRep || d > c.maxDef {
		return fmt.Errorf("levels (%d, %d) beyond the schema's (%d, %d): corrupt file", r, d, c.maxRep, c.maxDef)
	}
	return nil
}

// pqRow holds one row's decoded fields while the row is read.
type pqRow struct {
	pts, ws   []float32
	nPts, nWs int   // points (inner lists or floats/dim) and weights
	lens      []int // coordinates of each point (nested points)
	ptsNull   bool
	wsNull    bool
	err       error // the first problem of the row
}

func (r *pqRow) fail(field, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...))
	}
}

// readPoints decodes the points of one row into r.pts, refusing (before
// appending) more than maxFloats coordinates.
func (in *Parquet) readPoints(c *pqCursor, r *pqRow) (bool, error) {
	col := c.col
	r.pts, r.lens, r.ptsNull = r.pts[:0], r.lens[:0], false
	field := col.name
	return c.rowLevels(func(rep, d int) {
		if r.err != nil {
			return
		}
		if d < col.defAt[0] {
			r.ptsNull = true
			return
		}
		if col.maxRep == 2 {
			if d >= col.defAt[1] && rep <= 1 {
				if len(r.lens) >= in.maxFloats/in.dim {
					r.fail(field, "more than %d points (the collection's maximum)", in.maxFloats/in.dim)
					return
				}
				r.lens = append(r.lens, 0)
			}
			if d < col.defAt[1] {
				return // an empty list of points
			}
			if d < col.defAt[2] {
				return // an empty point: its length 0 is reported below
			}
		} else if d < col.defAt[1] {
			return // an empty list
		}
		if d < col.maxDef {
			r.fail(field, "a null coordinate")
			return
		}
		if len(r.pts) >= in.maxFloats {
			r.fail(field, "more than %d coordinates (%d points of dimension %d, the collection's maximum)", in.maxFloats, in.maxFloats/in.dim, in.dim)
			return
		}
		if col.maxRep == 2 {
			r.lens[len(r.lens)-1]++
		}
		r.pts = append(r.pts, c.floatValue())
	})
}

// readWeights decodes the weights of one row into r.ws.
func (in *Parquet) readWeights(c *pqCursor, r *pqRow) (bool, error) {
	col := c.col
	r.ws, r.wsNull = r.ws[:0], false
	maxW := in.maxFloats / in.dim
	return c.rowLevels(func(_, d int) {
		if r.err != nil {
			return
		}
		if d < col.defAt[0] {
			r.wsNull = true
			return
		}
		if d < col.defAt[1] {
			return
		}
		if d < col.maxDef {
			r.fail(col.name, "a null weight")
			return
		}
		if len(r.ws) >= maxW {
			r.fail(col.name, "more than %d weights (the collection's maximum points)", maxW)
			return
		}
		r.ws = append(r.ws, c.floatValue())
	})
}

func floatOf(v *parquet.Value) float32 {
	if v.Kind() == parquet.Double {
		return float32(v.Double())
	}
	return v.Float()
}

// maxExactInt is the largest integer a float64 attribute holds exactly.
const maxExactInt = 1 << 53

// scalarOf converts a non-null leaf value of c to an attribute value.
func scalarOf(c *pqColumn, v *parquet.Value) (any, error) {
	switch c.scalar {
	case scalarFloat:
		if v.Kind() == parquet.Double {
			return v.Double(), nil
		}
		return float64(v.Float()), nil
	case scalarBool:
		return v.Boolean(), nil
	case scalarString, scalarBytes:
		return string(v.ByteArray()), nil // a copy: the page's bytes are reused
	case scalarUint:
		u := v.Uint64()
		if v.Kind() == parquet.Int32 {
			u = uint64(v.Uint32())
		}
		if u > maxExactInt {
			return nil, fmt.Errorf("integer %d is beyond ±2^53, which a number attribute (float64) does not hold exactly", u)
		}
		return float64(u), nil
	default:
		i := v.Int64()
		if v.Kind() == parquet.Int32 {
			i = int64(v.Int32())
		}
		if i > maxExactInt || i < -maxExactInt {
			return nil, fmt.Errorf("integer %d is beyond ±2^53, which a number attribute (float64) does not hold exactly", i)
		}
		return float64(i), nil
	}
}

// readAttr decodes one row of an attribute column into attrs (a null
// leaves it out).
func readAttr(c *pqCursor, attrs *map[string]any, r *pqRow) (bool, error) {
	col := c.col
	field := "attrs." + col.name
	var val any
	var list []any
	present := false
	ok, err := c.row(func(v *parquet.Value) {
		d := int(v.DefinitionLevel())
		if d < col.defAt[0] || r.err != nil {
			return // null
		}
		present = true
		if col.maxRep == 1 && d < col.defAt[1] {
			return // an empty list
		}
		if d < col.maxDef {
			if col.maxRep == 1 {
				r.fail(field, "a list holds a null")
			} else {
				present = false
			}
			return
		}
		x, err := scalarOf(col, v)
		if err != nil {
			r.fail(field, "%v", err)
			return
		}
		if col.maxRep == 0 {
			val = x
			return
		}
		if len(list) >= maxAttrList {
			r.fail(field, "a list of more than %d values", maxAttrList)
			return
		}
		list = append(list, x)
	})
	if ok && present && r.err == nil {
		if col.maxRep == 1 {
			if list == nil {
				list = []any{}
			}
			val = list
		}
		if *attrs == nil {
			*attrs = map[string]any{}
		}
		(*attrs)[col.name] = val
	}
	return ok, err
}

// maxAttrList bounds an attribute list before it is built (the storage
// refuses longer ones anyway: storage.MaxAttrListLength).
const maxAttrList = 1 << 16

// readID decodes one row's ID.
func readID(c *pqCursor, id *string, r *pqRow) (bool, error) {
	col := c.col
	return c.row(func(v *parquet.Value) {
		if int(v.DefinitionLevel()) < col.maxDef {
			r.fail(col.name, "null")
			return
		}
		switch col.scalar {
		case scalarString, scalarBytes:
			*id = string(v.ByteArray())
		case scalarUint:
			if v.Kind() == parquet.Int32 {
				*id = strconv.FormatUint(uint64(v.Uint32()), 10)
			} else {
				*id = strconv.FormatUint(v.Uint64(), 10)
			}
		default:
			if v.Kind() == parquet.Int32 {
				*id = strconv.FormatInt(int64(v.Int32()), 10)
			} else {
				*id = strconv.FormatInt(v.Int64(), 10)
			}
		}
	})
}

// item makes row's item from the decoded fields; a row that cannot be an
// item is a RowError naming the field.
func (in *Parquet) item(r *pqRow, id string, attrs map[string]any) (wpcdb.Item, error) {
	if r.err != nil {
		return wpcdb.Item{}, &RowError{r.err}
	}
	if r.ptsNull {
		return wpcdb.Item{}, &RowError{fmt.Errorf("%s: null", in.points.name)}
	}
	if in.points.maxRep == 2 {
		for k, l := range r.lens {
			if l != in.dim {
				return wpcdb.Item{}, &RowError{fmt.Errorf("%s[%d]: %d coordinates, want %d (the collection's dimension)", in.points.name, k, l, in.dim)}
			}
		}
	} else if len(r.pts)%in.dim != 0 {
		return wpcdb.Item{}, &RowError{fmt.Errorf("%s: %d values is not a whole number of points of dimension %d", in.points.name, len(r.pts), in.dim)}
	}
	n := len(r.pts) / in.dim
	if n == 0 {
		return wpcdb.Item{}, &RowError{fmt.Errorf("%s: no points", in.points.name)}
	}
	it := wpcdb.Item{ID: id, Attrs: attrs, Cloud: wpcsim.Cloud{Dim: in.dim, Points: append([]float32(nil), r.pts...), Weights: make([]float32, n)}}
	if in.weights != nil && !r.wsNull {
		if len(r.ws) != n {
			return wpcdb.Item{}, &RowError{fmt.Errorf("%s: %d weights for %d points", in.weights.name, len(r.ws), n)}
		}
		copy(it.Cloud.Weights, r.ws)
	} else {
		for k := range it.Cloud.Weights {
			it.Cloud.Weights[k] = 1
		}
	}
	return it, nil
}

// Batches reads the rows, one row group at a time, into batches of at
// most batch items and MaxBatchFloats floats on a goroutine, until ctx
// ends; bad rows and SkipInvalid behave as in NPY.Batches, and progress is
// called with the rows read so far.
func (in *Parquet) Batches(ctx context.Context, batch int, skipInvalid bool, progress func(rows int)) <-chan Batch {
	batches := make(chan Batch, 1)
	go func() {
		defer close(batches)
		send := func(b Batch) bool { return Send(ctx, batches, b) }
		var cur Batch
		floats := 0
		var row int64
		var r pqRow
		flush := func(read int) bool {
			if !send(cur) {
				return false
			}
			if progress != nil {
				progress(read)
			}
			cur, floats = Batch{}, 0
			return true
		}
		for g, rg := range in.pf.RowGroups() {
			err := in.readGroup(g, rg, &row, &r, func(i int64, it wpcdb.Item, err error) bool {
				if err != nil {
					if _, ok := err.(*RowError); ok && skipInvalid {
						cur.Skipped = append(cur.Skipped, fmt.Sprintf("wpcdb: skipped row %d: %v", i, err))
						return true
					}
					send(Batch{Err: fmt.Errorf("row %d: %w", i, err)})
					return false
				}
				// A batch holds at most MaxBatchFloats floats, as the
				// server's memory budget for an import counts.
				f := len(it.Cloud.Points) + len(it.Cloud.Weights)
				if len(cur.Items) > 0 && floats+f > MaxBatchFloats {
					if !flush(int(i)) {
						return false
					}
				}
				cur.Items = append(cur.Items, it)
				cur.Pos = append(cur.Pos, int(i))
				floats += f
				if len(cur.Items) >= batch {
					return flush(int(i + 1))
				}
				return true
			})
			if err == errStop {
				return
			}
			if err != nil {
				// A damaged file is the input's fault, as a bad row is.
				send(Batch{Err: fmt.Errorf("%w: %s: row group %d: %w", wpcdb.ErrInvalidArgument, in.path, g, err)})
				return
			}
		}
		if len(cur.Items) > 0 || len(cur.Skipped) > 0 {
			send(cur)
		}
	}()
	return batches
}

var errStop = errors.New("stopped")

// readGroup reads the rows of one row group, handing each item (or the
// row's error) to emit; emit returning false stops the read (errStop).
func (in *Parquet) readGroup(g int, rg parquet.RowGroup, row *int64, r *pqRow, emit func(int64, wpcdb.Item, error) bool) error {
	chunks := rg.ColumnChunks()
	md := &in.pf.Metadata().RowGroups[g]
	open := func(col *pqColumn) *pqCursor {
		return &pqCursor{col: col, pages: chunks[col.leaf].Pages(), left: md.Columns[col.leaf].MetaData.NumValues, float: col == &in.points || col == in.weights}
	}
	pts := open(&in.points)
	defer pts.close()
	var ws, ids *pqCursor
	if in.weights != nil {
		ws = open(in.weights)
		defer ws.close()
	}
	if in.id != nil {
		ids = open(in.id)
		defer ids.close()
	}
	attrs := make([]*pqCursor, len(in.attrs))
	for k := range in.attrs {
		attrs[k] = open(&in.attrs[k])
		defer attrs[k].close()
	}
	ended := func(c *pqCursor, i int64) error {
		return fmt.Errorf("column %q ends at row %d of the group's %d: corrupt file", c.col.name, i, rg.NumRows())
	}
	for i := int64(0); i < rg.NumRows(); i++ {
		r.err = nil
		ok, err := in.readPoints(pts, r)
		if err != nil {
			return fmt.Errorf("column %q: %w", in.points.name, err)
		}
		if !ok {
			return ended(pts, i)
		}
		if ws != nil {
			if ok, err := in.readWeights(ws, r); err != nil {
				return fmt.Errorf("column %q: %w", ws.col.name, err)
			} else if !ok {
				return ended(ws, i)
			}
		}
		id := strconv.FormatInt(*row, 10)
		if ids != nil {
			if ok, err := readID(ids, &id, r); err != nil {
				return fmt.Errorf("column %q: %w", ids.col.name, err)
			} else if !ok {
				return ended(ids, i)
			}
		}
		var am map[string]any
		for _, a := range attrs {
			if ok, err := readAttr(a, &am, r); err != nil {
				return fmt.Errorf("column %q: %w", a.col.name, err)
			} else if !ok {
				return ended(a, i)
			}
		}
		it, err := in.item(r, id, am)
		if !emit(*row, it, err) {
			return errStop
		}
		*row++
	}
	for _, c := range append([]*pqCursor{pts, ws, ids}, attrs...) {
		if c == nil {
			continue
		}
		if more, err := c.ensure(); err != nil {
			return fmt.Errorf("column %q: %w", c.col.name, err)
		} else if more {
			return fmt.Errorf("column %q has values beyond the group's %d rows: corrupt file", c.col.name, rg.NumRows())
		}
	}
	return nil
}

// ImportParquet ingests the Parquet file path (opened with open) into c
// as ImportNPY does the NumPy files: the file is opened and checked
// before anything is written, then read a row group at a time while the
// previous batch is committed, and c is told the load is done.
func ImportParquet(ctx context.Context, c Importer, open Opener, path string, cols ParquetColumns, o ImportOptions) (_ Stats, err error) {
	defer func() { err = wpcerr.CutPaths(err, path) }() // a long path is not echoed whole
	if path == "" {
		return Stats{}, fmt.Errorf("%w: parquet: a file is required", wpcdb.ErrInvalidArgument)
	}
	cfg := c.Config()
	in, err := OpenParquet(open, path, cols, cfg.Dim, cfg.MaxPoints)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %w; nothing imported", wpcdb.ErrInvalidArgument, err)
	}
	defer in.Close()
	return importFrom(ctx, c, in, o)
}
