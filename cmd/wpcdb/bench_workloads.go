package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// workloadFlags are the bench flags of the fmnist and file workloads and of
// the ground-truth cache.
type workloadFlags struct {
	repr       string // fmnist: pixels or patches
	input      string // file: items
	queryInput string // file: queries
	truthCache string // directory, or "" / "none" for no cache
}

func (f *workloadFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.repr, "fmnist-repr", bench.FMNISTPatches, "fmnist: pixels (one 784-dim point per image, linear kernel) or patches (the demo's patch clouds, gaussian(4) on raw points, cosine)")
	fl.StringVar(&f.input, "input", "", "file: items as JSONL, the format of wpcdb ingest")
	fl.StringVar(&f.queryInput, "query-input", "", "file: queries as JSONL (an id on a line is ignored)")
	fl.StringVar(&f.truthCache, "truth-cache", defaultTruthCache(), `directory caching exact top-k answers by data, kernel, score mode and k ("" or none: no cache)`)
}

// defaultTruthCache is $XDG_CACHE_HOME/wpcdb/truth (or the OS's cache
// directory), or none when there is no such directory.
func defaultTruthCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "none"
	}
	return filepath.Join(dir, "wpcdb", "truth")
}

// benchWorkload is what a search workload hands the bench command.
type benchWorkload struct {
	source      bench.Source
	synth       *bench.Synth // generated workloads only (the peers need it)
	n           int
	queries     []wpcsim.Cloud
	queryPoints int // generated workloads
	coll        wpcdb.CollectionConfig
	data        string         // identity of items and queries, for the truth key
	config      map[string]any // report.json's config
}

// benchSettings are the flags every search workload reads.
type benchSettings struct {
	workload        string
	n, queries      int
	kernel, score   string
	encoding        string
	seed            uint64
	topK            int
	nSet, qSet      bool // --n, --queries given
	kernelSet       bool // --kernel given
	scoreSet        bool // --score given
	encodingSet     bool // --encoding given
	fmnistDir, repr string
}

func settingsOf(cmd *cobra.Command, workload string, n, queries int, kernel, score, encoding string, seed uint64, topK int, fmnistDir string, wf workloadFlags) benchSettings {
	ch := cmd.Flags().Changed
	return benchSettings{workload: workload, n: n, queries: queries, kernel: kernel, score: score, encoding: encoding, seed: seed, topK: topK,
		nSet: ch("n"), qSet: ch("queries"), kernelSet: ch("kernel"), scoreSet: ch("score"), encodingSet: ch("encoding"), fmnistDir: fmnistDir, repr: wf.repr}
}

// similarity parses --kernel and --score over a workload's defaults.
func (s benchSettings) similarity(def wpcsim.Config) (wpcsim.Config, error) {
	sim := def
	if s.kernelSet || def.Kernel.IsZero() {
		k, err := wpcsim.ParseKernel(s.kernel)
		if err != nil {
			return sim, err
		}
		sim.Kernel = k
	}
	if s.scoreSet || def.Kernel.IsZero() {
		mode, err := wpcsim.ParseScoreMode(s.score)
		if err != nil {
			return sim, err
		}
		sim.Score = mode
	}
	return sim, nil
}

func (s benchSettings) pointEncoding(def string) (collconfig.Encoding, error) {
	if !s.encodingSet {
		s.encoding = def
	}
	return collconfig.ParseEncoding(s.encoding)
}

// synthWorkload is paper or compact: generated clouds.
func synthWorkload(s benchSettings) (*benchWorkload, error) {
	var shape bench.Synth
	defN, defEnc, qpts := 0, "", 8
	switch s.workload {
	case "paper":
		shape, defN, defEnc, qpts = bench.PaperShape, 10_000, "f16", 77
	case "compact":
		shape, defN, defEnc = bench.CompactShape, 1_000_000, "f32"
	case "colbert":
		return colbertWorkload(s)
	default:
		return nil, usageError{fmt.Errorf("bench: unknown workload %q (want paper, compact, colbert, fmnist, file, fmnist-knn or load)", s.workload)}
	}
	n := s.n
	if !s.nSet {
		n = defN
	}
	sim, err := s.similarity(wpcsim.Config{})
	if err != nil {
		return nil, err
	}
	enc, err := s.pointEncoding(defEnc)
	if err != nil {
		return nil, err
	}
	synth := bench.NewSynth(shape, s.seed)
	w := &benchWorkload{synth: synth, source: nil, n: n, queryPoints: qpts,
		coll:   wpcdb.CollectionConfig{Dim: shape.Dim, MaxPoints: max(shape.MaxPoints, collconfig.DefaultMaxPoints), Encoding: enc, Similarity: sim},
		data:   fmt.Sprintf("synth n=%d seed=%d dim=%d points=%d..%d query_points=%d encoding=%s", n, s.seed, shape.Dim, shape.MinPoints, shape.MaxPoints, qpts, enc),
		config: map[string]any{"n": n, "seed": s.seed, "dim": shape.Dim, "min_points": shape.MinPoints, "max_points": shape.MaxPoints},
	}
	w.queries = make([]wpcsim.Cloud, s.queries)
	for j := range w.queries {
		w.queries[j] = synth.Query(j, qpts)
	}
	return w, nil
}

// colbertWorkload is ColBERT-shaped documents and queries (bench.Colbert)
// under MaxSim: 5,000 documents by default, points stored as f16.
func colbertWorkload(s benchSettings) (*benchWorkload, error) {
	n := 5_000
	if s.nSet {
		n = s.n
	}
	maxsim, err := wpcsim.ParseKernel("maxsim")
	if err != nil {
		return nil, err
	}
	sim, err := s.similarity(wpcsim.Config{Kernel: maxsim})
	if err != nil {
		return nil, err
	}
	enc, err := s.pointEncoding("f16")
	if err != nil {
		return nil, err
	}
	cb := bench.NewColbert(bench.ColbertShape, s.seed)
	w := &benchWorkload{source: cb, n: n, queryPoints: cb.QueryPoints,
		coll: wpcdb.CollectionConfig{Dim: cb.Dim, MaxPoints: max(cb.MaxPoints, collconfig.DefaultMaxPoints), Encoding: enc, Similarity: sim},
		data: fmt.Sprintf("colbert n=%d seed=%d dim=%d points=%d..%d query_points=%d vocab=%d topics=%d encoding=%s",
			n, s.seed, cb.Dim, cb.MinPoints, cb.MaxPoints, cb.QueryPoints, cb.Vocab, cb.Topics, enc),
		config: map[string]any{"n": n, "seed": s.seed, "dim": cb.Dim, "min_points": cb.MinPoints, "max_points": cb.MaxPoints, "query_points": cb.QueryPoints},
	}
	w.queries = make([]wpcsim.Cloud, s.queries)
	for j := range w.queries {
		w.queries[j] = cb.Query(j)
	}
	return w, nil
}

// fmnistWorkload is Fashion-MNIST: training images as items, test images
// as queries.
func fmnistWorkload(s benchSettings) (*benchWorkload, error) {
	n := 0
	if s.nSet {
		if s.n <= 0 {
			return nil, usageError{fmt.Errorf("bench: --n must be positive, got %d", s.n)}
		}
		n = s.n
	}
	fw, err := bench.NewFMNISTWorkload(s.fmnistDir, s.repr, n)
	if err != nil {
		return nil, err
	}
	sim, err := s.similarity(fw.Similarity())
	if err != nil {
		return nil, err
	}
	enc, err := s.pointEncoding("f32")
	if err != nil {
		return nil, err
	}
	q := max(0, min(s.queries, fw.Test.Len()))
	var queries []wpcsim.Cloud
	if q > 0 {
		if queries, err = fw.Queries(q); err != nil {
			return nil, err
		}
	}
	dim, maxPts := fw.Shape()
	sum := fw.DataSHA256(q)
	return &benchWorkload{source: fw, n: fw.N, queries: queries,
		coll: wpcdb.CollectionConfig{Dim: dim, MaxPoints: max(maxPts, collconfig.DefaultMaxPoints), Encoding: enc, Similarity: sim},
		data: fmt.Sprintf("fashion-mnist repr=%s n=%d queries=%d sha256=%s points=%q encoding=%s", s.repr, fw.N, q, sum, fw.Encoding(), enc),
		config: map[string]any{"n": fw.N, "repr": s.repr, "points": fw.Encoding(), "dim": dim, "max_points": maxPts,
			"raw_points": sim.RawPoints, "dataset": "Fashion-MNIST: items = training images, queries = test images", "data_sha256": sum},
	}, nil
}

// fileWorkload is the user's JSONL items and queries.
func fileWorkload(s benchSettings, wf workloadFlags) (*benchWorkload, error) {
	if wf.input == "" || wf.queryInput == "" {
		return nil, usageError{errors.New("bench: --workload file needs --input items.jsonl and --query-input queries.jsonl")}
	}
	sim, err := s.similarity(wpcsim.Config{})
	if err != nil {
		return nil, err
	}
	enc, err := s.pointEncoding("f32")
	if err != nil {
		return nil, err
	}
	opts := bench.FileOptions{RawPoints: sim.RawPoints}
	if s.nSet {
		opts.MaxItems = max(s.n, 1)
	}
	if s.qSet {
		opts.MaxQueries = max(s.queries, 1)
	}
	fw, err := bench.ReadFileWorkload(wf.input, wf.queryInput, opts)
	if err != nil {
		return nil, err
	}
	if s.qSet && s.queries <= 0 {
		fw.Queries = nil // ingest only
	}
	dim, maxPts := fw.Shape()
	return &benchWorkload{source: fw.Items, n: len(fw.Items), queries: fw.Queries,
		coll: wpcdb.CollectionConfig{Dim: dim, MaxPoints: max(maxPts, collconfig.DefaultMaxPoints), Encoding: enc, Similarity: sim},
		data: fmt.Sprintf("file items_sha256=%s queries_sha256=%s n=%d queries=%d encoding=%s", fw.ItemsSHA256, fw.QueriesSHA256, len(fw.Items), len(fw.Queries), enc),
		config: map[string]any{"n": len(fw.Items), "input": wf.input, "query_input": wf.queryInput, "items_sha256": fw.ItemsSHA256,
			"queries_sha256": fw.QueriesSHA256, "dim": dim, "max_points": maxPts},
	}, nil
}

// groundTruth loads the exact top-k from the cache, or computes it with
// every core (whatever --threads set GOMAXPROCS to for the timed runs) and
// caches it.
func (a *app) groundTruth(cmd *cobra.Command, c *wpcdb.Collection, w *benchWorkload, workload, cacheDir string, k int) ([][]string, bench.TruthInfo, error) {
	if strings.EqualFold(cacheDir, "none") {
		cacheDir = ""
	}
	cfg := bench.TruthConfig{
		Collection: c, Queries: w.queries, K: k,
		Key:   bench.NewTruthKey(workload, w.data, c.Config().Similarity, k, len(w.queries)),
		Cache: bench.TruthCache{Dir: cacheDir, Log: a.stderr},
	}
	if bar := a.progress(int64(len(w.queries)), "ground truth"); bar != nil {
		cfg.Progress = func(done, _ int) { bar.Set(done) }
		defer fmt.Fprintln(a.stderr)
	}
	prev := runtime.GOMAXPROCS(runtime.NumCPU())
	truth, info, err := bench.Truth(cmd.Context(), cfg)
	runtime.GOMAXPROCS(prev)
	if err != nil {
		return nil, info, err
	}
	switch {
	case info.Cached:
		fmt.Fprintf(a.stderr, "wpcdb: ground truth from the cache: %s (the exact run times only a few queries)\n", info.File)
	case info.File != "":
		fmt.Fprintf(a.stderr, "wpcdb: ground truth computed in %.1f s (%d queries at a time), cached in %s\n", info.Seconds, info.Threads, info.File)
	default:
		fmt.Fprintf(a.stderr, "wpcdb: ground truth computed in %.1f s (%d queries at a time), not cached\n", info.Seconds, info.Threads)
	}
	return truth, info, nil
}

// truthConfig is the truth's entry in report.json's config (a map, so that
// report.md prints its field names too).
func truthConfig(info bench.TruthInfo) map[string]any {
	return map[string]any{"cached": info.Cached, "file": info.File, "seconds": info.Seconds, "threads": info.Threads}
}
