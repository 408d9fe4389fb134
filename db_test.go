package wpcdb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

var ctx = context.Background()

func openMem(t *testing.T, fs vfs.FS) *wpcdb.DB {
	t.Helper()
	db, err := wpcdb.Open("db", &wpcdb.Options{FS: fs, Logger: slog.New(failOnWarn{t})})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// failOnWarn fails the test on any warning the database logs (such as a
// saved index found unusable and rebuilt), which the tests never expect.
type failOnWarn struct{ t *testing.T }

func (h failOnWarn) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h failOnWarn) Handle(_ context.Context, r slog.Record) error {
	h.t.Errorf("database logged %s: %s", r.Level, r.Message)
	return nil
}
func (h failOnWarn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failOnWarn) WithGroup(string) slog.Handler      { return h }

func randomItems(seed uint64, n, m, d int, prefix string) []wpcdb.Item {
	rng := wpctest.NewRand(seed)
	items := make([]wpcdb.Item, n)
	colors := []string{"red", "green", "blue"}
	for i := range items {
		c := wpctest.RandomCloud(rng, 1+rng.IntN(m), d, wpctest.Shape{})
		items[i] = wpcdb.Item{
			ID:    fmt.Sprintf("%s%d", prefix, i),
			Cloud: wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: c.Points},
			Attrs: map[string]any{"color": colors[rng.IntN(3)], "year": float64(2000 + rng.IntN(30)), "even": i%2 == 0},
		}
	}
	return items
}

func TestCollectionLifecycle(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs)
	if _, err := db.CreateCollection(ctx, "a", wpcdb.CollectionConfig{}); !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), "dim must be positive") {
		t.Errorf("missing dim: %v", err)
	}
	if _, err := db.CreateCollection(ctx, "bad name", wpcdb.CollectionConfig{Dim: 2}); !errors.Is(err, wpcdb.ErrInvalidArgument) {
		t.Errorf("bad name: %v", err)
	}
	for _, tc := range []struct {
		ic   collconfig.Index
		want string
	}{
		{collconfig.Index{Kind: "btree"}, `index kind "btree": want auto, flat or hnsw`},
		{collconfig.Index{Kind: "auto", GraphAt: -1}, "index graph_at must not be negative, got -1"},
		{collconfig.Index{Kind: "hnsw", HNSWOptions: index.HNSWOptions{M: 1}}, "index m must be between 2 and 1024, got 1"},
	} {
		if _, err := db.CreateCollection(ctx, "i", wpcdb.CollectionConfig{Dim: 2, Index: tc.ic}); !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("index %+v: %v, want …%s…", tc.ic, err, tc.want)
		}
	}
	maxsim, _ := wpcsim.ParseKernel("maxsim")
	_, err := db.CreateCollection(ctx, "m", wpcdb.CollectionConfig{Dim: 2, Similarity: wpcsim.Config{Kernel: maxsim, Score: wpcsim.ScoreMMD}})
	if !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), "mmd is not defined for maxsim") {
		t.Errorf("maxsim mmd: %v", err)
	}
	k, _ := wpcsim.ParseKernel("imq(0.5)")
	cfg := wpcdb.CollectionConfig{Dim: 4, MaxPoints: 9, Encoding: wpcdb.EncodingF16, Similarity: wpcsim.Config{Kernel: k, Norm: wpcsim.NormSum, Score: wpcsim.ScoreCosine}}
	if _, err := db.CreateCollection(ctx, "imgs", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateCollection(ctx, "imgs", cfg); !errors.Is(err, wpcdb.ErrCollectionExists) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := db.CreateCollection(ctx, "other", wpcdb.CollectionConfig{Dim: 8}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openMem(t, fs)
	defer db.Close()
	list, err := db.ListCollections()
	if err != nil || len(list) != 2 || list[0].Name != "imgs" || list[1].Name != "other" {
		t.Fatalf("list: %+v %v", list, err)
	}
	got := list[0].Config
	if got.Dim != 4 || got.MaxPoints != 9 || got.Encoding != wpcdb.EncodingF16 || got.Similarity.Kernel.String() != "imq(0.5)" ||
		got.Similarity.Norm != wpcsim.NormSum || got.Similarity.Score != wpcsim.ScoreCosine || got.Features.Dim != collconfig.DefaultFeatureDim {
		t.Errorf("config not persisted: %+v", got)
	}
	if def := list[1].Config; def.MaxPoints != 1024 || def.Similarity.Kernel.String() != wpcsim.DefaultKernelSpec || def.Encoding != wpcdb.EncodingF32 {
		t.Errorf("defaults: %+v", def)
	}
	if err := db.DropCollection(ctx, "imgs"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Collection("imgs"); !errors.Is(err, wpcdb.ErrCollectionNotFound) {
		t.Errorf("dropped collection still there: %v", err)
	}
	if err := db.DropCollection(ctx, "imgs"); !errors.Is(err, wpcdb.ErrCollectionNotFound) {
		t.Errorf("second drop: %v", err)
	}
}

func TestUpsertGetDelete(t *testing.T) {
	const seed = 31
	t.Logf("seed %d", seed)
	for _, enc := range []collconfig.Encoding{wpcdb.EncodingF32, wpcdb.EncodingF16, wpcdb.EncodingBF16} {
		t.Run(enc.String(), func(t *testing.T) {
			fs := vfs.NewMem()
			db := openMem(t, fs)
			c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 16, MaxPoints: 12, Encoding: enc})
			if err != nil {
				t.Fatal(err)
			}
			items := randomItems(seed, 50, 12, 16, "id")
			if err := c.Upsert(ctx, items); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Delete(ctx, "id3", "id4", "nope", "id3"); err != nil || n != 2 {
				t.Fatalf("delete: %d %v", n, err)
			}
			db.Close()
			db = openMem(t, fs)
			defer db.Close()
			c, err = db.Collection("c")
			if err != nil {
				t.Fatal(err)
			}
			if c.Count() != 48 {
				t.Errorf("count %d, want 48", c.Count())
			}
			for i, want := range items {
				got, err := c.Get(ctx, want.ID)
				if i == 3 || i == 4 {
					if !errors.Is(err, wpcdb.ErrNotFound) {
						t.Errorf("deleted %s: %v", want.ID, err)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				checkStored(t, enc, want, got)
			}
		})
	}
}

// checkStored: f32 bit-exact, f16/bf16 within half an ulp of their precision.
func checkStored(t *testing.T, enc collconfig.Encoding, want, got wpcdb.Item) {
	t.Helper()
	if got.ID != want.ID || !reflect.DeepEqual(got.Attrs, want.Attrs) || got.Cloud.Dim != want.Cloud.Dim {
		t.Fatalf("%s: got %+v", want.ID, got)
	}
	if !reflect.DeepEqual(got.Cloud.Weights, want.Cloud.Weights) || len(got.Cloud.Points) != len(want.Cloud.Points) {
		t.Fatalf("%s: weights or shape differ", want.ID)
	}
	rel := map[collconfig.Encoding]float64{wpcdb.EncodingF32: 0, wpcdb.EncodingF16: 1.0 / 2048, wpcdb.EncodingBF16: 1.0 / 256}[enc]
	for k, x := range want.Cloud.Points {
		y := got.Cloud.Points[k]
		if enc == wpcdb.EncodingF32 && math.Float32bits(x) != math.Float32bits(y) {
			t.Fatalf("%s: f32 point value %d: %v != %v", want.ID, k, y, x)
		}
		if math.Abs(float64(x-y)) > rel*math.Abs(float64(x))+6e-8 {
			t.Fatalf("%s: %s value %d: %v vs %v", want.ID, enc, k, y, x)
		}
	}
}

func TestUpsertReplacesAndFilters(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs)
	defer func() { db.Close() }()
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8})
	items := randomItems(77, 40, 5, 8, "x")
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	// Replace some, change attributes, and repeat an ID in one batch: the
	// last one wins.
	repl := randomItems(78, 10, 5, 8, "x")
	repl[2].Attrs = map[string]any{"color": "purple"}
	repl = append(repl, wpcdb.Item{ID: "x5", Cloud: repl[5].Cloud, Attrs: map[string]any{"color": "gold", "year": 1999.0}})
	if err := c.Upsert(ctx, repl); err != nil {
		t.Fatal(err)
	}
	final := map[string]wpcdb.Item{}
	for _, it := range items {
		final[it.ID] = it
	}
	for _, it := range repl {
		final[it.ID] = it
	}
	if c.Count() != 40 {
		t.Fatalf("count %d", c.Count())
	}
	for id, want := range final {
		got, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		checkStored(t, wpcdb.EncodingF32, want, got)
	}
	checkBitmaps(t, db, "c", final)
	// Deleting keeps the bitmaps right, also after reopen (which rebuilds
	// them from the persisted postings).
	c.Delete(ctx, "x0", "x5")
	delete(final, "x0")
	delete(final, "x5")
	checkBitmaps(t, db, "c", final)
	db.Close()
	db = openMem(t, fs)
	checkBitmaps(t, db, "c", final)
}

// checkBitmaps compares storage's attribute bitmaps with a brute-force scan.
func checkBitmaps(t *testing.T, db *wpcdb.DB, name string, final map[string]wpcdb.Item) {
	t.Helper()
	sc := wpcdb.StorageForTest(db, name)
	iidOf := func(id string) uint32 {
		it, err := sc.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		return it.IID
	}
	want := func(pred func(map[string]any) bool) *roaring.Bitmap {
		bm := roaring.New()
		for id, it := range final {
			if pred(it.Attrs) {
				bm.Add(iidOf(id))
			}
		}
		return bm
	}
	for _, color := range []string{"red", "green", "blue", "purple", "gold"} {
		if got, w := sc.Equal("color", color), want(func(a map[string]any) bool { return a["color"] == color }); !got.Equals(w) {
			t.Errorf("color=%s: got %v want %v", color, got.ToArray(), w.ToArray())
		}
	}
	if got, w := sc.Equal("even", true), want(func(a map[string]any) bool { return a["even"] == true }); !got.Equals(w) {
		t.Errorf("even=true: got %v want %v", got.ToArray(), w.ToArray())
	}
	for _, r := range []struct {
		lo, hi         float64
		loOpen, hiOpen bool
	}{{2010, 2020, false, true}, {2010, 2020, true, false}, {math.Inf(-1), 2005, false, false}, {2029, math.Inf(1), false, false}, {1999, 1999, false, false}, {2020, 2010, false, false}} {
		w := want(func(a map[string]any) bool {
			y, ok := a["year"].(float64)
			return ok && (y > r.lo || !r.loOpen && y == r.lo) && (y < r.hi || !r.hiOpen && y == r.hi)
		})
		if got := sc.Range("year", r.lo, r.hi, r.loOpen, r.hiOpen); !got.Equals(w) {
			t.Errorf("year in %+v: got %v want %v", r, got.ToArray(), w.ToArray())
		}
	}
	for _, name := range []string{"color", "year", "even", "none"} {
		if got, w := sc.Has(name), want(func(a map[string]any) bool { _, ok := a[name]; return ok }); !got.Equals(w) {
			t.Errorf("has %s: got %v want %v", name, got.ToArray(), w.ToArray())
		}
	}
	live := roaring.New()
	for id := range final {
		live.Add(iidOf(id))
	}
	if !sc.Live().Equals(live) {
		t.Errorf("live bitmap %v, want %v", sc.Live().ToArray(), live.ToArray())
	}
}

func TestRefusedBatchWritesNothing(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 4, MaxPoints: 3, Encoding: wpcdb.EncodingF16})
	good := randomItems(5, 5, 3, 4, "g")
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name string
		bad  wpcdb.Item
		want string
	}{
		{"nan", wpcdb.Item{ID: "b", Cloud: wpcsim.Cloud{Dim: 4, Weights: []float32{1}, Points: []float32{1, nan, 0, 0}}}, `item 5 (id "b"): points[0][1]: value is NaN`},
		{"dim", wpcdb.Item{ID: "b", Cloud: wpcsim.Cloud{Dim: 3, Weights: []float32{1}, Points: []float32{1, 0, 0}}}, "points: dimension 3 does not match the required 4"},
		{"too many", wpcdb.Item{ID: "b", Cloud: wpcsim.Cloud{Dim: 4, Weights: []float32{1, 1, 1, 1}, Points: make([]float32, 16)}}, "4 points exceeds the maximum of 3"},
		{"empty", wpcdb.Item{ID: "b", Cloud: wpcsim.Cloud{Dim: 4}}, "no points"},
		{"no id", wpcdb.Item{Cloud: good[0].Cloud}, "id: must not be empty"},
		{"attr", wpcdb.Item{ID: "b", Cloud: good[0].Cloud, Attrs: map[string]any{"k": []int{1}}}, "attrs.k: value must be a string, number, boolean, null or a list of those, got []int (a list is a []any)"},
		{"f16 overflow", wpcdb.Item{ID: "b", Cloud: wpcsim.Cloud{Dim: 4, Weights: []float32{1}, Points: []float32{1, 1e6, 0, 0}}}, "points[0][1]: value 1e+06 overflows the collection's f16 encoding"},
		{"f16 zero", wpcdb.Item{ID: "b", Cloud: wpcsim.Cloud{Dim: 4, Weights: []float32{1}, Points: []float32{1e-9, 0, 0, 0}}}, "after f16 encoding: points[0]: zero vector"},
	} {
		err := c.Upsert(ctx, append(append([]wpcdb.Item{}, good...), tc.bad))
		if !errors.Is(err, wpcdb.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want …%s…", tc.name, err, tc.want)
		}
		if c.Count() != 0 {
			t.Fatalf("%s: a refused batch wrote %d items", tc.name, c.Count())
		}
		if _, err := c.Get(ctx, "g0"); !errors.Is(err, wpcdb.ErrNotFound) {
			t.Fatalf("%s: item of a refused batch is visible", tc.name)
		}
	}
}

func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	db, err := wpcdb.Open(filepath.Join(dir, "live"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 6})
	items := randomItems(9, 20, 4, 6, "s")
	c.Upsert(ctx, items)
	if err := db.Snapshot(filepath.Join(dir, "snap")); err != nil {
		t.Fatal(err)
	}
	c.Delete(ctx, "s1") // after the snapshot: not in it
	db.Close()
	snap, err := wpcdb.Open(filepath.Join(dir, "snap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	sc, err := snap.Collection("c")
	if err != nil || sc.Count() != 20 {
		t.Fatalf("snapshot: %v count %d", err, sc.Count())
	}
	got, err := sc.Get(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	checkStored(t, wpcdb.EncodingF32, items[1], got)
}

func TestConcurrentUpserts(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 4})
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		go func() {
			// Overlapping IDs across writers: each ID ends up once.
			errs <- c.Upsert(ctx, randomItems(uint64(w), 30, 3, 4, "k"))
		}()
	}
	for w := 0; w < 8; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if c.Count() != 30 {
		t.Errorf("count %d, want 30", c.Count())
	}
}
