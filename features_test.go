package wpcdb_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestStoredPhi: the φ a first stage is built from is the collection's
// feature map applied to the item as stored (after encoding), for a seeded
// and for an imported sample, also after reopening.
func TestStoredPhi(t *testing.T) {
	fs := vfs.NewMem()
	db := openMem(t, fs)
	seeded := wpcdb.CollectionConfig{Dim: 8, Encoding: wpcdb.EncodingF16}
	seeded.Features.Dim = 64
	seeded.Features.Seed = 5
	if _, err := db.CreateCollection(ctx, "seeded", seeded); err != nil {
		t.Fatal(err)
	}
	k, _ := wpcsim.ParseKernel("linear+gaussian(1)+0.5*imq(2)")
	imported := wpcdb.CollectionConfig{Dim: 8, Similarity: wpcsim.Config{Kernel: k}}
	other, err := wpcsim.NewFeatureMap(imported.Similarity, 8, wpcsim.FeatureOptions{D: 32, Seed: 99})
	if err != nil {
		t.Fatal(err)
	}
	sample := other.Sample()
	if _, err := db.CreateCollectionWithSample(ctx, "imported", imported, sample); err != nil {
		t.Fatal(err)
	}
	bad := sample
	bad.W = bad.W[:1]
	if _, err := db.CreateCollectionWithSample(ctx, "bad", imported, bad); !errors.Is(err, wpcdb.ErrInvalidArgument) {
		t.Errorf("a sample that does not fit the kernel: %v", err)
	}
	items := randomItems(3, 10, 5, 8, "p")
	for _, name := range []string{"seeded", "imported"} {
		c, _ := db.Collection(name)
		if err := c.Upsert(ctx, items); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	db = openMem(t, fs)
	defer db.Close()
	seededMap, _ := wpcsim.NewFeatureMap(wpcsim.Config{}, 8, wpcsim.FeatureOptions{D: 64, Seed: 5})
	for name, fm := range map[string]*wpcsim.FeatureMap{"seeded": seededMap, "imported": other} {
		c, err := db.Collection(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "imported" && (!c.Config().Features.Imported || c.Config().Features.Dim != 32) {
			t.Errorf("imported config: %+v", c.Config().Features)
		}
		sc := wpcdb.StorageForTest(db, name)
		for _, it := range items {
			stored, err := sc.Get(it.ID)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fm.Map(stored.Cloud, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := wpcdb.PhiForTest(c, stored.IID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %s: φ of the stored cloud differs (%v)", name, it.ID, err)
			}
		}
	}
}

// TestUpsertRefusesOverflowingPhi: φ is not stored, and a new collection's
// first stage is not loaded during its load, yet an item whose φ would
// overflow float32 is refused at write, as the feature map itself refuses
// it (the oracle), and an item just below is accepted.
func TestUpsertRefusesOverflowingPhi(t *testing.T) {
	db := openMem(t, vfs.NewMem())
	defer db.Close()
	c, err := db.CreateCollection(ctx, "c", wpcdb.CollectionConfig{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	fm, err := wpcsim.NewFeatureMap(wpcsim.Config{}, 2, wpcsim.FeatureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []float32{3e38, 1e30} {
		cloud := wpcsim.Cloud{Dim: 2, Weights: []float32{w, w, w}, Points: []float32{1, 0, 1, 0, 1, 0}}
		_, want := fm.Map(cloud, nil)
		if (want != nil) != (w > 1e38) {
			t.Fatalf("weights %g: the feature map says %v", w, want)
		}
		err := c.Upsert(ctx, []wpcdb.Item{{ID: "x", Cloud: cloud}})
		if (want != nil) != errors.Is(err, wpcdb.ErrInvalidArgument) {
			t.Errorf("weights %g: upsert %v, the feature map %v", w, err, want)
		}
	}
	if _, loaded := wpcdb.IndexLoadsForTest(c); loaded {
		t.Error("a new collection's first stage was loaded by its writes")
	}
}
