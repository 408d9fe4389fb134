package wpcsim_test

import (
	"fmt"
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// BenchmarkFeatureMap is φ of one cloud with the default kernel and D
// random features, at the compact bench shape (17 points × 64 dims), the
// Fashion-MNIST patch shape (49 × 51) and the paper's image shape
// (197 × 512); one op is one cloud. SetBytes counts the cloud's float32
// points.
func BenchmarkFeatureMap(b *testing.B) {
	for _, sh := range []struct{ m, d, D int }{{17, 64, 1024}, {49, 51, 1024}, {197, 512, 1024}} {
		b.Run(fmt.Sprintf("M=%d/d=%d/D=%d", sh.m, sh.d, sh.D), func(b *testing.B) {
			f, err := wpcsim.NewFeatureMap(wpcsim.Config{}, sh.d, wpcsim.FeatureOptions{D: sh.D})
			if err != nil {
				b.Fatal(err)
			}
			c := featCloud(wpctest.RandomCloud(wpctest.NewRand(1), sh.m, sh.d, wpctest.Shape{}))
			dst := make([]float32, 0, f.Dim())
			b.SetBytes(int64(4 * sh.m * sh.d))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.Map(c, dst[:0]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFeatureMapBatch is φ of 64 compact clouds (4–16 points × 64
// dims, D=1024) per op: one Map per cloud, or one MapBatch on one
// goroutine.
func BenchmarkFeatureMapBatch(b *testing.B) {
	const n, d = 64, 64
	f, err := wpcsim.NewFeatureMap(wpcsim.Config{}, d, wpcsim.FeatureOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rng := wpctest.NewRand(1)
	cs := make([]wpcsim.Cloud, n)
	for i := range cs {
		cs[i] = featCloud(wpctest.RandomCloud(rng, 4+i%13, d, wpctest.Shape{}))
	}
	dst := make([]float32, n*f.Dim())
	errs := make([]error, n)
	b.Run("Map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i, c := range cs {
				if _, err := f.Map(c, dst[i*f.Dim():i*f.Dim()]); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("MapBatch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.MapBatch(cs, dst, errs, 1)
		}
	})
}

// BenchmarkNewFeatureMap is drawing the seeded sample (done once per
// collection open).
func BenchmarkNewFeatureMap(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wpcsim.NewFeatureMap(wpcsim.Config{}, 512, wpcsim.FeatureOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
