package bench

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestSynthIsDeterministicAndLearnedLooking(t *testing.T) {
	a, b := NewSynth(CompactShape, 3), NewSynth(CompactShape, 3)
	if !reflect.DeepEqual(a.Item(17), b.Item(17)) || !reflect.DeepEqual(a.Query(2, 5), b.Query(2, 5)) {
		t.Fatal("same seed and index must give the same cloud")
	}
	if reflect.DeepEqual(a.Item(17).Cloud, a.Item(18).Cloud) {
		t.Fatal("different items are equal")
	}
	var neg, total int
	var maxW float32
	for i := 0; i < 500; i++ {
		it := a.Item(i)
		if err := it.Cloud.Validate(wpcsim.Limits{Dim: 64, MaxPoints: 16}); err != nil {
			t.Fatal(err)
		}
		for _, w := range it.Cloud.Weights {
			total++
			if w < 0 {
				neg++
			}
			maxW = max(maxW, max(w, -w))
		}
	}
	if f := float64(neg) / float64(total); f < 0.33 || f > 0.5 || maxW < 5 || maxW > 10 {
		t.Errorf("weights do not look learned: %.2f negative, max |w| %v", f, maxW)
	}
}

func TestIngestSmall(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestConfig{
		Dir: filepath.Join(t.TempDir(), "d"), Synth: NewSynth(CompactShape, 1), N: 250, Batch: 100,
		Collection: wpcdb.CollectionConfig{Dim: 64},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Items != 250 || rep.Points < 250*4 || rep.BytesOnDisk <= 0 || rep.ItemsPerSec <= 0 || rep.Threads < 1 {
		t.Errorf("report: %+v", rep)
	}
}
