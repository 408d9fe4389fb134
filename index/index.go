// Package index holds the first stage's vector indexes: nearest-neighbour
// search over one vector per cloud (the representation package firststage
// chooses), returning candidates that the exact scorer reranks.
// Implementations: Flat (an exact scan, for small collections and as the
// oracle), HNSW (a graph), and Tiered, which every collection uses: a Flat
// buffer that new vectors enter at once, moved into an HNSW graph by a
// background builder once the index is large enough.
//
// Scores are "higher is closer" for every metric: the inner product, the
// cosine, or the negated squared L2 distance.
//
// Filters are roaring bitmaps of internal IDs applied inside the search, so
// that a strict filter still returns k results when k items pass it.
//
// An Index is safe for concurrent use: searches run in parallel with each
// other; Add and Delete take a write lock.
package index

import (
	"fmt"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// Metric is how two vectors are compared.
type Metric uint8

const (
	// InnerProduct ranks by <a, b> (score mode inner).
	InnerProduct Metric = iota
	// Cosine ranks by <a, b> / (|a| |b|) (score mode cosine). Vectors are
	// normalized on Add and queries on Search.
	Cosine
	// L2 ranks by -|a - b|² (score mode mmd).
	L2
)

func (m Metric) String() string {
	switch m {
	case InnerProduct:
		return "ip"
	case Cosine:
		return "cosine"
	case L2:
		return "l2"
	}
	return fmt.Sprintf("Metric(%d)", uint8(m))
}

// Result is one candidate: an internal ID and its first-stage score.
type Result struct {
	ID    uint32
	Score float32
}

// Params tune one search; zero values mean the index's defaults.
type Params struct {
	// Ef is the HNSW search beam width (default max(k, 64)).
	Ef int
}

// checkSearch checks a Search call on an index of dimension dim: the
// query's length and p. run is false when k asks for nothing.
func checkSearch(q []float32, dim, k int, p Params) (run bool, err error) {
	if len(q) != dim {
		return false, fmt.Errorf("%w: query %d, index has %d", ErrDimension, len(q), dim)
	}
	if p.Ef < 0 {
		return false, fmt.Errorf("index: negative Ef %d", p.Ef)
	}
	return k > 0, nil
}

// Errors.
var (
	ErrDimension = wpcerr.New(wpcerr.InvalidArgument, "index: vector has the wrong dimension")
	ErrCorrupt   = wpcerr.New(wpcerr.Corrupt, "index: corrupt persisted index")
)

// Index is a first-stage index.
type Index interface {
	// Add inserts or replaces the vector of id.
	Add(id uint32, v []float32) error
	// Delete removes id; unknown IDs are ignored.
	Delete(id uint32)
	// Search returns up to k results, best first (ties by ID ascending),
	// among the IDs in filter (all indexed IDs when filter is nil).
	Search(q []float32, k int, filter *roaring.Bitmap, p Params) ([]Result, error)
	// Len is the number of indexed vectors.
	Len() int
	// Dim is the vector dimension.
	Dim() int
	// Contains reports whether id is indexed.
	Contains(id uint32) bool
	// Save writes the index through p; Load (per implementation) reads it.
	Save(p Persister) error
}

// Persister stores an index's blobs; storage implements it per collection.
type Persister interface {
	// PutBlob stores data under name. It may keep data: the index hands
	// over a buffer it no longer uses (a saved index can be hundreds of
	// megabytes; a copy would double that).
	PutBlob(name string, data []byte) error
	GetBlob(name string) ([]byte, error) // (nil, nil) when absent
}
