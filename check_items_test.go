package wpcdb_test

import (
	"context"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestCheckItemsAgreesWithUpsert: CheckItems refuses what UpsertWith
// refuses, with the same error, and accepts what it writes.
func TestCheckItemsAgreesWithUpsert(t *testing.T) {
	ctx := context.Background()
	db, err := wpcdb.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := wpcdb.CollectionConfig{Dim: 2, Encoding: collconfig.EncodingF16}
	c, err := db.CreateCollection(ctx, "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	good := wpcdb.Item{ID: "ok", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1, 2}}}
	for _, bad := range []wpcdb.Item{
		{ID: "", Cloud: good.Cloud},
		{ID: "wrong dim", Cloud: wpcsim.Cloud{Dim: 3, Weights: []float32{1}, Points: []float32{1, 2, 3}}},
		{ID: "f16 zero", Cloud: wpcsim.Cloud{Dim: 2, Weights: []float32{1}, Points: []float32{1e-9, 0}}},
		{ID: "attrs", Cloud: good.Cloud, Attrs: map[string]any{"": 1}},
	} {
		items := []wpcdb.Item{good, bad}
		want := c.Upsert(ctx, items)
		got := wpcdb.CheckItems(c.Config(), items)
		if want == nil || got == nil || got.Error() != want.Error() {
			t.Errorf("%q: CheckItems %v, Upsert %v", bad.ID, got, want)
		}
	}
	if err := wpcdb.CheckItems(c.Config(), []wpcdb.Item{good}); err != nil {
		t.Errorf("good item: %v", err)
	}
	if c.Count() != 0 {
		t.Errorf("count %d after refused batches", c.Count())
	}
}
