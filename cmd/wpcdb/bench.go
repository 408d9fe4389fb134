package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func (a *app) benchCommand() *cobra.Command {
	var (
		workload string
		n        int
		kernel   string
		encoding string
		seed     uint64
		threads  int
		out      string
		queries  int
		topK     int
		peers    bool
		score    string
		fmnist   fmnistFlags
		load     loadFlags
		ic       storage.IndexConfig
	)
	cmd := &cobra.Command{
		Use:   "bench --workload paper|compact --out DIR | bench --workload load --addr HOST:PORT [--clients N] [--duration D]",
		Short: "Run a benchmark workload and write report.json",
		Long: `bench generates a synthetic workload of learned-looking clouds (signed weights,
clustered, anisotropic points), ingests it into a fresh database under DIR and
reports items/s, points/s, MB/s, bytes on disk per item and peak RSS in
DIR/report.json. Then, unless --queries 0, it measures search: the exact scan
(the ground truth) and the two-stage search at several first-stage depths, one
query at a time with --threads scoring goroutines (default 1), reporting
recall@k, queries/s and p50/p99 latency as "runs". Workloads: paper (197 points ×
512 dims, f16 by default, 10,000 items; queries of 77 points), compact (4–16
points × 64 dims, 1,000,000 items; queries of 8 points).
--workload load drives a running server (--addr): it recreates --collection
with --n compact items (default 10,000), then --clients concurrent clients
search (k from -k, queries of 8 points), or with --write-fraction also upsert,
back to back for --duration, and reports requests/s and p50/p99 latency.`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			if workload == "load" {
				return a.benchLoad(cmd, load, n, kernel, seed, topK, out)
			}
			if out == "" {
				return usageError{fmt.Errorf("bench: --out DIR is required")}
			}
			if workload == "fmnist-knn" {
				return a.runFMNIST(cmd, out, threads, fmnist)
			}
			var shape bench.Synth
			defN, defEnc := 0, ""
			switch workload {
			case "paper":
				shape, defN, defEnc = bench.PaperShape, 10_000, "f16"
			case "compact":
				shape, defN, defEnc = bench.CompactShape, 1_000_000, "f32"
			default:
				return usageError{fmt.Errorf("bench: unknown workload %q (want paper, compact, fmnist-knn or load)", workload)}
			}
			if !cmd.Flags().Changed("n") {
				n = defN
			}
			if !cmd.Flags().Changed("encoding") {
				encoding = defEnc
			}
			k, err := wpcsim.ParseKernel(kernel)
			if err != nil {
				return err
			}
			mode, err := wpcsim.ParseScoreMode(score)
			if err != nil {
				return err
			}
			enc, err := storage.ParseEncoding(encoding)
			if err != nil {
				return err
			}
			if threads > 0 {
				runtime.GOMAXPROCS(threads)
			}
			dataDir := filepath.Join(out, "data")
			if err := os.RemoveAll(dataDir); err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			cfg := bench.IngestConfig{
				Dir: dataDir, Synth: bench.NewSynth(shape, seed), N: n,
				Collection: wpcdb.CollectionConfig{Dim: shape.Dim, MaxPoints: max(shape.MaxPoints, storage.DefaultMaxPoints), Encoding: enc, Similarity: wpcsim.Config{Kernel: k, Score: mode}, Index: ic},
			}
			if bar := a.progress(int64(n), "ingest"); bar != nil {
				bar.Describe("ingest (items)")
				cfg.Progress = func(done int) { bar.Set(done) }
				defer fmt.Fprintln(a.stderr)
			}
			rep, err := bench.Ingest(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, rep.String())
			searchThreads := threads
			if searchThreads <= 0 {
				searchThreads = 1
			}
			runs := []bench.Run{}
			var skipped map[string]string
			if queries > 0 {
				db, err := wpcdb.Open(dataDir, &wpcdb.Options{Parallelism: searchThreads})
				if err != nil {
					return err
				}
				c, err := db.Collection("bench")
				if err != nil {
					db.Close()
					return err
				}
				if err := c.WaitIndex(cmd.Context()); err != nil { // searches measure the built index
					db.Close()
					return err
				}
				qpts := 8
				if workload == "paper" {
					qpts = 77
				}
				sc := bench.SearchConfig{Collection: c, Synth: cfg.Synth, Queries: queries, QueryPoints: qpts, K: topK}
				if bar := a.progress(int64(queries*7), "search"); bar != nil {
					sc.Progress = func(done, _ int) { bar.Set(done) }
					defer fmt.Fprintln(a.stderr)
				}
				var truth [][]string
				runs, truth, err = bench.Search(cmd.Context(), sc)
				db.Close()
				if err != nil {
					return err
				}
				if peers {
					peerRuns, why, err := a.runPeers(cmd, out, bench.PeerInput{
						Synth: cfg.Synth, N: n, Queries: queries, QueryPoints: qpts, Truth: itemIndices(truth),
						Kernel: k, Norm: cfg.Collection.Similarity.Norm, Score: mode, Candidates: []int{50, 100, 200, 400},
					})
					if err != nil {
						return err
					}
					runs, skipped = append(runs, peerRuns...), why
				} else {
					skipped = map[string]string{"python-pipelines": "--peers=false"}
				}
				for _, r := range runs {
					fmt.Fprintf(a.stdout, "%-16s %-8v recall@%d %.3f  %8.1f q/s  p50 %7.2f ms  p99 %7.2f ms  reranked %.0f  (%d thread)\n",
						r.Method, r.Params["candidates"], topK, r.Recall, r.QPS, r.P50Ms, r.P99Ms, r.Reranked, r.Threads)
				}
			}
			host, _ := os.Hostname()
			report := bench.Report{
				Workload: workload,
				Config:   map[string]any{"n": n, "kernel": k.String(), "score": mode.String(), "encoding": enc.String(), "seed": seed, "dim": shape.Dim, "min_points": shape.MinPoints, "max_points": shape.MaxPoints, "queries": queries, "k": topK, "index": ic},
				Machine:  map[string]any{"host": host, "cpus": runtime.NumCPU(), "goos": runtime.GOOS, "goarch": runtime.GOARCH, "go": runtime.Version(), "date": time.Now().UTC().Format(time.RFC3339)},
				Ingest:   &rep,
				Runs:     runs,
				Skipped:  skipped,
			}
			if err := report.Write(out); err != nil {
				return err
			}
			if a.g.json {
				return a.printJSON(report)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&workload, "workload", "paper", "paper, compact or fmnist-knn (k-NN accuracy of patch clouds on Fashion-MNIST)")
	fl.IntVar(&n, "n", 0, "items (default 10,000 for paper, 1,000,000 for compact)")
	fl.StringVar(&kernel, "kernel", wpcsim.DefaultKernelSpec, "kernel spec of the collection")
	fl.StringVar(&score, "score", "inner", "score mode: inner, cosine or mmd")
	fl.StringVar(&encoding, "encoding", "", "point encoding (default f16 for paper, f32 for compact)")
	fl.Uint64Var(&seed, "seed", 1, "workload seed")
	fl.IntVar(&threads, "threads", 0, "GOMAXPROCS for the run (0: all cores)")
	fl.StringVar(&out, "out", "", "output directory (report.json, and the database under data/)")
	fl.IntVar(&queries, "queries", 20, "queries for the search sweep (0: ingest only)")
	fl.IntVar(&topK, "k", 10, "hits per query")
	fl.BoolVar(&peers, "peers", true, "also run the peers on the same data (bench/install-peers.sh installs them): usearch and hnswlib over wpcdb's first-stage vectors, hnswlib/FAISS/usearch + NumPy exact rerank, LanceDB multivector for maxsim")
	fl.StringVar(&ic.Kind, "index", storage.IndexAuto, "first-stage index of the collection: auto, flat or hnsw")
	fl.IntVar(&ic.GraphAt, "graph-at", storage.DefaultGraphAt, "auto index: collection size at which the HNSW graph is built")
	fmnist.register(fl)
	load.register(fl)
	return cmd
}

// runPeers exports the workload, with wpcdb's first-stage vectors built
// from the bench collection's stored config, and runs the peers on it
// (bench/peers-node/peers.js, then bench/peers.py).
func (a *app) runPeers(cmd *cobra.Command, out string, in bench.PeerInput) ([]bench.Run, map[string]string, error) {
	dir := filepath.Join(out, "peers")
	if in.Collection.Dim == 0 {
		db, err := wpcdb.Open(filepath.Join(out, "data"), nil)
		if err != nil {
			return nil, nil, err
		}
		c, err := db.Collection("bench")
		if err == nil {
			in.Collection = c.Config()
		}
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if err := bench.ExportForPeers(dir, in); err != nil {
		return nil, nil, err
	}
	runs, skipped, err := bench.RunPeers(cmd.Context(), bench.Peers{}, dir)
	if err != nil {
		return nil, nil, err
	}
	for name, why := range skipped {
		fmt.Fprintf(a.stderr, "wpcdb: peer %s skipped: %s\n", name, why)
	}
	return runs, skipped, nil
}

// itemIndices turns "item-<i>" IDs into indices.
func itemIndices(ids [][]string) [][]int {
	out := make([][]int, len(ids))
	for j, row := range ids {
		for _, id := range row {
			var i int
			fmt.Sscanf(id, "item-%d", &i)
			out[j] = append(out[j], i)
		}
	}
	return out
}
