package storage

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// FormatVersion is the on-disk format this build writes. It also opens
// format 1, whose saved first-stage indexes (one Pebble value per blob) it
// rewrites in pages (see migrateFormat1), and format 2, whose stored φ
// vectors it deletes (see migrateFormat2): format 3 recomputes φ from the
// records.
const FormatVersion uint32 = 3

// Limits of what a collection stores, besides its configuration's.
const (
	MaxCollectionName  = 128
	MaxIDLength        = 512
	MaxAttrNameLength  = 256
	MaxAttrValueLength = 64 << 10
	MaxAttrListLength  = 1024
	MaxAttrsBytes      = 1 << 20
)

// persistedConfig is the catalog's JSON form: names, not enum numbers, so
// that the record reads the same to a human and to any later build.
type persistedConfig struct {
	Format    uint32            `json:"format"`
	Dim       int               `json:"dim"`
	MaxPoints int               `json:"max_points"`
	Kernel    string            `json:"kernel"`
	Norm      string            `json:"norm"`
	Normalize bool              `json:"normalize"`
	Score     string            `json:"score"`
	Encoding  string            `json:"encoding"`
	Features  persistedFeatures `json:"features"`
	Index     *persistedIndex   `json:"index,omitempty"` // absent in catalogs written before it existed: auto
}

type persistedFeatures struct {
	Dim      int    `json:"dim"`
	Seed     uint64 `json:"seed"`
	Imported bool   `json:"imported"`
}

type persistedIndex struct {
	Kind           string `json:"kind,omitempty"`
	GraphAt        int    `json:"graph_at,omitempty"`
	M              int    `json:"m,omitempty"`
	EfConstruction int    `json:"ef_construction,omitempty"`
	EfSearch       int    `json:"ef_search,omitempty"`
	Seed           uint64 `json:"seed,omitempty"`
}

func marshalConfig(c collconfig.Config) ([]byte, error) {
	s, ic := c.Similarity, c.Index
	return json.Marshal(persistedConfig{
		Format: FormatVersion, Dim: c.Dim, MaxPoints: c.MaxPoints,
		Kernel: s.Kernel.String(), Norm: s.Norm.String(), Normalize: !s.RawPoints, Score: s.Score.String(),
		Encoding: c.Encoding.String(), Features: persistedFeatures(c.Features),
		Index: &persistedIndex{Kind: ic.Kind, GraphAt: ic.GraphAt, M: ic.M, EfConstruction: ic.EfConstruction, EfSearch: ic.EfSearch, Seed: ic.Seed},
	})
}

func unmarshalConfig(data []byte) (collconfig.Config, error) {
	var p persistedConfig
	if err := json.Unmarshal(data, &p); err != nil {
		return collconfig.Config{}, fmt.Errorf("%w: catalog record: %v", ErrCorrupt, err)
	}
	if p.Format < 1 || p.Format > FormatVersion { // the record is the same in formats 1 to 3
		return collconfig.Config{}, fmt.Errorf("%w: collection format %d, this build reads formats 1 to %d", ErrIncompatible, p.Format, FormatVersion)
	}
	k, err1 := wpcsim.ParseKernel(p.Kernel)
	n, err2 := wpcsim.ParseNorm(p.Norm)
	m, err3 := wpcsim.ParseScoreMode(p.Score)
	e, err4 := collconfig.ParseEncoding(p.Encoding)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return collconfig.Config{}, fmt.Errorf("%w: catalog record: %v", ErrIncompatible, err)
	}
	c := collconfig.Config{
		Dim: p.Dim, MaxPoints: p.MaxPoints,
		Similarity: wpcsim.Config{Kernel: k, Norm: n, RawPoints: !p.Normalize, Score: m},
		Encoding:   e, Features: collconfig.Features(p.Features),
	}
	if pi := p.Index; pi != nil {
		c.Index = collconfig.Index{Kind: pi.Kind, GraphAt: pi.GraphAt,
			HNSWOptions: index.HNSWOptions{M: pi.M, EfConstruction: pi.EfConstruction, EfSearch: pi.EfSearch, Seed: pi.Seed}}
	}
	if err := c.Validate(); err != nil {
		return collconfig.Config{}, fmt.Errorf("%w: catalog record: %v", ErrIncompatible, err)
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
