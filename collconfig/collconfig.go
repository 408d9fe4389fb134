// Package collconfig is a collection's configuration: what it holds (the
// dimension, the most points a cloud may have, how points are stored), how
// it is compared (the similarity of PAPER.md and its random-feature
// sample) and how it is searched (the first-stage index). It owns the
// types, their defaults and their validation, once; storage keeps only the
// persisted form (the catalog's JSON), the root package aliases Config as
// wpcdb.CollectionConfig, and the CLI takes its flag defaults from here.
package collconfig

import (
	"fmt"
	"strings"

	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// ErrInvalid is wrapped by every error about a configuration.
var ErrInvalid = wpcerr.New(wpcerr.InvalidArgument, "invalid collection config")

// Defaults and limits of a configuration.
const (
	DefaultMaxPoints  = 1024
	DefaultFeatureDim = 1024
	MaxDim            = 65536
	MaxMaxPoints      = 1 << 20
	MaxFeatureDim     = 1 << 16
)

// Encoding is how points are stored on disk.
type Encoding uint8

const (
	// EncodingF32 stores float32 as given (bit-exact).
	EncodingF32 Encoding = iota
	// EncodingF16 stores IEEE half precision (11-bit significand, |x| ≤ 65504).
	EncodingF16
	// EncodingBF16 stores bfloat16 (8-bit significand, float32's range).
	EncodingBF16
)

func (e Encoding) String() string {
	switch e {
	case EncodingF32:
		return "f32"
	case EncodingF16:
		return "f16"
	case EncodingBF16:
		return "bf16"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// Size is the bytes of one stored coordinate.
func (e Encoding) Size() int {
	if e == EncodingF32 {
		return 4
	}
	return 2
}

// ParseEncoding parses f32, f16 or bf16.
func ParseEncoding(s string) (Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "f32", "float32":
		return EncodingF32, nil
	case "f16", "float16":
		return EncodingF16, nil
	case "bf16", "bfloat16":
		return EncodingBF16, nil
	}
	return 0, fmt.Errorf("%w: encoding %q: want f32, f16 or bf16", ErrInvalid, s)
}

// Features is a collection's random-feature sample: Dim features per
// nonlinear kernel term drawn from Seed, or a sample imported from a trained
// model (stored in the collection).
type Features struct {
	Dim      int    // per nonlinear term; default DefaultFeatureDim
	Seed     uint64 // default 0
	Imported bool   // W and b come from an import, not from Seed
}

// Index kinds of Index.Kind.
const (
	IndexAuto = "auto" // flat below Index.GraphAt items, a graph above
	IndexFlat = "flat" // an exact scan of the first-stage vectors, always
	IndexHNSW = "hnsw" // a graph from the first item
)

// GraphScanFloats sets when an "auto" first stage with no GraphAt builds
// its HNSW graph: once a flat scan would read this many floats (items ×
// the first-stage vector's dimension; 16 MiB, about a millisecond), at
// least GraphAtLeast items. The threshold follows the calibrated vector: a
// 64-float centroid is scanned up to 65,536 items, 1,088-float φ up to
// 3,855. Measured on compact 20k (`wpcdb bench`): the inner-product graph
// over centroids reached recall@10 0.95–0.97 at every depth where a scan of
// the same centroids reached 1.000 (as FAISS-flat over centroids did); the
// former fixed 20,000 items scanned 87 MB of φ per query below it.
const (
	GraphScanFloats = 1 << 22
	GraphAtLeast    = 1_000
)

// Index chooses a collection's first-stage index. The zero value is "auto"
// with the graph's defaults (index.DefaultM and the others): a zero HNSW
// field means its default, and the ranges are index.HNSWOptions'.
type Index struct {
	Kind    string // auto (default), flat or hnsw
	GraphAt int    // auto: items at which the graph is built; 0: by scan cost (GraphScanFloats)
	index.HNSWOptions
}

// ExactGraphDivisor lowers the auto threshold of an exact first stage
// (the linear kernel, whose first-stage score is the similarity), whose
// scan is the whole search rather than the cheap half of one: its graph
// starts once a scan would read GraphScanFloats/8 floats (8,192 items of a
// 64-float centroid). Measured (index benchmarks, n = 20,000, d = 64, one
// thread, shared machine): the flat scan took 90 µs a query, the graph's
// walk 13–20 µs at a beam of 20 and 38–66 µs at 64 (recall@10 0.98 and
// 0.996 against that scan); BenchmarkSearchSmall/linear (10,000 items,
// R = 20) went from 78 µs with the scan to 19 µs with the graph. The scan
// is linear in the items (about 9 µs at 2,000), the walk logarithmic; the
// crossover was not measured more finely than that.
const ExactGraphDivisor = 8

// Tiered is the index options of a first stage over vectors of dim floats;
// exact says its scores are the similarity itself (see ExactGraphDivisor).
func (ic Index) Tiered(dim int, exact bool) index.TieredOptions {
	o := index.TieredOptions{HNSW: ic.HNSWOptions}
	dim = max(dim, 1)
	switch {
	case ic.Kind == IndexHNSW:
		o.GraphAt = 1
	case ic.Kind == IndexFlat:
		o.GraphAt = 0
	case ic.GraphAt > 0:
		o.GraphAt = ic.GraphAt
	case exact:
		o.GraphAt = max(GraphAtLeast, GraphScanFloats/ExactGraphDivisor/dim)
	default:
		o.GraphAt = max(GraphAtLeast, GraphScanFloats/dim)
	}
	return o
}

// Config fixes what a collection holds and how it is searched. The zero
// value (with Dim set) is valid: the paper's similarity, 1024 points at
// most, f32, 1024 random features per nonlinear term, seed 0, an "auto"
// index.
type Config struct {
	Dim        int
	MaxPoints  int
	Similarity wpcsim.Config
	Encoding   Encoding
	Features   Features
	Index      Index
}

// WithDefaults fills unset fields.
func (c Config) WithDefaults() Config {
	if c.MaxPoints == 0 {
		c.MaxPoints = DefaultMaxPoints
	}
	if c.Features.Dim == 0 {
		c.Features.Dim = DefaultFeatureDim
	}
	c.Similarity = c.Similarity.WithDefaults()
	if c.Index.Kind == "" {
		c.Index.Kind = IndexAuto
	}
	return c
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	return wpcerr.Check(ErrInvalid, c.Problems())
}

// Problems lists what Validate reports, one phrase each.
func (c Config) Problems() []string {
	c = c.WithDefaults()
	var errs []string
	if c.Dim <= 0 {
		errs = append(errs, fmt.Sprintf("dim must be positive, got %d", c.Dim))
	} else if c.Dim > MaxDim {
		errs = append(errs, fmt.Sprintf("dim %d exceeds the maximum of %d", c.Dim, MaxDim))
	}
	if c.MaxPoints < 0 || c.MaxPoints > MaxMaxPoints {
		errs = append(errs, fmt.Sprintf("max points must be between 1 and %d, got %d", MaxMaxPoints, c.MaxPoints))
	}
	if c.Encoding > EncodingBF16 {
		errs = append(errs, fmt.Sprintf("unknown encoding %d", c.Encoding))
	}
	if c.Features.Dim < 0 || c.Features.Dim > MaxFeatureDim {
		errs = append(errs, fmt.Sprintf("feature dim must be between 1 and %d, got %d", MaxFeatureDim, c.Features.Dim))
	}
	switch c.Index.Kind {
	case IndexAuto, IndexFlat, IndexHNSW:
	default:
		errs = append(errs, fmt.Sprintf("index kind %q: want auto, flat or hnsw", c.Index.Kind))
	}
	if c.Index.GraphAt < 0 {
		errs = append(errs, fmt.Sprintf("index graph_at must not be negative, got %d", c.Index.GraphAt))
	}
	for _, p := range c.Index.HNSWOptions.Problems() {
		errs = append(errs, "index "+p)
	}
	return append(errs, c.Similarity.Problems()...)
}

// Limits are the validation limits of the collection's clouds.
func (c Config) Limits() wpcsim.Limits {
	return wpcsim.Limits{Dim: c.Dim, MaxPoints: c.MaxPoints, RawPoints: c.Similarity.RawPoints}
}
