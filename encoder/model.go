package encoder

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
)

// ModelFormat names the model file format; ModelVersion is its version.
// A reader refuses other formats and newer versions.
const (
	ModelFormat  = "wpcdb-encoder-model"
	ModelVersion = 1
)

// Model is the fitted part of an encoder, saved as one small JSON file:
//
//	{"format": "wpcdb-encoder-model", "version": 1, "encoder": "patch",
//	 "pca": {"input_dim": 49, "mean": [...49], "components": [[...49], ...d]},
//	 "patch": {...the PatchOptions it was fitted with...}}
//
//	{"format": "wpcdb-encoder-model", "version": 1, "encoder": "text",
//	 "idf": {"docs": 1000, "min_df": 2, "df": {"word": 17, ...}}}
type Model struct {
	Format  string        `json:"format"`
	Version int           `json:"version"`
	Encoder string        `json:"encoder"`
	PCA     *PCA          `json:"pca,omitempty"`
	Patch   *PatchOptions `json:"patch,omitempty"`
	IDF     *IDF          `json:"idf,omitempty"`
}

// PCA is a fitted principal-component projection: y = C·(x - Mean), one row
// of Components per output dimension, largest variance first.
type PCA struct {
	InputDim   int         `json:"input_dim"`
	Mean       []float64   `json:"mean"`
	Components [][]float64 `json:"components"`
	// Variance is the variance along each component (its eigenvalue).
	Variance []float64 `json:"variance"`
}

// IDF is the document frequency of each token in a fitted corpus.
type IDF struct {
	Docs int `json:"docs"`
	// MinDF: tokens seen in fewer documents were left out of DF (they get
	// the IDF of an unseen token, within ln 3 of theirs).
	MinDF int            `json:"min_df"`
	DF    map[string]int `json:"df"`
}

// Weight is the BM25 inverse document frequency ln(1 + (N - df + 0.5) /
// (df + 0.5)), positive for every df ≤ N.
func (f *IDF) Weight(token string) float64 {
	if f == nil {
		return 1
	}
	df := float64(f.DF[token])
	n := float64(f.Docs)
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// Save writes m to path as JSON.
func (m *Model) Save(path string) error {
	m.Format, m.Version = ModelFormat, ModelVersion
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LoadModel reads and checks a model file.
func LoadModel(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m Model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: model %s: %v", ErrOptions, path, err)
	}
	if m.Format != ModelFormat {
		return nil, fmt.Errorf("%w: model %s: format %q is not %q", ErrOptions, path, m.Format, ModelFormat)
	}
	if m.Version < 1 || m.Version > ModelVersion {
		return nil, fmt.Errorf("%w: model %s: version %d is not supported (this build reads 1 to %d)", ErrOptions, path, m.Version, ModelVersion)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%w: model %s: %v", ErrOptions, path, err)
	}
	return &m, nil
}

func (m *Model) validate() error {
	switch m.Encoder {
	case "patch":
		p := m.PCA
		if p == nil {
			return fmt.Errorf("patch model has no pca")
		}
		if len(p.Mean) != p.InputDim || len(p.Components) == 0 {
			return fmt.Errorf("pca: mean has %d values for input_dim %d, %d components", len(p.Mean), p.InputDim, len(p.Components))
		}
		for i, c := range p.Components {
			if len(c) != p.InputDim {
				return fmt.Errorf("pca: component %d has %d values, want %d", i, len(c), p.InputDim)
			}
		}
	case "text":
		if m.IDF == nil || m.IDF.Docs <= 0 {
			return fmt.Errorf("text model has no idf or no documents")
		}
		for t, df := range m.IDF.DF {
			if df < 0 || df > m.IDF.Docs {
				return fmt.Errorf("idf: token %q has df %d outside [0, %d]", t, df, m.IDF.Docs)
			}
		}
	default:
		return fmt.Errorf("encoder %q has no fitted model", m.Encoder)
	}
	return nil
}
