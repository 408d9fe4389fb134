package wpcdb_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestSearchPage checks k = 0 (10 hits), offset paging against the
// unpaged answer, and hits carrying their attributes.
func TestSearchPage(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 4})
	items := randomItems(7, 40, 4, 4, "p")
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	attrs := map[string]map[string]any{}
	for _, it := range items {
		attrs[it.ID] = it.Attrs
	}
	q := items[3].Cloud
	all, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 20, Exact: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(hs []wpcdb.Hit) []string {
		var out []string
		for _, h := range hs {
			out = append(out, h.ID)
		}
		return out
	}
	def, err := c.Search(ctx, q, wpcdb.SearchOptions{Exact: true})
	if err != nil || !slices.Equal(ids(def.Hits), ids(all.Hits[:10])) {
		t.Fatalf("k = 0: %v, %v; want the top 10 %v", ids(def.Hits), err, ids(all.Hits[:10]))
	}
	page, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5, Offset: 12, Exact: true, WithAttrs: true})
	if err != nil || !slices.Equal(ids(page.Hits), ids(all.Hits[12:17])) {
		t.Fatalf("offset 12, k 5: %v, %v; want %v", ids(page.Hits), err, ids(all.Hits[12:17]))
	}
	for _, h := range page.Hits {
		if !reflect.DeepEqual(h.Attrs, attrs[h.ID]) {
			t.Errorf("hit %s attrs %v, want %v", h.ID, h.Attrs, attrs[h.ID])
		}
	}
	if all.Hits[0].Attrs != nil {
		t.Errorf("attrs without WithAttrs: %v", all.Hits[0].Attrs)
	}
	past, err := c.Search(ctx, q, wpcdb.SearchOptions{K: 5, Offset: 100})
	if err != nil || len(past.Hits) != 0 {
		t.Errorf("offset past the end: %v, %v", ids(past.Hits), err)
	}
	res, err := c.RerankWith(ctx, q, []string{"p1", "gone", "p2"}, wpcdb.RerankOptions{WithAttrs: true})
	if err != nil || len(res.Hits) != 2 || !slices.Equal(res.Missing, []string{"gone"}) || !reflect.DeepEqual(res.Hits[0].Attrs, attrs[res.Hits[0].ID]) {
		t.Errorf("rerank with attrs: %+v missing %v, %v", res.Hits, res.Missing, err)
	}
}

// TestGetManyCountUpdateAttrs checks GetMany's missing list, counting under
// a filter, and that UpdateAttrs is seen by filters, keeps the cloud and
// survives a reopen.
func TestGetManyCountUpdateAttrs(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs)
	c, _ := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 4})
	items := randomItems(3, 30, 4, 4, "g")
	if err := c.Upsert(ctx, items); err != nil {
		t.Fatal(err)
	}
	got, missing, err := c.GetMany(ctx, []string{"g5", "nope", "g1", "g5", ""})
	if err != nil || len(got) != 2 || got[0].ID != "g5" || got[1].ID != "g1" || !slices.Equal(missing, []string{"nope", ""}) {
		t.Fatalf("GetMany: %d items, missing %q, %v", len(got), missing, err)
	}
	if !reflect.DeepEqual(got[1].Cloud, items[1].Cloud) {
		t.Errorf("GetMany cloud of g1 differs")
	}
	reds := 0
	for _, it := range items {
		if it.Attrs["color"] == "red" {
			reds++
		}
	}
	if n, err := c.CountFilter(ctx, `color = "red"`); err != nil || n != reds {
		t.Fatalf("count red = %d, %v; want %d", n, err, reds)
	}
	if n, err := c.CountFilter(ctx, ""); err != nil || n != 30 {
		t.Fatalf("count = %d, %v", n, err)
	}
	if _, err := c.CountFilter(ctx, `color = `); !errors.Is(err, wpcdb.ErrInvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}
	target := "g0"
	if items[0].Attrs["color"] == "red" {
		target = "g1"
		for _, it := range items {
			if it.Attrs["color"] != "red" {
				target = it.ID
				break
			}
		}
	}
	after, err := c.UpdateAttrs(ctx, target, map[string]any{"color": "red", "rating": 4.5}, []string{"year"})
	if err != nil || after["color"] != "red" || after["rating"] != 4.5 || after["year"] != nil {
		t.Fatalf("UpdateAttrs: %v, %v", after, err)
	}
	for _, tc := range []struct {
		id    string
		set   map[string]any
		unset []string
		is    error
		want  string
	}{
		{"nope", nil, []string{"x"}, wpcdb.ErrNotFound, "nope"},
		{target, map[string]any{"x": 1.0}, []string{"x"}, wpcdb.ErrInvalidArgument, "attrs.x: both set and unset"},
		{target, map[string]any{"x": []int{1}}, nil, wpcdb.ErrInvalidArgument, "attrs.x: value must be"},
	} {
		if _, err := c.UpdateAttrs(ctx, tc.id, tc.set, tc.unset); !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UpdateAttrs(%s, %v, %v) = %v, want %v containing %q", tc.id, tc.set, tc.unset, err, tc.is, tc.want)
		}
	}
	check := func(c *wpcdb.Collection, when string) {
		if n, _ := c.CountFilter(ctx, `color = "red"`); n != reds+1 {
			t.Errorf("%s: count red = %d, want %d", when, n, reds+1)
		}
		if n, _ := c.CountFilter(ctx, `rating > 4`); n != 1 {
			t.Errorf("%s: count rating > 4 = %d, want 1", when, n)
		}
		res, err := c.Search(ctx, items[0].Cloud, wpcdb.SearchOptions{K: 5, Filter: `rating = 4.5`, WithAttrs: true})
		if err != nil || len(res.Hits) != 1 || res.Hits[0].ID != target || res.Hits[0].Attrs["rating"] != 4.5 {
			t.Errorf("%s: filtered search: %+v, %v", when, res.Hits, err)
		}
		it, err := c.Get(ctx, target)
		if err != nil || !reflect.DeepEqual(it.Cloud, itemByID(items, target).Cloud) {
			t.Errorf("%s: the cloud changed: %v", when, err)
		}
	}
	check(c, "before reopen")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openMem(t, fs)
	defer db.Close()
	c, err = db.Collection("c")
	if err != nil {
		t.Fatal(err)
	}
	check(c, "after reopen")
}

func itemByID(items []wpcdb.Item, id string) wpcdb.Item {
	for _, it := range items {
		if it.ID == id {
			return it
		}
	}
	return wpcdb.Item{}
}

// TestScrollExactlyOnce scrolls over 10,000 items while other IDs are
// upserted and deleted, and checks that each original item comes back
// exactly once, in ID order, with the filter applied.
func TestScrollExactlyOnce(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	linear, _ := wpcsim.ParseKernel("linear")
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 2, Similarity: wpcsim.Config{Kernel: linear}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	cloud := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}
	var batch []wpcdb.Item
	for i := range n {
		batch = append(batch, wpcdb.Item{ID: fmt.Sprintf("a%05d", i), Cloud: cloud, Attrs: map[string]any{"even": i%2 == 0}})
		if len(batch) == 1000 {
			if err := c.Upsert(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = nil
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // other IDs come and go, sorting before, among and after the originals
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ids := []string{fmt.Sprintf("0-%d", i), fmt.Sprintf("a%05d-%d", (i*37)%n, i), fmt.Sprintf("z%d", i)}
			var its []wpcdb.Item
			for _, id := range ids {
				its = append(its, wpcdb.Item{ID: id, Cloud: cloud, Attrs: map[string]any{"even": true}})
			}
			if err := c.Upsert(ctx, its); err != nil {
				t.Error(err)
				return
			}
			if i%2 == 1 {
				if _, err := c.Delete(ctx, ids...); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	seen := map[string]int{}
	var last, cursor string
	pages := 0
	for {
		page, err := c.Scroll(ctx, wpcdb.ScrollOptions{Filter: "even = true", Cursor: cursor, Limit: 97})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range page.Items {
			if it.ID <= last {
				t.Fatalf("page %d: %q after %q", pages, it.ID, last)
			}
			last = it.ID
			seen[it.ID]++
			if it.Attrs["even"] != true || it.Cloud.Dim != 0 {
				t.Fatalf("%s: attrs %v, cloud dim %d", it.ID, it.Attrs, it.Cloud.Dim)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	close(stop)
	wg.Wait()
	for i := 0; i < n; i += 2 {
		if id := fmt.Sprintf("a%05d", i); seen[id] != 1 {
			t.Fatalf("%s seen %d times", id, seen[id])
		}
	}
	if seen["a00001"] != 0 {
		t.Fatal("an odd item passed the filter")
	}
	page, err := c.Scroll(ctx, wpcdb.ScrollOptions{Limit: 2, WithClouds: true})
	if err != nil || len(page.Items) != 2 || page.Items[0].Cloud.Dim != 2 || page.NextCursor != page.Items[1].ID {
		t.Fatalf("scroll with clouds: %+v, %v", page, err)
	}
	if _, err := c.Scroll(ctx, wpcdb.ScrollOptions{Limit: 10_001}); !errors.Is(err, wpcdb.ErrInvalidArgument) {
		t.Fatalf("limit over the maximum: %v", err)
	}
}
