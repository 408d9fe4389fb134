package order

import (
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// TestCompareAgainstSortStable: sorting by Compare equals a stable sort by
// ID followed by a stable sort by descending score, on many ties.
func TestCompareAgainstSortStable(t *testing.T) {
	const seed = 7
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	type hit struct {
		s  float64
		id string
	}
	hs := make([]hit, 500)
	for i := range hs {
		hs[i] = hit{float64(rng.IntN(20)), string(rune('a' + rng.IntN(26)))}
	}
	want := slices.Clone(hs)
	sort.SliceStable(want, func(i, j int) bool { return want[i].id < want[j].id })
	sort.SliceStable(want, func(i, j int) bool { return want[i].s > want[j].s })
	got := slices.Clone(hs)
	slices.SortFunc(got, func(a, b hit) int { return Compare(a.s, a.id, b.s, b.id) })
	if !slices.Equal(got, want) {
		t.Fatal("Compare's order differs from score descending, ID ascending")
	}
	if !Better(float32(2), uint32(9), 1, 0) || Better(float32(1), uint32(0), 1, 0) || !Better(float32(1), uint32(0), 1, 1) {
		t.Fatal("Better")
	}
}
