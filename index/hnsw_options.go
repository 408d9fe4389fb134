package index

import (
	"fmt"

	"github.com/wpcdb/wpcdb/internal/wpcerr"
)

// ErrInvalidOptions is wrapped by HNSWOptions.Validate's errors.
var ErrInvalidOptions = wpcerr.New(wpcerr.InvalidArgument, "index: invalid options")

// Limits of HNSWOptions; they also bound what a persisted graph may claim.
const (
	hnswMaxM  = 1024    // so that 2M fits the uint16 degree of the format
	hnswMaxEf = 1 << 20 // far above any useful beam
)

// HNSWOptions configure an HNSW index. The zero value is valid: each zero
// field takes the default it names. The options are persisted with the
// graph and read back by LoadHNSW.
type HNSWOptions struct {
	// M is how many neighbours a new node links to and the maximum degree
	// of a node on the upper layers; layer 0 allows 2M. Larger M raises
	// recall and memory. Default 16; at least 2.
	M int
	// EfConstruction is the beam width of the search that finds a new
	// node's neighbours. Default 200.
	EfConstruction int
	// EfSearch is the default search beam width; Params.Ef overrides it
	// per search, and the effective width is max(ef, k). Default 64.
	EfSearch int
	// Seed seeds the level generator, so that the same adds in the same
	// order build the same graph. Default 0.
	Seed uint64
}

// Defaults of HNSWOptions' zero fields.
const (
	DefaultM              = 16
	DefaultEfConstruction = 200
	DefaultEfSearch       = 64
)

// EnsureDefaults replaces zero fields by their defaults.
func (o *HNSWOptions) EnsureDefaults() {
	if o.M == 0 {
		o.M = DefaultM
	}
	if o.EfConstruction == 0 {
		o.EfConstruction = DefaultEfConstruction
	}
	if o.EfSearch == 0 {
		o.EfSearch = DefaultEfSearch
	}
}

// Validate reports every invalid field (zero fields are valid: they mean
// the default).
func (o HNSWOptions) Validate() error {
	return wpcerr.Check(ErrInvalidOptions, o.Problems())
}

// Problems lists what Validate reports, one phrase each.
func (o HNSWOptions) Problems() []string {
	var errs []string
	if o.M != 0 && (o.M < 2 || o.M > hnswMaxM) {
		errs = append(errs, fmt.Sprintf("m must be between 2 and %d, got %d", hnswMaxM, o.M))
	}
	if o.EfConstruction < 0 || o.EfConstruction > hnswMaxEf {
		errs = append(errs, fmt.Sprintf("ef_construction must be between 1 and %d, got %d", hnswMaxEf, o.EfConstruction))
	}
	if o.EfSearch < 0 || o.EfSearch > hnswMaxEf {
		errs = append(errs, fmt.Sprintf("ef_search must be between 1 and %d, got %d", hnswMaxEf, o.EfSearch))
	}
	return errs
}
