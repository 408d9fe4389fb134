package wpcsim

import (
	"fmt"
	"strings"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// Norm is the normalization constant c of PAPER.md.
type Norm uint8

const (
	// NormMean is c = 1/(N·M), the paper's mean over token pairs (default).
	NormMean Norm = iota
	// NormSum is c = 1.
	NormSum
)

func (n Norm) String() string {
	switch n {
	case NormMean:
		return "mean"
	case NormSum:
		return "sum"
	}
	return fmt.Sprintf("Norm(%d)", uint8(n))
}

// ParseNorm parses "mean" or "sum".
func ParseNorm(s string) (Norm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "mean":
		return NormMean, nil
	case "sum":
		return NormSum, nil
	}
	return 0, fmt.Errorf("%w: norm %q: want mean or sum", ErrInvalidConfig, s)
}

// ScoreMode says how a search ranks items by g.
type ScoreMode uint8

const (
	// ScoreInner is g(Q, X) itself, the paper's similarity (default).
	ScoreInner ScoreMode = iota
	// ScoreCosine is g(Q,X) / sqrt(g(Q,Q) g(X,X)), the cosine of the kernel
	// mean embeddings.
	ScoreCosine
	// ScoreMMD is sqrt(g(Q,Q) + g(X,X) - 2 g(Q,X)), a distance: smaller is
	// closer.
	ScoreMMD
)

func (s ScoreMode) String() string {
	switch s {
	case ScoreInner:
		return "inner"
	case ScoreCosine:
		return "cosine"
	case ScoreMMD:
		return "mmd"
	}
	return fmt.Sprintf("ScoreMode(%d)", uint8(s))
}

// LowerIsCloser reports whether smaller scores rank first (mmd).
func (s ScoreMode) LowerIsCloser() bool { return s == ScoreMMD }

// ParseScoreMode parses "inner", "cosine" or "mmd".
func ParseScoreMode(s string) (ScoreMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "inner":
		return ScoreInner, nil
	case "cosine":
		return ScoreCosine, nil
	case "mmd":
		return ScoreMMD, nil
	}
	return 0, fmt.Errorf("%w: score mode %q: want inner, cosine or mmd", ErrInvalidConfig, s)
}

// Config is the similarity a collection is searched with. The zero value is
// the paper's: kernel 0.667*linear+0.333*gaussian(0.5), mean normalization,
// points L2-normalized, score inner.
type Config struct {
	// Kernel is the kernel spec; zero means DefaultKernel.
	Kernel Kernel
	// Norm is the normalization constant; default NormMean.
	Norm Norm
	// RawPoints uses points as given instead of L2-normalizing them first
	// (default false: normalized, as in the paper).
	RawPoints bool
	// Score is the score mode; default ScoreInner. MaxSim allows only
	// ScoreInner.
	Score ScoreMode
}

// WithDefaults returns c with unset fields replaced by their defaults.
func (c Config) WithDefaults() Config {
	if c.Kernel.IsZero() {
		c.Kernel = DefaultKernel()
	}
	return c
}

// Validate checks c after defaults and reports every problem found.
func (c Config) Validate() error {
	return wpcerr.Check(ErrInvalidConfig, c.Problems())
}

// Problems lists what Validate reports, one phrase each (a caller checking
// a larger configuration adds them to its own list).
func (c Config) Problems() []string {
	c = c.WithDefaults()
	var problems []string
	if p := c.Kernel.problem(); p != "" {
		problems = append(problems, p)
	}
	if c.Norm > NormSum {
		problems = append(problems, fmt.Sprintf("unknown norm %d", c.Norm))
	}
	if c.Score > ScoreMMD {
		problems = append(problems, fmt.Sprintf("unknown score mode %d", c.Score))
	} else if c.Kernel.IsMaxSim() && c.Score != ScoreInner {
		problems = append(problems, fmt.Sprintf("score mode %s is not defined for maxsim (maxsim is not a positive semi-definite kernel on clouds); use inner", c.Score))
	}
	return problems
}

// scale returns the normalization constant c for clouds of n and m points.
func (c Config) scale(n, m int) float64 {
	if c.Norm == NormSum {
		return 1
	}
	return 1 / (float64(n) * float64(m))
}
