package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// benchFlags are bench's flags: a bench.RunConfig, and what the fmnist-knn
// and load workloads take besides.
type benchFlags struct {
	run                     bench.RunConfig
	kernel, score, encoding string // set in run only when given
	threads                 int
	knn                     bench.FMNISTConfig
	load                    bench.LoadConfig
}

func (a *app) benchCommand() *cobra.Command {
	var f benchFlags
	cmd := &cobra.Command{
		Use:   "bench --workload paper|compact|colbert|fmnist|file --out DIR | bench --workload load --addr HOST:PORT [--clients N] [--duration D]",
		Short: "Run a benchmark workload and write report.json",
		Long: `bench ingests a workload into a fresh database under DIR and reports items/s,
points/s, MB/s, bytes on disk per item and peak RSS in DIR/report.json (with
report.md and recall_qps.png). Then, unless --queries 0, it measures search: the
exact scan and the two-stage search at several first-stage depths, one query at a
time with --threads scoring goroutines (default 1), reporting recall@k, queries/s
and p50/p99 latency as "runs". Workloads:
  paper    generated learned-looking clouds (signed weights, clustered,
           anisotropic points) of 197 points × 512 dims, f16 by default, 10,000
           items; queries of 77 points
  compact  generated, 4–16 points × 64 dims, 1,000,000 items; queries of 8 points
  colbert  ColBERT-shaped token embeddings under maxsim: 60–300 points × 128
           dims (topic-clustered tokens, near duplicates, a Zipf long tail), f16,
           5,000 items; queries of 32 unit-weight points
  fmnist   Fashion-MNIST (Debian's dataset-fashion-mnist): the training images are
           the items (--n caps, default all 60,000), the test images the queries;
           --fmnist-repr patches (default: the demo's patch clouds, gaussian(4) on
           raw points, cosine) or pixels (one 784-dim point, linear kernel)
  file     your own clouds: --input items.jsonl --query-input queries.jsonl in
           the format ingest reads; --kernel and --score set the collection, the
           dimension comes from the data
The ground truth (the exact top-k of every query) is computed on every core, a
few queries at a time, and cached under --truth-cache keyed by the data, kernel,
score mode and k; the "exact" run then times the exact scan on a few queries
(its params say how many) at the timed runs' thread count. For maxsim
collections the other first stage (FDE or the point index, whichever calibration
did not choose) is measured too, as method "wpcdb-fde" or "wpcdb-points".
--workload fmnist-knn measures k-NN classification accuracy instead.
--workload load drives a running server (--addr): it recreates --collection
with --n compact items (default 10,000), then --clients concurrent clients
search (k from -k, queries of 8 points), or with --write-fraction also upsert,
back to back for --duration, and reports requests/s and p50/p99 latency.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.threads > 0 {
				runtime.GOMAXPROCS(f.threads)
			}
			switch f.run.Workload {
			case "load":
				return a.benchLoad(cmd, f)
			case "fmnist-knn":
				return a.benchKNN(cmd, f)
			}
			rc := f.runConfig(cmd)
			rc.CloudCacheBytes, rc.PointCacheBytes = cacheBytes(a.g.cloudCacheMB), cacheBytes(a.g.pointCacheMB)
			rc.Log = a.stderr
			progress, done := a.stageProgress()
			rc.Progress = progress
			rep, err := bench.Run(cmd.Context(), rc)
			done()
			if err != nil {
				return benchError(err)
			}
			if a.g.json {
				return a.printJSON(rep)
			}
			_, err = fmt.Fprint(a.stdout, rep.Summary())
			return err
		},
	}
	f.register(cmd.Flags())
	return cmd
}

// runConfig is the RunConfig of the flags: --kernel, --score and
// --encoding only when given (else the workload's defaults), and every
// query of a file workload unless --queries is given.
func (f *benchFlags) runConfig(cmd *cobra.Command) bench.RunConfig {
	rc, given := f.run, cmd.Flags().Changed
	rc.Threads = f.threads
	if given("kernel") {
		rc.Kernel = f.kernel
	}
	if given("score") {
		rc.Score = f.score
	}
	if given("encoding") {
		rc.Encoding = f.encoding
	}
	if rc.Workload == "file" && !given("queries") {
		rc.Queries = bench.AllQueries
	}
	return rc
}

func (f *benchFlags) register(fl *pflag.FlagSet) {
	r := &f.run
	fl.StringVar(&r.Workload, "workload", "paper", "paper, compact, colbert, fmnist, file, fmnist-knn (k-NN accuracy of patch clouds on Fashion-MNIST) or load")
	fl.IntVar(&r.N, "n", 0, "items (default 10,000 for paper, 1,000,000 for compact, all for fmnist and file)")
	fl.StringVar(&f.kernel, "kernel", wpcsim.DefaultKernelSpec, "kernel spec of the collection (fmnist: by --fmnist-repr unless given)")
	fl.StringVar(&f.score, "score", "inner", "score mode: inner, cosine or mmd (fmnist: by --fmnist-repr unless given)")
	fl.StringVar(&f.encoding, "encoding", "", "point encoding (default f16 for paper, f32 otherwise)")
	fl.Uint64Var(&r.Seed, "seed", 1, "workload seed")
	fl.IntVar(&f.threads, "threads", 0, "GOMAXPROCS for the run (0: all cores)")
	fl.StringVar(&r.CPUProfile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the timed load, from the first upsert to the last acknowledgement, to this file")
	fl.StringVar(&r.Out, "out", "", "output directory (report.json, and the database under data/)")
	fl.IntVar(&r.Queries, "queries", 20, "queries for the search sweep (0: ingest only; file: default all)")
	fl.IntVar(&r.K, "k", 10, "hits per query")
	fl.BoolVar(&r.Peers, "peers", true, "also run the peers on the same data (bench/install-peers.sh installs them): usearch and hnswlib over wpcdb's first-stage vectors, hnswlib/FAISS/usearch + NumPy exact rerank, LanceDB multivector for maxsim")
	fl.DurationVar(&r.PeerTimeout, "peer-timeout", 0, "kill a peer program (peers.js: usearch and LanceDB; peers.py) still running after this long, keeping the runs it finished and listing the rest as skipped (0: no limit)")
	fl.StringVar(&r.Index.Kind, "index", collconfig.IndexAuto, "first-stage index of the collection: auto, flat or hnsw")
	fl.IntVar(&r.Index.GraphAt, "graph-at", 0, "auto index: collection size at which the HNSW graph is built (0: once a scan would read 4M floats)")
	fl.StringVar(&r.FMNISTRepr, "fmnist-repr", bench.FMNISTPatches, "fmnist: pixels (one 784-dim point per image, linear kernel) or patches (the demo's patch clouds, gaussian(4) on raw points, cosine)")
	fl.StringVar(&r.Input, "input", "", "file: items as JSONL, the format of wpcdb ingest")
	fl.StringVar(&r.QueryInput, "query-input", "", "file: queries as JSONL (an id on a line is ignored)")
	fl.StringVar(&r.TruthCache, "truth-cache", defaultTruthCache(), `directory caching exact top-k answers by data, kernel, score mode and k ("" or none: no cache)`)
	fl.StringVar(&r.FMNISTDir, "fmnist-dir", bench.FashionMNISTDir, "fmnist, fmnist-knn: directory of the Fashion-MNIST IDX files")
	fl.IntVar(&f.knn.Train, "train", 0, "fmnist-knn: training images used as references (default all 60,000)")
	fl.IntVar(&f.knn.Test, "test", 0, "fmnist-knn: test images classified (default all 10,000)")
	fl.BoolVar(&f.knn.Grid, "grid", false, "fmnist-knn: search settings on a validation split of the training images instead of scoring the test set")
	fl.IntVar(&f.knn.Val, "val", 2000, "fmnist-knn: validation queries of a --grid run (the last training images)")
	fl.IntVar(&f.load.Clients, "clients", 8, "load: concurrent clients")
	fl.DurationVar(&f.load.Duration, "duration", 10*time.Second, "load: how long the clients run")
	fl.Float64Var(&f.load.WriteFraction, "write-fraction", 0, "load: fraction of requests that are Upsert batches of 10 new items (the rest search)")
	fl.StringVar(&f.load.Collection, "collection", "bench-load", "load: the collection to (re)create on the server")
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
