package ingest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// pqRow is the documented nested schema: list<list<float>> points.
type pqRow struct {
	ID      string      `parquet:"id"`
	Points  [][]float32 `parquet:"points,list"`
	Weights []float32   `parquet:"weights,list,optional"`
	Color   *string     `parquet:"color,optional"`
	Year    int64       `parquet:"year"`
	Score   *float64    `parquet:"score,optional"`
	Tags    []string    `parquet:"tags,list"`
}

// pqFlat is the flat schema: an integer id and M·d doubles.
type pqFlat struct {
	ID     int64     `parquet:"id"`
	Points []float64 `parquet:"points"`
}

func writePQ[T any](t *testing.T, path string, rows []T, opts ...parquet.WriterOption) {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openColl(t *testing.T, names ...string) []*wpcdb.Collection {
	t.Helper()
	db, err := wpcdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var cs []*wpcdb.Collection
	for _, n := range names {
		c, err := db.CreateCollection(context.Background(), n, wpcdb.CollectionConfig{Dim: 4, MaxPoints: 8})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// genRows makes n items of 1..5 points of dimension 4 from seed.
func genRows(seed uint64, n int) []pqRow {
	rng := rand.New(rand.NewPCG(seed, 1))
	colors := []string{"red", "green", "blue"}
	rows := make([]pqRow, n)
	for i := range rows {
		m := 1 + rng.IntN(5)
		r := pqRow{ID: fmt.Sprintf("item-%d", i), Year: int64(1990 + rng.IntN(40)), Tags: []string{colors[i%3], "t"}}
		for range m {
			p := make([]float32, 4)
			for k := range p {
				p[k] = float32(rng.NormFloat64())
			}
			r.Points = append(r.Points, p)
			r.Weights = append(r.Weights, float32(0.1+rng.Float64()))
		}
		if i%4 != 0 {
			c := colors[rng.IntN(3)]
			r.Color = &c
		}
		if i%3 == 0 {
			s := rng.Float64()
			r.Score = &s
		}
		rows[i] = r
	}
	return rows
}

// writeNPYInput writes rows as the NumPy input of the same items: points
// padded to M, lengths, weights, ids and attrs as JSONL.
func writeNPYInput(t *testing.T, dir string, rows []pqRow) ingest.NPYFiles {
	const m, d = 5, 4
	n := len(rows)
	pts := make([]float32, n*m*d)
	ws := make([]float32, n*m)
	var lens bytes.Buffer
	npy.WriteHeader(&lens, "<i8", []int{n})
	var ids, attrs strings.Builder
	for i, r := range rows {
		for j, p := range r.Points {
			copy(pts[(i*m+j)*d:], p)
			ws[i*m+j] = r.Weights[j]
		}
		binary.Write(&lens, binary.LittleEndian, int64(len(r.Points)))
		ids.WriteString(r.ID + "\n")
		a := map[string]any{"year": r.Year, "tags": r.Tags}
		if r.Color != nil {
			a["color"] = *r.Color
		}
		if r.Score != nil {
			a["score"] = *r.Score
		}
		b, _ := json.Marshal(a)
		attrs.Write(append(b, '\n'))
	}
	f := ingest.NPYFiles{Points: filepath.Join(dir, "P.npy"), Weights: filepath.Join(dir, "W.npy"), Lengths: filepath.Join(dir, "L.npy"), IDs: filepath.Join(dir, "ids.txt"), Attrs: filepath.Join(dir, "attrs.jsonl")}
	var b bytes.Buffer
	npy.WriteFloat32(&b, []int{n, m, d}, pts)
	os.WriteFile(f.Points, b.Bytes(), 0o644)
	b.Reset()
	npy.WriteFloat32(&b, []int{n, m}, ws)
	os.WriteFile(f.Weights, b.Bytes(), 0o644)
	os.WriteFile(f.Lengths, lens.Bytes(), 0o644)
	os.WriteFile(f.IDs, []byte(ids.String()), 0o644)
	os.WriteFile(f.Attrs, []byte(attrs.String()), 0o644)
	return f
}

// TestParquetRoundTrip: a Parquet file (several row groups and pages)
// imports the same items as the NumPy files of the same data: the same
// IDs, clouds and attributes, and the same exact scores in search; the
// oracle is the NumPy path, itself tested against its arrays.
func TestParquetRoundTrip(t *testing.T) {
	const seed = 17
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(seed, 57)
	// Plain float pages (read from their arrays) and dictionary-encoded
	// ones in v1 pages (read as parquet.Values) import the same items.
	variants := [][]parquet.WriterOption{
		{parquet.MaxRowsPerRowGroup(10), parquet.PageBufferSize(256)},
		{parquet.MaxRowsPerRowGroup(20), parquet.PageBufferSize(512), parquet.DataPageVersion(1), parquet.Compression(&parquet.Snappy), parquet.DefaultEncodingFor(parquet.Float, &parquet.RLEDictionary)},
	}
	cs := openColl(t, "np", "pq0", "pq1")
	if _, err := ingest.ImportNPY(ctx, cs[0], os.Open, writeNPYInput(t, dir, rows), ingest.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	for v, opts := range variants {
		writePQ(t, filepath.Join(dir, "in.parquet"), rows, opts...)
		var progress []ingest.Progress
		st, err := ingest.ImportParquet(ctx, cs[1+v], os.Open, filepath.Join(dir, "in.parquet"), ingest.ParquetColumns{}, ingest.ImportOptions{Batch: 7, Progress: func(p ingest.Progress) { progress = append(progress, p) }})
		if err != nil {
			t.Fatal(err)
		}
		if st.Committed != 57 || len(progress) != 9 || progress[0].Rows != 57 || progress[0].Committed != 7 {
			t.Fatalf("variant %d: stats %+v, progress %+v; want 57 committed in 9 batches of at most 7", v, st, progress)
		}
	}
	for i, r := range rows {
		b, err := cs[0].Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for v := range variants {
			a, err := cs[1+v].Get(ctx, r.ID)
			if err != nil {
				t.Fatalf("variant %d row %d: %v", v, i, err)
			}
			if fmt.Sprint(a.Attrs["tags"]) != fmt.Sprint(r.Tags) {
				t.Fatalf("row %d: tags %v, want %v", i, a.Attrs["tags"], r.Tags)
			}
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("seed %d variant %d row %d: parquet %+v, npy %+v", seed, v, i, a, b)
			}
			if len(a.Cloud.Weights) != len(r.Points) || a.Attrs["year"] != float64(r.Year) || (r.Color == nil) != (a.Attrs["color"] == nil) {
				t.Fatalf("row %d: %+v from %+v", i, a, r)
			}
		}
	}
	for q := range 5 {
		query := wpcsim.Cloud{Dim: 4, Points: append([]float32(nil), rows[q*11].Points[0]...), Weights: []float32{1}}
		b, err := cs[0].Search(ctx, query, wpcdb.SearchOptions{K: 10, Exact: true})
		if err != nil {
			t.Fatal(err)
		}
		for v := range variants {
			a, err := cs[1+v].Search(ctx, query, wpcdb.SearchOptions{K: 10, Exact: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Hits) != 10 || !reflect.DeepEqual(a.Hits, b.Hits) {
				t.Fatalf("variant %d query %d: parquet %v, npy %v", v, q, a.Hits, b.Hits)
			}
		}
	}
}

// TestParquetFlat: a flat list of M·d doubles and an integer id column.
func TestParquetFlat(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := []pqFlat{{ID: 7, Points: []float64{1, 2, 3, 4}}, {ID: -3, Points: []float64{1, 0, 0, 0, 0, 1, 0, 0}}}
	writePQ(t, filepath.Join(dir, "f.parquet"), rows)
	c := openColl(t, "c")[0]
	if _, err := ingest.ImportParquet(ctx, c, os.Open, filepath.Join(dir, "f.parquet"), ingest.ParquetColumns{}, ingest.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(ctx, "-3")
	if err != nil || fmt.Sprint(it.Cloud.Points) != "[1 0 0 0 0 1 0 0]" || fmt.Sprint(it.Cloud.Weights) != "[1 1]" {
		t.Fatalf("%+v %v", it, err)
	}
}

// TestParquetBadFiles: files of the wrong shape are refused when opened,
// naming the column, and nothing is written; bad rows are refused naming
// the row and the field, their batch is not written, and --skip-invalid
// skips exactly them.
func TestParquetBadFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := func(name string) string { return filepath.Join(dir, name) }
	type strPoints struct {
		Points []string `parquet:"points,list"`
	}
	type dblID struct {
		ID     float64   `parquet:"id"`
		Points []float32 `parquet:"points,list"`
	}
	type noPoints struct {
		Vec []float32 `parquet:"vec,list"`
	}
	type structAttr struct {
		Points []float32 `parquet:"points,list"`
		Meta   struct {
			A, B int32
		} `parquet:"meta"`
	}
	writePQ(t, path("str.parquet"), []strPoints{{Points: []string{"a"}}})
	writePQ(t, path("dblid.parquet"), []dblID{{ID: 1, Points: []float32{1, 2, 3, 4}}})
	writePQ(t, path("nopoints.parquet"), []noPoints{{Vec: []float32{1, 2, 3, 4}}})
	writePQ(t, path("struct.parquet"), []structAttr{{Points: []float32{1, 2, 3, 4}}})
	os.WriteFile(path("text.parquet"), []byte("id,points\n1,2\n"), 0o644)
	c := openColl(t, "c")[0]
	for _, tc := range []struct{ file, want string }{
		{"str.parquet", `column "points" (points) is a list<string>`},
		{"dblid.parquet", `column "id" (id) is a double`},
		{"nopoints.parquet", `no column "points"`},
		{"struct.parquet", `column "meta" is a group of 2 fields`},
		{"text.parquet", "not a parquet file"},
		{"missing.parquet", "no such file"},
	} {
		_, err := ingest.ImportParquet(ctx, c, os.Open, path(tc.file), ingest.ParquetColumns{}, ingest.ImportOptions{})
		if !errors.Is(err, wpcdb.ErrInvalidArgument) && tc.file != "missing.parquet" || err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s: %v, want an invalid argument naming the file and %q", tc.file, err, tc.want)
		}
	}
	if _, err := ingest.ImportParquet(ctx, c, os.Open, path("nopoints.parquet"), ingest.ParquetColumns{Points: "vec", Weights: "vec"}, ingest.ImportOptions{}); err == nil || !strings.Contains(err.Error(), "must differ") {
		t.Errorf("points and weights from one column: %v", err)
	}
	// A column named by ParquetColumns.
	if _, err := ingest.ImportParquet(ctx, c, os.Open, path("nopoints.parquet"), ingest.ParquetColumns{Points: "vec"}, ingest.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "0"); err != nil {
		t.Fatal(err)
	}

	rows := genRows(3, 30)
	bad := map[int]string{}
	rows[5].Points[0][2] = float32(math.NaN())
	bad[5] = "points"
	rows[12].Points[0] = rows[12].Points[0][:3]
	bad[12] = "points[0]: 3 coordinates, want 4"
	rows[17].Weights = rows[17].Weights[:len(rows[17].Weights)-1]
	if len(rows[17].Weights) == 0 {
		rows[17].Weights = []float32{1, 1, 1, 1, 1, 1, 1}
	}
	bad[17] = "weights"
	for range 9 { // more than MaxPoints (8)
		rows[23].Points = append(rows[23].Points, []float32{1, 2, 3, 4})
		rows[23].Weights = append(rows[23].Weights, 1)
	}
	bad[23] = "more than 8 points"
	writePQ(t, path("bad.parquet"), rows, parquet.MaxRowsPerRowGroup(8))
	for row := range 30 {
		want, isBad := bad[row]
		if !isBad {
			continue
		}
		// Only this row bad: the batches before it are committed, its own
		// is refused whole.
		one := genRows(3, 30)
		one[row] = rows[row]
		writePQ(t, path("one.parquet"), one, parquet.MaxRowsPerRowGroup(8))
		c := openColl(t, "c")[0]
		st, err := ingest.ImportParquet(ctx, c, os.Open, path("one.parquet"), ingest.ParquetColumns{}, ingest.ImportOptions{Batch: 5})
		if !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), fmt.Sprintf("row %d", row)) || !strings.Contains(err.Error(), want) {
			t.Errorf("row %d: %v, want an invalid argument naming row %d and %q", row, err, row, want)
		}
		if committed := row / 5 * 5; st.Committed != committed || c.Count() != committed {
			t.Errorf("row %d: %d committed, %d visible; want the %d rows of the batches before it", row, st.Committed, c.Count(), committed)
		}
		for i := row / 5 * 5; i < 30; i++ {
			if _, err := c.Get(ctx, one[i].ID); err == nil {
				t.Errorf("row %d refused: row %d of a later or refused batch is visible", row, i)
			}
		}
	}
	c2 := openColl(t, "c")[0]
	var logged []string
	st, err := ingest.ImportParquet(ctx, c2, os.Open, path("bad.parquet"), ingest.ParquetColumns{}, ingest.ImportOptions{Batch: 5, SkipInvalid: true, Log: func(m string) { logged = append(logged, m) }})
	if err != nil || st.Committed != 26 || st.Skipped != 4 || len(logged) != 4 {
		t.Fatalf("skip invalid: %+v %v %q", st, err, logged)
	}
	for _, r := range []int{5, 12, 17, 23} {
		if _, err := c2.Get(ctx, rows[r].ID); err == nil {
			t.Errorf("skipped row %d is visible", r)
		}
	}
}

// TestParquetCorrupt: damaged bytes anywhere in a file are an error or
// (where they land in values) different values, never a panic or a huge
// allocation; a truncated file and lying footers are refused when opened.
func TestParquetCorrupt(t *testing.T) {
	const seed = 5
	ctx := context.Background()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.parquet")
	writePQ(t, good, genRows(seed, 40), parquet.MaxRowsPerRowGroup(16), parquet.Compression(&parquet.Snappy))
	orig, _ := os.ReadFile(good)
	bad := filepath.Join(dir, "bad.parquet")
	c := openColl(t, "c")[0]
	try := func(b []byte) error {
		os.WriteFile(bad, b, 0o644)
		_, err := ingest.ImportParquet(ctx, c, os.Open, bad, ingest.ParquetColumns{}, ingest.ImportOptions{SkipInvalid: true})
		return err
	}
	if err := try(orig[:len(orig)-100]); err == nil {
		t.Error("truncated file imported")
	}
	// The footer's length, and a list length in it, claiming gigabytes.
	b := bytes.Clone(orig)
	binary.LittleEndian.PutUint32(b[len(b)-8:], 1<<31)
	if err := try(b); err == nil || !strings.Contains(err.Error(), "footer") {
		t.Errorf("huge footer length: %v", err)
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	errs := 0
	for range 150 {
		b := bytes.Clone(orig)
		for range 1 + rng.IntN(4) {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		if try(b) != nil {
			errs++
		}
	}
	t.Logf("seed %d: %d of 150 damaged files refused", seed, errs)
	if errs == 0 {
		t.Error("no damaged file refused")
	}
}

// TestParquetCutShort: an import stopped between batches (its context
// cancelled) leaves whole batches only. Commit pipelines its batches (up
// to StageAhead are staged while one syncs), so the batches staged when
// the context is cancelled at 12 acknowledged items may still be
// committed: 12 and up to StageAhead batches of 6 more, and the count says
// how many.
func TestParquetCutShort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	rows := genRows(9, 6*(4+ingest.StageAhead)) // more than the cut can commit
	writePQ(t, filepath.Join(dir, "in.parquet"), rows)
	c := openColl(t, "c")[0]
	st, err := ingest.ImportParquet(ctx, c, os.Open, filepath.Join(dir, "in.parquet"), ingest.ParquetColumns{}, ingest.ImportOptions{Batch: 6, Progress: func(p ingest.Progress) {
		if p.Committed >= 12 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || st.Committed < 12 || st.Committed > 12+6*ingest.StageAhead || st.Committed%6 != 0 || c.Count() != st.Committed {
		t.Fatalf("%+v %v, %d visible; want whole batches of 6, 12 to %d committed and as many visible", st, err, c.Count(), 12+6*ingest.StageAhead)
	}
	for i, r := range rows {
		if _, err := c.Get(context.Background(), r.ID); (err == nil) != (i < st.Committed) {
			t.Errorf("row %d: %v", i, err)
		}
	}
}
