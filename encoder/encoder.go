package encoder

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/wpcdb/wpcdb/internal/parallel"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Errors a caller can test with errors.Is.
var (
	// ErrInput wraps every error about an input that cannot be encoded: an
	// unreadable or malformed file, an empty image or text.
	ErrInput = errors.New("encoder: bad input")
	// ErrOptions wraps every error about invalid options or a model that
	// does not fit them.
	ErrOptions = errors.New("encoder: invalid options")
	// ErrUnknown is returned by New for a name that is not registered.
	ErrUnknown = errors.New("encoder: unknown encoder")
)

// Input is one thing to encode and the ID its cloud gets. Data's type is the
// encoder's: *Image for "patch", string for "text", Tokens for "tokens".
type Input struct {
	ID   string
	Data any
}

// Encoder turns inputs into clouds. Implementations are immutable and safe
// for concurrent use.
type Encoder interface {
	// Name is the registered name ("patch", "text", "tokens").
	Name() string
	// Dim is the dimension of every point the encoder produces.
	Dim() int
	// Encode encodes one input. The cloud passes wpcsim's validation with
	// points normalized (no zero point, finite values, at least one point).
	Encode(in Input) (wpcsim.Cloud, error)
	// EncodeBatch encodes many inputs in parallel; cloud i is ins[i]'s.
	// The first error (in input order) fails the call.
	EncodeBatch(ins []Input) ([]wpcsim.Cloud, error)
	// Read calls fn with each input found in the file at path, in file
	// order: one for an image or a text file, one per image of an IDX
	// file, per line of text with TextOptions.Lines, per row of a .npy.
	// It stops at fn's first error and returns it.
	Read(path string, fn func(Input) error) error
}

// Fitter accumulates inputs for the fitted part of an encoder (a PCA of
// patches, the IDF of a corpus). Not safe for concurrent use.
type Fitter interface {
	Add(in Input) error
	// Model returns the fitted model; call it once, after the last Add.
	Model() (*Model, error)
}

// Fittable is an Encoder with a fitted part.
type Fittable interface {
	Encoder
	// NewFitter starts a fit with the encoder's options.
	NewFitter() (Fitter, error)
}

// Config holds the options of every encoder; New uses the part named by the
// encoder. The zero value is valid (each encoder's defaults).
type Config struct {
	Patch  PatchOptions
	Text   TextOptions
	Tokens TokensOptions
	// Model is the fitted part from `wpcdb encode fit` (nil: none). Its
	// Encoder must match the encoder made.
	Model *Model
}

// Factory makes an encoder from a Config.
type Factory func(cfg Config) (Encoder, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register adds a named encoder. It panics if the name is taken, like
// database/sql.Register: registration happens at init.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, ok := registry[name]; ok {
		panic("encoder: Register called twice for " + name)
	}
	registry[name] = f
}

// Names lists the registered encoders, sorted.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var names []string
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New makes the named encoder from cfg.
func New(name string, cfg Config) (Encoder, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w %q (have %v)", ErrUnknown, name, Names())
	}
	if cfg.Model != nil && cfg.Model.Encoder != name {
		return nil, fmt.Errorf("%w: the model was fitted for encoder %q, not %q", ErrOptions, cfg.Model.Encoder, name)
	}
	return f(cfg)
}

func init() {
	Register("patch", func(cfg Config) (Encoder, error) { return NewPatch(cfg.Patch, cfg.Model) })
	Register("text", func(cfg Config) (Encoder, error) { return NewText(cfg.Text, cfg.Model) })
	Register("tokens", func(cfg Config) (Encoder, error) { return NewTokens(cfg.Tokens) })
}

// encodeBatch runs encode over ins on GOMAXPROCS goroutines.
func encodeBatch(ins []Input, encode func(Input) (wpcsim.Cloud, error)) ([]wpcsim.Cloud, error) {
	out := make([]wpcsim.Cloud, len(ins))
	errs := make([]error, len(ins))
	parallel.For(len(ins), 0, func(i int) { out[i], errs[i] = encode(ins[i]) })
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inputErr wraps ErrInput with the input's ID.
func inputErr(id string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInput, id, fmt.Sprintf(format, args...))
}

// dropZeroPoints removes points that are exactly zero (they have no
// direction: wpcsim refuses them under point normalization) and points of
// weight 0 (they add nothing to any similarity).
func dropZeroPoints(c wpcsim.Cloud) wpcsim.Cloud {
	d := c.Dim
	keep := 0
	for i := range c.Weights {
		p := c.Points[i*d : (i+1)*d]
		nonzero := false
		for _, v := range p {
			if v != 0 {
				nonzero = true
				break
			}
		}
		if !nonzero || c.Weights[i] == 0 {
			continue
		}
		c.Weights[keep] = c.Weights[i]
		copy(c.Points[keep*d:], p)
		keep++
	}
	c.Weights, c.Points = c.Weights[:keep], c.Points[:keep*d]
	return c
}
