package wpcdb_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/storage"
)

// TestIndexLoadedOnFirstSearch: reopening a collection and reading it
// (list, describe, get), writing and deleting do not load the first-stage
// index; the first search does, once, and sees those writes and deletes
// (replayed from the change log); an exact search does not need it.
func TestIndexLoadedOnFirstSearch(t *testing.T) {
	const seed = 77
	t.Logf("seed %d", seed)
	fs := vfs.NewMem()
	db := openMem(t, fs)
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Features: collconfig.Features{Dim: 64}})
	items := randomItems(seed, 400, 5, 8, "a")
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openMem(t, fs)
	defer db.Close()
	c, err := db.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ListCollections(); err != nil {
		t.Fatal(err)
	}
	if st := c.Describe().Index; st.Loaded || st.Kind != "flat" || st.Buffered != 400 {
		t.Fatalf("describe before a search: %+v, want the saved flat index of 400 not loaded", st)
	}
	if _, err := c.Get(ctx, "a7"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Delete(ctx, "a3"); n != 1 || err != nil {
		t.Fatalf("delete: %d, %v", n, err)
	}
	z := randomItems(seed+1, 1, 5, 8, "z")
	if err := c.Upsert(ctx, z); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, items[3].Cloud, wpcdb.SearchOptions{K: 5, Exact: true}); err != nil {
		t.Fatal(err)
	}
	if loads, loaded := wpcdb.IndexLoadsForTest(c); loads != 0 || loaded {
		t.Fatalf("index loaded %d times (loaded %t) before any indexed search", loads, loaded)
	}

	var wg sync.WaitGroup
	results := make([]wpcdb.SearchResult, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := items[3].Cloud
			if i%2 == 1 {
				q = z[0].Cloud
			}
			res, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	if loads, loaded := wpcdb.IndexLoadsForTest(c); loads != 1 || !loaded {
		t.Fatalf("index loaded %d times (loaded %t) after concurrent searches, want once", loads, loaded)
	}
	for i, res := range results {
		if res.Stats.Plan != "index" {
			t.Fatalf("search %d ran plan %q, want index", i, res.Stats.Plan)
		}
		for _, h := range res.Hits {
			if h.ID == "a3" {
				t.Fatalf("search %d found the deleted a3", i)
			}
		}
		if i%2 == 1 && (len(res.Hits) == 0 || res.Hits[0].ID != "z0") {
			t.Fatalf("search %d for z0's own cloud: %v", i, res.Hits)
		}
	}
	if st := c.Describe().Index; !st.Loaded || st.Buffered != 400 {
		t.Fatalf("describe after a search: %+v", st)
	}
}

// logBuffer collects what the database logs at warning level and above.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Enabled(_ context.Context, lv slog.Level) bool { return lv >= slog.LevelWarn }
func (l *logBuffer) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.WriteString(r.Message + "\n")
	return nil
}
func (l *logBuffer) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logBuffer) WithGroup(string) slog.Handler      { return l }
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// rawPebble opens the closed database's Pebble store directly.
func rawPebble(t *testing.T, fs vfs.FS) *pebble.DB {
	t.Helper()
	p, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)           {}
func (quietPebble) Errorf(string, ...any)          {}
func (quietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

// savedIndexPages returns the keys of the saved-index pages (sub-tag 0x0c
// of a collection) and the largest value of the store.
func savedIndexPages(t *testing.T, p *pebble.DB) (pages [][]byte, largest int) {
	t.Helper()
	it, err := p.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) > 5 && k[0] == 0x10 && k[5] == 0x0c {
			pages = append(pages, bytes.Clone(k))
		}
		largest = max(largest, len(it.Value()))
	}
	return pages, largest
}

// flatThousand opens an in-memory database holding collection c (d = 8,
// a flat index) of 1,000 random items drawn from seed.
func flatThousand(t *testing.T, seed uint64) (vfs.FS, *wpcdb.DB, *wpcdb.Collection) {
	t.Helper()
	t.Logf("seed %d", seed)
	fs := vfs.NewMem()
	db := openMem(t, fs)
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Index: collconfig.Index{Kind: collconfig.IndexFlat}})
	if err := c.Upsert(ctx, randomItems(seed, 1000, 5, 8, "a")); err != nil {
		t.Fatal(err)
	}
	return fs, db, c
}

// searchAll runs the same searches on a reopened database.
func searchAll(t *testing.T, db *wpcdb.DB, queries []wpcdb.Item) [][]wpcdb.Hit {
	t.Helper()
	c, err := db.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]wpcdb.Hit
	for _, q := range queries {
		res, err := c.Search(ctx, q.Cloud, wpcdb.SearchOptions{K: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Stats.Plan != "index" {
			t.Fatalf("plan %q, want index", res.Stats.Plan)
		}
		out = append(out, res.Hits)
	}
	return out
}

// TestSavedIndexPagedAndRebuiltWhenDamaged: a saved index of 1,000 items
// (a 4 MB flat blob) is stored in pages, no Pebble value over 1 MiB; one
// flipped byte in any page makes the next load log a warning and rebuild
// the index from the items, with the same answers, and the database opens
// and serves as before.
func TestSavedIndexPagedAndRebuiltWhenDamaged(t *testing.T) {
	const seed = 404
	fs, db, c := flatThousand(t, seed)
	// A new collection's first stage is built when first needed, here.
	if err := c.WaitIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	p := rawPebble(t, fs)
	pages, largest := savedIndexPages(t, p)
	if largest > 1<<20 || len(pages) < 10 {
		t.Fatalf("%d saved-index pages, largest value %d bytes; want ≥ 10 pages and no value over 1 MiB", len(pages), largest)
	}
	p.Close()
	queries := randomItems(seed+1, 5, 5, 8, "q")
	db = openMem(t, fs)
	want := searchAll(t, db, queries)
	db.Close()
	// Searches change nothing: Close does not rewrite the saved index.
	p = rawPebble(t, fs)
	if again, _ := savedIndexPages(t, p); !reflect.DeepEqual(again, pages) {
		t.Fatal("a session of searches saved the index again")
	}
	p.Close()

	for _, where := range []string{"first", "middle", "last"} {
		p := rawPebble(t, fs)
		pages, _ := savedIndexPages(t, p) // each rebuild saves new pages
		i := map[string]int{"first": 0, "middle": len(pages) / 2, "last": len(pages) - 1}[where]
		v, closer, err := p.Get(pages[i])
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(v)
		closer.Close()
		bad[len(bad)/3] ^= 0x08
		p.Set(pages[i], bad, pebble.Sync)
		p.Close()

		var logs logBuffer
		db, err := wpcdb.Open("db", &wpcdb.Options{FS: fs, Logger: slog.New(&logs)})
		if err != nil {
			t.Fatalf("page %d damaged: open: %v", i, err)
		}
		if got := searchAll(t, db, queries); !reflect.DeepEqual(got, want) {
			t.Fatalf("page %d damaged: answers differ from the undamaged index's", i)
		}
		if !strings.Contains(logs.String(), "rebuilding it from the items") {
			t.Fatalf("page %d damaged: no warning logged (%q)", i, logs.String())
		}
		if err := db.Close(); err != nil { // saves the rebuilt index
			t.Fatal(err)
		}
	}
}

// TestFormat1SavedIndexMigrated: a database of format 1, whose saved
// index is one Pebble value per blob (with a version 3 tiered header),
// opens; its saved index is rewritten in pages and loads without a
// rebuild, keeping its representation, with the same answers.
func TestFormat1SavedIndexMigrated(t *testing.T) {
	const seed = 505
	t.Logf("seed %d", seed)
	fs := vfs.NewMem()
	db := openMem(t, fs)
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Features: collconfig.Features{Dim: 64}})
	if err := c.Upsert(ctx, randomItems(seed, 500, 5, 8, "a")); err != nil {
		t.Fatal(err)
	}
	queries := randomItems(seed+1, 5, 5, 8, "q")
	want := searchAll(t, db, queries)
	rep := c.IndexStatus().Representation
	db.Close()

	// Read the saved blobs, then turn the store into format 1: version 1,
	// the catalog record of format 1, and the blobs as format 1 stored
	// them instead of the pages.
	st, err := storage.Open("db", &storage.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := st.Collection("c")
	saved, err := sc.OpenSavedIndex()
	if err != nil || saved == nil {
		t.Fatalf("saved index: %v", err)
	}
	blobs := map[string][]byte{}
	for _, n := range saved.Blobs() {
		blobs[n], _ = saved.GetBlob(n)
	}
	epoch := saved.Epoch
	saved.Close()
	st.Close()
	blobs["tiered"] = append([]byte{'T', 3}, blobs["tiered"][2:16]...)

	p := rawPebble(t, fs)
	p.Set([]byte("\x00version"), []byte{0, 0, 0, 1}, nil)
	it, _ := p.NewIter(&pebble.IterOptions{LowerBound: []byte{1}, UpperBound: []byte{2}})
	for it.First(); it.Valid(); it.Next() {
		p.Set(bytes.Clone(it.Key()), bytes.Replace(it.Value(), []byte(`"format":2`), []byte(`"format":1`), 1), nil)
	}
	it.Close()
	cid := []byte{0x10, 0, 0, 0, 1}
	p.DeleteRange(append(bytes.Clone(cid), 0x0b), append(bytes.Clone(cid), 0x0d), nil)
	for n, b := range blobs {
		p.Set(append(append(bytes.Clone(cid), 0x09), n...), b, nil)
	}
	p.Set(append(bytes.Clone(cid), 0x0a), binary.BigEndian.AppendUint64(nil, epoch), pebble.Sync)
	p.Close()

	var logs logBuffer
	db, err = wpcdb.Open("db", &wpcdb.Options{FS: fs, Logger: slog.New(&logs)})
	if err != nil {
		t.Fatalf("open of a format 1 database: %v", err)
	}
	defer db.Close()
	if !strings.Contains(logs.String(), "format 1 to 2") {
		t.Fatalf("no warning about the upgrade (%q)", logs.String())
	}
	if got := searchAll(t, db, queries); !reflect.DeepEqual(got, want) {
		t.Fatal("answers differ after the upgrade")
	}
	if strings.Contains(logs.String(), "rebuilding") {
		t.Fatalf("the upgraded index was rebuilt, not loaded: %q", logs.String())
	}
	c, _ = db.Collection("c")
	if got := c.IndexStatus().Representation; got != rep {
		t.Fatalf("representation %q after the upgrade, was %q", got, rep)
	}
}

// TestIndexLoadRacesWrites: writes and deletes running while the first
// search loads the index all end up in it (each is either in the change
// log the load replays or applied to the loaded index), and after a drop
// or a close a search fails instead of loading.
func TestIndexLoadRacesWrites(t *testing.T) {
	const seed = 606
	t.Logf("seed %d", seed)
	fs := vfs.NewMem()
	db := openMem(t, fs)
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 8, Features: collconfig.Features{Dim: 32}})
	c.Upsert(ctx, randomItems(seed, 300, 5, 8, "a"))
	db.Close()

	db = openMem(t, fs)
	c, _ = db.Collection("c")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			if err := c.Upsert(ctx, randomItems(seed+uint64(i)+1, 5, 5, 8, fmt.Sprintf("w%d-", i))); err != nil {
				t.Error(err)
			}
			if _, err := c.Delete(ctx, fmt.Sprintf("a%d", i)); err != nil {
				t.Error(err)
			}
		}
	}()
	q := randomItems(seed, 1, 5, 8, "q")[0].Cloud
	for range 5 {
		if _, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	loaded, fresh, _ := wpcdb.FirstStageForTest(c)
	if !loaded.IDs().Equals(fresh.IDs()) || loaded.Len() != 300+100-20 {
		t.Fatalf("loaded index holds %d vectors, the items %d", loaded.Len(), fresh.Len())
	}

	d, _ := db.CreateCollection(ctx, "d", wpcdb.CollectionConfig{Dim: 8})
	d.Upsert(ctx, randomItems(seed, 300, 5, 8, "a"))
	if err := db.DropCollection(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Search(ctx, q, wpcdb.SearchOptions{K: 5}); err == nil {
		t.Fatal("search of a dropped collection succeeded")
	}
	db.Close()
	db = openMem(t, fs)
	c, _ = db.Collection("c")
	db.Close()
	if _, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5}); !errors.Is(err, wpcdb.ErrClosed) {
		t.Fatalf("search after close: %v, want ErrClosed", err)
	}
	if loads, _ := wpcdb.IndexLoadsForTest(c); loads != 0 {
		t.Fatalf("index loaded %d times after close", loads)
	}
}

// TestRebuiltIndexKeepsCalibration: a calibrated collection whose saved
// index is damaged in an index page (not its representation's) is rebuilt
// with the calibrated representation, not the default one, and answers
// as before (seed 405).
func TestRebuiltIndexKeepsCalibration(t *testing.T) {
	const seed = 405
	fs, db, c := flatThousand(t, seed)
	cal, err := c.Calibrate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	chosen := c.IndexStatus().Representation
	if chosen == "" || chosen == "phi" {
		t.Fatalf("calibration chose %q (%+v): the test needs a representation other than the default", chosen, cal.Measured)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	queries := randomItems(seed+1, 5, 5, 8, "q")
	db = openMem(t, fs)
	want := searchAll(t, db, queries)
	db.Close()

	// The largest page is the index's (the representation is a few bytes).
	p := rawPebble(t, fs)
	pages, _ := savedIndexPages(t, p)
	var page, v []byte
	for _, k := range pages {
		b, closer, err := p.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > len(v) {
			page, v = k, bytes.Clone(b)
		}
		closer.Close()
	}
	v[len(v)/2] ^= 0x10
	p.Set(page, v, pebble.Sync)
	p.Close()

	var logs logBuffer
	db, err = wpcdb.Open("db", &wpcdb.Options{FS: fs, Logger: slog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := searchAll(t, db, queries); !reflect.DeepEqual(got, want) {
		t.Fatal("rebuilt: answers differ from the undamaged index's")
	}
	if !strings.Contains(logs.String(), "rebuilding it from the items") {
		t.Fatalf("no rebuild warning (%q): the damage was not seen", logs.String())
	}
	c, _ = db.Collection("c")
	if got := c.IndexStatus().Representation; got != chosen {
		t.Fatalf("rebuilt with %q, calibrated %q", got, chosen)
	}
}
