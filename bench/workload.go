package bench

import (
	"cmp"
	"fmt"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// ErrInvalidRun marks a RunConfig that cannot run (an unknown workload, a
// missing input): for `wpcdb bench`, a usage error. The message of an
// error wrapping it names the flag.
var ErrInvalidRun = wpcerr.New(wpcerr.InvalidArgument, "bench: invalid run configuration")

func invalidRun(format string, args ...any) error {
	return wpcerr.Errorf(ErrInvalidRun, format, args...)
}

// workload is what Run ingests and searches: the items, the queries, the
// collection's configuration and how the report and the truth cache name
// them.
type workload struct {
	source  Source
	synth   *Synth // generated workloads only
	n       int
	queries []wpcsim.Cloud
	coll    wpcdb.CollectionConfig
	data    string         // identity of items and queries, for the truth key
	config  map[string]any // report.json's config
}

// newWorkload builds cfg.Workload's items and queries.
func newWorkload(cfg RunConfig) (*workload, error) {
	if cfg.N < 0 {
		return nil, invalidRun("bench: --n must be positive, got %d", cfg.N)
	}
	switch cfg.Workload {
	case "paper":
		return synthWorkload(cfg, PaperShape, 10_000, "f16", 77)
	case "compact":
		return synthWorkload(cfg, CompactShape, 1_000_000, "f32", 8)
	case "colbert":
		return colbertWorkload(cfg)
	case "fmnist":
		return fmnistWorkload(cfg)
	case "file":
		return fileWorkload(cfg)
	}
	return nil, invalidRun("bench: unknown workload %q (want paper, compact, colbert, fmnist, file, fmnist-knn or load)", cfg.Workload)
}

// similarity parses cfg.Kernel and cfg.Score over a workload's default
// (the zero Config: DefaultKernelSpec and the inner score).
func (cfg RunConfig) similarity(def wpcsim.Config) (wpcsim.Config, error) {
	sim := def
	if cfg.Kernel != "" || def.Kernel.IsZero() {
		k, err := wpcsim.ParseKernel(cmp.Or(cfg.Kernel, wpcsim.DefaultKernelSpec))
		if err != nil {
			return sim, err
		}
		sim.Kernel = k
	}
	if cfg.Score != "" || def.Kernel.IsZero() {
		mode, err := wpcsim.ParseScoreMode(cmp.Or(cfg.Score, "inner"))
		if err != nil {
			return sim, err
		}
		sim.Score = mode
	}
	return sim, nil
}

// collection is the bench collection's configuration for clouds of dim
// and at most maxPoints points, in cfg.Encoding (def unless set).
func (cfg RunConfig) collection(dim, maxPoints int, def string, sim wpcsim.Config) (wpcdb.CollectionConfig, error) {
	enc, err := collconfig.ParseEncoding(cmp.Or(cfg.Encoding, def))
	if err != nil {
		return wpcdb.CollectionConfig{}, err
	}
	return wpcdb.CollectionConfig{Dim: dim, MaxPoints: max(maxPoints, collconfig.DefaultMaxPoints), Encoding: enc, Similarity: sim, Index: cfg.Index}, nil
}

// synthWorkload is paper or compact: generated clouds, n items by
// default, queries of qpts points.
func synthWorkload(cfg RunConfig, shape Synth, n int, enc string, qpts int) (*workload, error) {
	if cfg.N > 0 {
		n = cfg.N
	}
	if cfg.Queries < 0 {
		return nil, invalidRun("bench: --queries must be at least 0 for workload %s, got %d", cfg.Workload, cfg.Queries)
	}
	sim, err := cfg.similarity(wpcsim.Config{})
	if err != nil {
		return nil, err
	}
	coll, err := cfg.collection(shape.Dim, shape.MaxPoints, enc, sim)
	if err != nil {
		return nil, err
	}
	synth := NewSynth(shape, cfg.Seed)
	w := &workload{synth: synth, source: synth.Source(), n: n, coll: coll,
		data:   fmt.Sprintf("synth n=%d seed=%d dim=%d points=%d..%d query_points=%d encoding=%s", n, cfg.Seed, shape.Dim, shape.MinPoints, shape.MaxPoints, qpts, coll.Encoding),
		config: map[string]any{"n": n, "seed": cfg.Seed, "dim": shape.Dim, "min_points": shape.MinPoints, "max_points": shape.MaxPoints},
	}
	w.queries = make([]wpcsim.Cloud, cfg.Queries)
	for j := range w.queries {
		w.queries[j] = synth.Query(j, qpts)
	}
	return w, nil
}

// colbertWorkload is ColBERT-shaped documents and queries (Colbert) under
// MaxSim: 5,000 documents by default, points stored as f16.
func colbertWorkload(cfg RunConfig) (*workload, error) {
	n := 5_000
	if cfg.N > 0 {
		n = cfg.N
	}
	if cfg.Queries < 0 {
		return nil, invalidRun("bench: --queries must be at least 0 for workload colbert, got %d", cfg.Queries)
	}
	maxsim, err := wpcsim.ParseKernel("maxsim")
	if err != nil {
		return nil, err
	}
	sim, err := cfg.similarity(wpcsim.Config{Kernel: maxsim})
	if err != nil {
		return nil, err
	}
	cb := NewColbert(ColbertShape, cfg.Seed)
	coll, err := cfg.collection(cb.Dim, cb.MaxPoints, "f16", sim)
	if err != nil {
		return nil, err
	}
	w := &workload{source: cb, n: n, coll: coll,
		data: fmt.Sprintf("colbert n=%d seed=%d dim=%d points=%d..%d query_points=%d vocab=%d topics=%d encoding=%s",
			n, cfg.Seed, cb.Dim, cb.MinPoints, cb.MaxPoints, cb.QueryPoints, cb.Vocab, cb.Topics, coll.Encoding),
		config: map[string]any{"n": n, "seed": cfg.Seed, "dim": cb.Dim, "min_points": cb.MinPoints, "max_points": cb.MaxPoints, "query_points": cb.QueryPoints},
	}
	w.queries = make([]wpcsim.Cloud, cfg.Queries)
	for j := range w.queries {
		w.queries[j] = cb.Query(j)
	}
	return w, nil
}

// fmnistWorkload is Fashion-MNIST: training images as items, test images
// as queries.
func fmnistWorkload(cfg RunConfig) (*workload, error) {
	repr := cmp.Or(cfg.FMNISTRepr, FMNISTPatches)
	fw, err := NewFMNISTWorkload(cfg.FMNISTDir, repr, cfg.N)
	if err != nil {
		return nil, err
	}
	sim, err := cfg.similarity(fw.Similarity())
	if err != nil {
		return nil, err
	}
	dim, maxPts := fw.Shape()
	coll, err := cfg.collection(dim, maxPts, "f32", sim)
	if err != nil {
		return nil, err
	}
	q := cfg.Queries
	if q < 0 || q > fw.Test.Len() {
		q = fw.Test.Len()
	}
	var queries []wpcsim.Cloud
	if q > 0 {
		if queries, err = fw.Queries(q); err != nil {
			return nil, err
		}
	}
	sum := fw.DataSHA256(q)
	return &workload{source: fw, n: fw.N, queries: queries, coll: coll,
		data: fmt.Sprintf("fashion-mnist repr=%s n=%d queries=%d sha256=%s points=%q encoding=%s", repr, fw.N, q, sum, fw.Encoding(), coll.Encoding),
		config: map[string]any{"n": fw.N, "repr": repr, "points": fw.Encoding(), "dim": dim, "max_points": maxPts,
			"raw_points": sim.RawPoints, "dataset": "Fashion-MNIST: items = training images, queries = test images", "data_sha256": sum},
	}, nil
}

// fileWorkload is the user's JSONL items and queries.
func fileWorkload(cfg RunConfig) (*workload, error) {
	if cfg.Input == "" || cfg.QueryInput == "" {
		return nil, invalidRun("bench: --workload file needs --input items.jsonl and --query-input queries.jsonl")
	}
	sim, err := cfg.similarity(wpcsim.Config{})
	if err != nil {
		return nil, err
	}
	opts := FileOptions{RawPoints: sim.RawPoints, MaxItems: cfg.N}
	if cfg.Queries >= 0 {
		// 0 queries is an ingest-only run; the file is still read (and
		// checked) as far as its first query.
		opts.MaxQueries = max(cfg.Queries, 1)
	}
	fw, err := ReadFileWorkload(cfg.Input, cfg.QueryInput, opts)
	if err != nil {
		return nil, err
	}
	if cfg.Queries == 0 {
		fw.Queries = nil
	}
	dim, maxPts := fw.Shape()
	coll, err := cfg.collection(dim, maxPts, "f32", sim)
	if err != nil {
		return nil, err
	}
	return &workload{source: fw.Items, n: len(fw.Items), queries: fw.Queries, coll: coll,
		data: fmt.Sprintf("file items_sha256=%s queries_sha256=%s n=%d queries=%d encoding=%s", fw.ItemsSHA256, fw.QueriesSHA256, len(fw.Items), len(fw.Queries), coll.Encoding),
		config: map[string]any{"n": len(fw.Items), "input": cfg.Input, "query_input": cfg.QueryInput, "items_sha256": fw.ItemsSHA256,
			"queries_sha256": fw.QueriesSHA256, "dim": dim, "max_points": maxPts},
	}, nil
}
