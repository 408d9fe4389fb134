package wpcdb_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestStoredPhi: the φ stored with an item is the collection's feature map
// applied to the item as stored (after encoding), for a seeded and for an
// imported sample, also after reopening.
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
			_, got, err := sc.Phi(stored.IID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %s: stored φ differs (%v)", name, it.ID, err)
			}
		}
	}
}
