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
	"github.com/wpcdb/wpcdb/collconfig"
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
		wf       workloadFlags
		load     loadFlags
		ic       collconfig.Index
	)
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
			if workload == "load" {
				return a.benchLoad(cmd, load, n, kernel, seed, topK, out)
			}
			if out == "" {
				return usageError{fmt.Errorf("bench: --out DIR is required")}
			}
			if workload == "fmnist-knn" {
				return a.runFMNIST(cmd, out, threads, fmnist)
			}
			settings := settingsOf(cmd, workload, n, queries, kernel, score, encoding, seed, topK, fmnist.dir, wf)
			var w *benchWorkload
			var err error
			switch workload {
			case "fmnist":
				w, err = fmnistWorkload(settings)
			case "file":
				w, err = fileWorkload(settings, wf)
			default:
				w, err = synthWorkload(settings)
			}
			if err != nil {
				return err
			}
			n = w.n
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
			w.coll.Index = ic
			cfg := bench.IngestConfig{Dir: dataDir, Synth: w.synth, Source: w.source, N: n, Collection: w.coll}
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
			var truthInfo *bench.TruthInfo
			var firstStage map[string]any
			if len(w.queries) > 0 {
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
				// The peers hold their data in memory; so does wpcdb's cloud
				// cache, warmed as a server about to take traffic would.
				warmed, err := c.Warm(cmd.Context())
				if err != nil {
					db.Close()
					return err
				}
				st := c.IndexStatus()
				firstStage = map[string]any{"representation": st.Representation, "dim": st.Dim, "recall": st.Recall, "kind": st.Kind,
					"first_stage_bytes": st.FirstStageBytes, "warmed_clouds": warmed}
				if st.Points != nil {
					firstStage["points"] = st.Points
				}
				fmt.Fprintf(a.stderr, "wpcdb: first stage %s (%d floats per item, calibrated recall@10 %.3f), %s index; %d clouds warmed into the cache\n",
					st.Representation, st.Dim, st.Recall, st.Kind, warmed)
				truth, info, err := a.groundTruth(cmd, c, w, workload, wf.truthCache, topK)
				if err != nil {
					db.Close()
					return err
				}
				truthInfo = &info
				sc := bench.SearchConfig{Collection: c, Clouds: w.queries, Truth: truth, K: topK}
				if bar := a.progress(int64(min(len(w.queries), 5)+len(w.queries)*6), "search"); bar != nil {
					sc.Progress = func(done, _ int) { bar.Set(done) }
					defer fmt.Fprintln(a.stderr)
				}
				runs, _, err = bench.Search(cmd.Context(), sc)
				if err == nil && c.Config().Similarity.Kernel.IsMaxSim() {
					// The first stage calibration did not choose, measured on
					// the same data in the same run.
					other := "points"
					if st.Representation == other {
						other = "fde"
					}
					if uerr := c.UseFirstStage(other); uerr != nil {
						fmt.Fprintf(a.stderr, "wpcdb: first stage %s not measured: %v\n", other, uerr)
					} else {
						sc.Method, sc.Progress = "wpcdb-"+other, nil
						var more []bench.Run
						if more, _, err = bench.Search(cmd.Context(), sc); err == nil {
							runs = append(runs, more[1:]...) // more[0] is the exact scan again
							// Leave the database with the stage calibration chose.
							err = c.UseFirstStage(st.Representation)
						}
					}
				}
				db.Close()
				if err != nil {
					return err
				}
				if exact := runs[0]; exact.Recall < 1 {
					fmt.Fprintf(a.stderr, "wpcdb: warning: the exact scan of %d queries agrees with the ground truth on only %.3f of its hits (a stale cache? delete %s)\n",
						exact.Queries, exact.Recall, info.File)
				}
				switch {
				case peers:
					src := w.source
					if src == nil {
						src = w.synth.Source()
					}
					sim := w.coll.Similarity.WithDefaults()
					peerRuns, why, err := a.runPeers(cmd, out, bench.PeerInput{
						Source: src, N: n, Queries: w.queries, Truth: truth,
						Kernel: sim.Kernel, Norm: sim.Norm, RawPoints: sim.RawPoints, Score: sim.Score, Candidates: []int{50, 100, 200, 400},
						Collection: w.coll.WithDefaults(),
					})
					if err != nil {
						return err
					}
					runs, skipped = append(runs, peerRuns...), why
				default:
					skipped = map[string]string{"python-pipelines": "--peers=false"}
				}
				for _, r := range runs {
					depth := r.Params["candidates"]
					if depth == nil {
						depth = "-"
					}
					fmt.Fprintf(a.stdout, "%-16s %-8v recall@%d %.3f  %8.1f q/s  p50 %7.2f ms  p99 %7.2f ms  cpu %7.2f ms/q  reranked %.0f  (%d thread)\n",
						r.Method, depth, topK, r.Recall, r.QPS, r.P50Ms, r.P99Ms, r.CPUMsPerQuery, r.Reranked, r.Threads)
				}
			}
			host, _ := os.Hostname()
			sim := w.coll.Similarity.WithDefaults()
			config := map[string]any{"kernel": sim.Kernel.String(), "score": sim.Score.String(), "norm": sim.Norm.String(), "encoding": w.coll.Encoding.String(), "queries": len(w.queries), "k": topK, "index": w.coll.Index}
			for key, v := range w.config {
				config[key] = v
			}
			if truthInfo != nil {
				config["truth"] = truthConfig(*truthInfo)
			}
			if firstStage != nil {
				config["first_stage"] = firstStage
			}
			report := bench.Report{
				Workload: workload,
				Config:   config,
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
	fl.StringVar(&workload, "workload", "paper", "paper, compact, colbert, fmnist, file, fmnist-knn (k-NN accuracy of patch clouds on Fashion-MNIST) or load")
	fl.IntVar(&n, "n", 0, "items (default 10,000 for paper, 1,000,000 for compact, all for fmnist and file)")
	fl.StringVar(&kernel, "kernel", wpcsim.DefaultKernelSpec, "kernel spec of the collection (fmnist: by --fmnist-repr unless given)")
	fl.StringVar(&score, "score", "inner", "score mode: inner, cosine or mmd (fmnist: by --fmnist-repr unless given)")
	fl.StringVar(&encoding, "encoding", "", "point encoding (default f16 for paper, f32 otherwise)")
	fl.Uint64Var(&seed, "seed", 1, "workload seed")
	fl.IntVar(&threads, "threads", 0, "GOMAXPROCS for the run (0: all cores)")
	fl.StringVar(&out, "out", "", "output directory (report.json, and the database under data/)")
	fl.IntVar(&queries, "queries", 20, "queries for the search sweep (0: ingest only; file: default all)")
	fl.IntVar(&topK, "k", 10, "hits per query")
	fl.BoolVar(&peers, "peers", true, "also run the peers on the same data (bench/install-peers.sh installs them): usearch and hnswlib over wpcdb's first-stage vectors, hnswlib/FAISS/usearch + NumPy exact rerank, LanceDB multivector for maxsim")
	fl.StringVar(&ic.Kind, "index", collconfig.IndexAuto, "first-stage index of the collection: auto, flat or hnsw")
	fl.IntVar(&ic.GraphAt, "graph-at", 0, "auto index: collection size at which the HNSW graph is built (0: once a scan would read 4M floats)")
	fmnist.register(fl)
	wf.register(fl)
	load.register(fl)
	return cmd
}

// runPeers exports the workload, with wpcdb's first-stage vectors built
// from the bench collection's config, and runs the peers on it
// (bench/peers-node/peers.js, then bench/peers.py).
func (a *app) runPeers(cmd *cobra.Command, out string, in bench.PeerInput) ([]bench.Run, map[string]string, error) {
	dir := filepath.Join(out, "peers")
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
