package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/wpcdb/wpcdb/wpcsim"
)

// FormatVersion is the on-disk format this build writes. It also opens
// format 1, whose saved first-stage indexes (one Pebble value per blob) it
// rewrites in pages (see migrateFormat1).
const FormatVersion uint32 = 2

// Defaults of a collection, printed by `collection describe`.
const (
	DefaultMaxPoints   = 1024
	DefaultFeatureDim  = 1024
	MaxCollectionName  = 128
	MaxIDLength        = 512
	MaxAttrNameLength  = 256
	MaxAttrValueLength = 64 << 10
	MaxAttrListLength  = 1024
	MaxAttrsBytes      = 1 << 20
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
	return 0, fmt.Errorf("%w: encoding %q: want f32, f16 or bf16", ErrInvalidConfig, s)
}

func (e Encoding) size() int {
	if e == EncodingF32 {
		return 4
	}
	return 2
}

// FeatureConfig is a collection's random-feature sample: D features per
// nonlinear kernel term drawn from Seed, or a sample imported from a trained
// model (stored in the collection).
type FeatureConfig struct {
	Dim      int    `json:"dim"`      // D per nonlinear term; default DefaultFeatureDim
	Seed     uint64 `json:"seed"`     // default 0
	Imported bool   `json:"imported"` // W and b come from an import, not from Seed
}

// Index kinds of IndexConfig.Kind.
const (
	IndexAuto = "auto" // flat below IndexConfig.GraphAt items, a graph above
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

// IndexConfig chooses a collection's first-stage index. The zero value is
// "auto" with the defaults of index.HNSWOptions.
type IndexConfig struct {
	Kind           string `json:"kind,omitempty"`            // auto (default), flat or hnsw
	GraphAt        int    `json:"graph_at,omitempty"`        // auto: items at which the graph is built; 0: by scan cost (GraphScanFloats)
	M              int    `json:"m,omitempty"`               // HNSW degree; default 16
	EfConstruction int    `json:"ef_construction,omitempty"` // default 200
	EfSearch       int    `json:"ef_search,omitempty"`       // default 64, raised to the first-stage depth
}

// CollectionConfig fixes what a collection holds and how it is searched.
// The zero value (with Dim set) is valid: the paper's similarity, 1024
// points at most, f32, 1024 random features per nonlinear term, seed 0.
type CollectionConfig struct {
	Dim        int
	MaxPoints  int
	Similarity wpcsim.Config
	Encoding   Encoding
	Features   FeatureConfig
	Index      IndexConfig
}

// WithDefaults fills unset fields.
func (c CollectionConfig) WithDefaults() CollectionConfig {
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

// Validate reports every problem of c (after defaults).
func (c CollectionConfig) Validate() error {
	c = c.WithDefaults()
	var errs []string
	if c.Dim <= 0 {
		errs = append(errs, fmt.Sprintf("dim must be positive, got %d", c.Dim))
	} else if c.Dim > 65536 {
		errs = append(errs, fmt.Sprintf("dim %d exceeds the maximum of 65536", c.Dim))
	}
	if c.MaxPoints < 0 || c.MaxPoints > 1<<20 {
		errs = append(errs, fmt.Sprintf("max points must be between 1 and %d, got %d", 1<<20, c.MaxPoints))
	}
	if c.Encoding > EncodingBF16 {
		errs = append(errs, fmt.Sprintf("unknown encoding %d", c.Encoding))
	}
	if c.Features.Dim < 0 || c.Features.Dim > 1<<16 {
		errs = append(errs, fmt.Sprintf("feature dim must be between 1 and %d, got %d", 1<<16, c.Features.Dim))
	}
	switch c.Index.Kind {
	case IndexAuto, IndexFlat, IndexHNSW:
	default:
		errs = append(errs, fmt.Sprintf("index kind %q: want auto, flat or hnsw", c.Index.Kind))
	}
	if c.Index.GraphAt < 0 {
		errs = append(errs, fmt.Sprintf("index graph_at must not be negative, got %d", c.Index.GraphAt))
	}
	if c.Index.M != 0 && (c.Index.M < 2 || c.Index.M > 1024) {
		errs = append(errs, fmt.Sprintf("index m must be between 2 and 1024, got %d", c.Index.M))
	}
	if c.Index.EfConstruction < 0 || c.Index.EfConstruction > 1<<20 || c.Index.EfSearch < 0 || c.Index.EfSearch > 1<<20 {
		errs = append(errs, fmt.Sprintf("index ef_construction and ef_search must be between 1 and %d, got %d and %d", 1<<20, c.Index.EfConstruction, c.Index.EfSearch))
	}
	if err := c.Similarity.Validate(); err != nil {
		errs = append(errs, strings.TrimPrefix(err.Error(), wpcsim.ErrInvalidConfig.Error()+": "))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
	}
	return nil
}

// Limits are the validation limits of the collection's clouds.
func (c CollectionConfig) Limits() wpcsim.Limits {
	return wpcsim.Limits{Dim: c.Dim, MaxPoints: c.MaxPoints, RawPoints: c.Similarity.RawPoints}
}

// persistedConfig is the catalog's JSON form: names, not enum numbers, so
// that the record reads the same to a human and to any later build.
type persistedConfig struct {
	Format    uint32        `json:"format"`
	Dim       int           `json:"dim"`
	MaxPoints int           `json:"max_points"`
	Kernel    string        `json:"kernel"`
	Norm      string        `json:"norm"`
	Normalize bool          `json:"normalize"`
	Score     string        `json:"score"`
	Encoding  string        `json:"encoding"`
	Features  FeatureConfig `json:"features"`
	Index     *IndexConfig  `json:"index,omitempty"` // absent in catalogs written before it existed: auto
}

func marshalConfig(c CollectionConfig) ([]byte, error) {
	s := c.Similarity
	return json.Marshal(persistedConfig{
		Format: FormatVersion, Dim: c.Dim, MaxPoints: c.MaxPoints,
		Kernel: s.Kernel.String(), Norm: s.Norm.String(), Normalize: !s.RawPoints, Score: s.Score.String(),
		Encoding: c.Encoding.String(), Features: c.Features, Index: &c.Index,
	})
}

func unmarshalConfig(data []byte) (CollectionConfig, error) {
	var p persistedConfig
	if err := json.Unmarshal(data, &p); err != nil {
		return CollectionConfig{}, fmt.Errorf("%w: catalog record: %v", ErrCorrupt, err)
	}
	if p.Format != 1 && p.Format != FormatVersion { // the record is the same in formats 1 and 2
		return CollectionConfig{}, fmt.Errorf("%w: collection format %d, this build reads format %d", ErrIncompatible, p.Format, FormatVersion)
	}
	k, err1 := wpcsim.ParseKernel(p.Kernel)
	n, err2 := wpcsim.ParseNorm(p.Norm)
	m, err3 := wpcsim.ParseScoreMode(p.Score)
	e, err4 := ParseEncoding(p.Encoding)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return CollectionConfig{}, fmt.Errorf("%w: catalog record: %v", ErrIncompatible, err)
	}
	c := CollectionConfig{
		Dim: p.Dim, MaxPoints: p.MaxPoints,
		Similarity: wpcsim.Config{Kernel: k, Norm: n, RawPoints: !p.Normalize, Score: m},
		Encoding:   e, Features: p.Features,
	}
	if p.Index != nil {
		c.Index = *p.Index
	}
	if err := c.Validate(); err != nil {
		return CollectionConfig{}, fmt.Errorf("%w: catalog record: %v", ErrIncompatible, err)
	}
	return c, nil
}

// ValidateName checks a collection name: 1–128 bytes of letters, digits,
// '_', '-' and '.', not starting with '.' or '-'.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxCollectionName {
		return fmt.Errorf("%w: collection name must be 1 to %d bytes, got %d", ErrInvalidConfig, MaxCollectionName, len(name))
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || (i > 0 && (r == '-' || r == '.'))
		if !ok {
			return fmt.Errorf("%w: collection name %q: character %q at %d is not allowed (letters, digits, '_', and '-' or '.' after the first)", ErrInvalidConfig, name, r, i)
		}
	}
	return nil
}
