package pointindex

import (
	"testing"

	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// BenchmarkSearch: 1,000 clouds of 60–300 points, d = 128, queries of 32
// unit-weight points, the default options.
func BenchmarkSearch(b *testing.B) {
	c := newCorpus(1, 1000, 128, 60, 300)
	x, err := Build(c.d, c.source(), Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("%+v", x.Stats())
	rng := wpctest.NewRand(2)
	qs := make([]wpcsim.Cloud, 16)
	for i := range qs {
		qs[i] = c.cloud(rng, 32, false)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := x.Search(qs[i%len(qs)], 100, nil, Params{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
