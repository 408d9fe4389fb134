package collconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

func TestTieredThresholds(t *testing.T) {
	for _, tc := range []struct {
		ic    Index
		dim   int
		exact bool
		want  int
	}{
		{Index{Kind: IndexHNSW}, 64, false, 1},
		{Index{Kind: IndexFlat}, 64, true, 0},
		{Index{Kind: IndexAuto, GraphAt: 5}, 64, true, 5},
		{Index{}, 64, false, GraphScanFloats / 64},                    // 65,536 centroids
		{Index{}, 64, true, GraphScanFloats / ExactGraphDivisor / 64}, // 8,192
		{Index{}, 1 << 20, false, GraphAtLeast},                       // never below the floor
		{Index{}, 0, false, GraphScanFloats},                          // a zero dim counts as 1
	} {
		if got := tc.ic.Tiered(tc.dim, tc.exact).GraphAt; got != tc.want {
			t.Errorf("%+v dim %d exact %v: graph at %d, want %d", tc.ic, tc.dim, tc.exact, got, tc.want)
		}
	}
	o := Index{HNSWOptions: index.HNSWOptions{M: 8, EfSearch: 20}}.Tiered(64, false)
	if o.HNSW.M != 8 || o.HNSW.EfSearch != 20 {
		t.Errorf("HNSW options not passed on: %+v", o.HNSW)
	}
}

// TestProblemsListed: every problem is reported at once, the HNSW ranges
// by index's own check, under ErrInvalid (an invalid argument).
func TestProblemsListed(t *testing.T) {
	err := Config{Dim: 0, MaxPoints: -1, Index: Index{Kind: "btree", HNSWOptions: index.HNSWOptions{M: 1}}}.Validate()
	var p *wpcerr.Problems
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, wpcerr.InvalidArgument) || !errors.As(err, &p) {
		t.Fatalf("%v: want a *wpcerr.Problems under ErrInvalid", err)
	}
	for _, want := range []string{"dim must be positive", "max points", `index kind "btree"`, "index m must be between 2 and 1024, got 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: missing %q", err, want)
		}
	}
	if len(p.List) != 4 {
		t.Errorf("%d problems, want 4: %q", len(p.List), p.List)
	}
	if err := (Config{Dim: 3}).Validate(); err != nil {
		t.Errorf("the zero config with a dim: %v", err)
	}
}
