package wpcdb_test

import (
	"errors"
	"math"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/query"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestErrorKinds: whichever layer finds a problem, the caller tests it with
// the root package's kinds, and a bad field of an item is a *FieldError
// naming it (no message parsing).
func TestErrorKinds(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs)
	defer db.Close()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	good := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 0}}
	nan := wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, float32(math.NaN())}}
	upsert := func(it wpcdb.Item) error { return c.Upsert(ctx, []wpcdb.Item{it}) }
	for _, tc := range []struct {
		name  string
		err   error
		kind  error
		field string // of the *FieldError in the chain, "" for none
	}{
		{"NaN point (wpcsim)", upsert(wpcdb.Item{ID: "a", Cloud: nan}), wpcdb.ErrInvalidArgument, "points[0][1]"},
		{"control character in an ID (storage)", upsert(wpcdb.Item{ID: "a\nb", Cloud: good}), wpcdb.ErrInvalidArgument, "id"},
		{"nested attribute (storage)", upsert(wpcdb.Item{ID: "a", Cloud: good, Attrs: map[string]any{"x": []int{1}}}), wpcdb.ErrInvalidArgument, "attrs.x"},
		{"bad config (wpcsim through storage)", func() error {
			_, err := db.CreateCollection(ctx, "d", wpcdb.CollectionConfig{Dim: 0})
			return err
		}(), wpcdb.ErrInvalidArgument, ""},
		{"bad filter (query)", func() error {
			_, err := c.Search(ctx, good, wpcdb.SearchOptions{Filter: "a ="})
			return err
		}(), query.ErrInvalidFilter, ""},
		{"bad k (query)", func() error {
			_, err := c.Search(ctx, good, wpcdb.SearchOptions{K: -1})
			return err
		}(), wpcdb.ErrInvalidArgument, ""},
		{"unknown item", func() error { _, err := c.Get(ctx, "ghost"); return err }(), wpcdb.ErrNotFound, ""},
		{"too few to calibrate (firststage)", func() error { _, err := c.Calibrate(ctx, nil); return err }(), wpcdb.ErrFailedPrecondition, ""},
		{"opened twice", func() error {
			_, err := wpcdb.Open("db", &wpcdb.Options{FS: fs})
			return err
		}(), wpcdb.ErrLocked, ""},
	} {
		if !errors.Is(tc.err, tc.kind) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.kind)
			continue
		}
		var fe *wpcdb.FieldError
		if got := errors.As(tc.err, &fe); got != (tc.field != "") || got && fe.Field != tc.field {
			t.Errorf("%s: %v: FieldError %+v, want field %q", tc.name, tc.err, fe, tc.field)
		}
	}
	if errors.Is(query.ErrInvalidFilter, wpcdb.ErrNotFound) || !errors.Is(query.ErrInvalidFilter, wpcdb.ErrInvalidArgument) {
		t.Error("a package's sentinel belongs to exactly its kind")
	}
}
