package bench

import (
	"github.com/wpcdb/wpcdb"
)

// Source is a workload's items, by index: what Ingest loads. Item must be
// safe for concurrent use (Ingest builds each batch in parallel) and give
// the same item for the same index.
type Source interface {
	// Item returns item i, 0 ≤ i < the workload's N.
	Item(i int) (wpcdb.Item, error)
	// Shape returns the dimension and the largest number of points of an
	// item, which size Ingest's batches.
	Shape() (dim, maxPoints int)
}

// Source returns the generated items as a Source.
func (s *Synth) Source() Source { return synthSource{s} }

// Item and Shape make a *Synth a Source.
var _ Source = synthSource{}

type synthSource struct{ s *Synth }

func (s synthSource) Item(i int) (wpcdb.Item, error) { return s.s.Item(i), nil }
func (s synthSource) Shape() (int, int)              { return s.s.Dim, s.s.MaxPoints }

// ItemSlice is a Source over items held in memory (a user's file).
type ItemSlice []wpcdb.Item

// Item returns s[i].
func (s ItemSlice) Item(i int) (wpcdb.Item, error) { return s[i], nil }

// Shape returns the dimension of the first item and the most points of any.
func (s ItemSlice) Shape() (dim, maxPoints int) {
	for _, it := range s {
		dim = max(dim, it.Cloud.Dim)
		maxPoints = max(maxPoints, it.Cloud.Len())
	}
	return dim, maxPoints
}
