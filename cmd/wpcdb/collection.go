package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// openDB opens the embedded database of --data (data commands go through
// withBackend, which uses --addr's server instead when it is set).
func (a *app) openDB() (*wpcdb.DB, error) {
	return wpcdb.Open(a.g.data, &wpcdb.Options{Logger: a.dbLogger(), CloudCacheBytes: cacheBytes(a.g.cloudCacheMB), PointCacheBytes: cacheBytes(a.g.pointCacheMB)})
}

// withDB runs f on the opened database and closes it, keeping f's error.
func (a *app) withDB(f func(db *wpcdb.DB) error) error {
	db, err := a.openDB()
	if err != nil {
		return err
	}
	err = f(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, string(b))
	return err
}

func (a *app) collectionCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "collection", Short: "Create, list, describe and drop collections"}
	cmd.AddCommand(a.collectionCreateCommand(), a.collectionListCommand(), a.collectionDescribeCommand(), a.collectionCalibrateCommand(), a.collectionDropCommand())
	return cmd
}

func (a *app) collectionCreateCommand() *cobra.Command {
	var (
		sf        simFlags
		dim       int
		maxPoints int
		encoding  string
		rffDim    int
		rffSeed   uint64
		rffImport string
		ic        collconfig.Index
		endpoints string
		shards    int
		replicas  int
	)
	cmd := &cobra.Command{
		Use:   "create NAME --dim D [flags]",
		Short: "Create a collection",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			sim, err := sf.similarity()
			if err != nil {
				return err
			}
			enc, err := collconfig.ParseEncoding(encoding)
			if err != nil {
				return err
			}
			if rffDim <= 0 {
				return usageError{fmt.Errorf("collection create: --rff-dim must be positive, got %d", rffDim)}
			}
			if !cmd.Flags().Changed("dim") {
				return usageError{errors.New("collection create: --dim is required")}
			}
			// 0 means "the default" in the library's config; on the command
			// line it would be shown as 0 while the default is used.
			for _, f := range []struct {
				name   string
				v, min int
			}{{"hnsw-m", ic.M, 2}, {"ef-construction", ic.EfConstruction, 1}, {"ef-search", ic.EfSearch, 1}, {"max-points", maxPoints, 1}, {"graph-at", ic.GraphAt, 0}} {
				if f.v < f.min {
					return usageError{fmt.Errorf("collection create: --%s must be at least %d, got %d", f.name, f.min, f.v)}
				}
			}
			cfg := wpcdb.CollectionConfig{
				Dim: dim, MaxPoints: maxPoints, Similarity: sim.Config(), Encoding: enc,
				Features: collconfig.Features{Dim: rffDim, Seed: rffSeed},
				Index:    ic,
			}
			var sample *wpcsim.FeatureSample
			if rffImport != "" {
				if cmd.Flags().Changed("rff-dim") || cmd.Flags().Changed("rff-seed") {
					return usageError{errors.New("collection create: --rff-import takes D from the files; drop --rff-dim and --rff-seed")}
				}
				s, err := wpcsim.LoadFeatureSample(rffImport, sim.Config(), dim)
				if err != nil {
					return err
				}
				sample = &s
			}
			if endpoints != "" || cmd.Flags().Changed("shards") || cmd.Flags().Changed("replicas") {
				return a.createSharded(cmd, args[0], endpoints, shards, replicas, cfg, sample)
			}
			return a.withBackend(func(b backend) error {
				info, err := b.CreateCollection(cmd.Context(), args[0], cfg, sample)
				if err != nil {
					return err
				}
				return a.printDescribe(info)
			})
		},
	}
	sf.register(cmd)
	fl := cmd.Flags()
	fl.IntVar(&dim, "dim", 0, "dimension of every point (required)")
	fl.IntVar(&maxPoints, "max-points", collconfig.DefaultMaxPoints, "largest number of points in a cloud")
	fl.StringVar(&encoding, "encoding", "f32", "point encoding on disk: f32, f16 or bf16")
	fl.IntVar(&rffDim, "rff-dim", collconfig.DefaultFeatureDim, "random features per nonlinear kernel term")
	fl.Uint64Var(&rffSeed, "rff-seed", 0, "seed of the random-feature sample")
	fl.StringVar(&ic.Kind, "index", collconfig.IndexAuto, "first-stage index: auto (exact scan below --graph-at items, HNSW above), flat or hnsw")
	fl.IntVar(&ic.GraphAt, "graph-at", 0, "auto index: collection size at which the HNSW graph is built (0: once a scan would read 4M floats)")
	fl.IntVar(&ic.M, "hnsw-m", index.DefaultM, "HNSW links per node (layer 0 keeps twice as many)")
	fl.IntVar(&ic.EfConstruction, "ef-construction", index.DefaultEfConstruction, "HNSW beam width when inserting")
	fl.IntVar(&ic.EfSearch, "ef-search", index.DefaultEfSearch, "HNSW default search beam width (raised to the first-stage depth)")
	fl.StringVar(&endpoints, "cluster", "", "create a sharded collection in the cluster of these etcd endpoints (comma-separated)")
	fl.IntVar(&shards, "shards", 0, "with --cluster: number of shards (0: one per live node)")
	fl.IntVar(&replicas, "replicas", 1, "with --cluster: replicas of each shard, on as many nodes (more than 1: each shard is a Raft group; a write is acknowledged once a majority of its replicas has it)")
	fl.StringVar(&rffImport, "rff-import", "", "directory of a trained model's W<t>.npy (D, d) and b<t>.npy (D) per nonlinear term, used instead of a seeded sample")
	return cmd
}

// createSharded creates a sharded collection through the cluster's
// catalog: one shard per owner node, over their gRPC services.
func (a *app) createSharded(cmd *cobra.Command, name, endpoints string, shards, replicas int, cfg wpcdb.CollectionConfig, sample *wpcsim.FeatureSample) error {
	if endpoints == "" || a.g.addr != "" {
		return usageError{errors.New("collection create: --shards and --replicas need --cluster ENDPOINTS (etcd), not --addr")}
	}
	c, err := a.clusterClient(cmd.Context(), "collection create", endpoints)
	if err != nil {
		return err
	}
	defer c.Close()
	req := &pb.CreateCollectionRequest{Name: name, Config: pbconv.ConfigToPB(cfg)}
	if sample != nil {
		req.FeatureSample = pbconv.SampleToPB(*sample)
	}
	pinfo, err := c.CreateCollection(cmd.Context(), req, shards, replicas)
	if err != nil {
		return fromRPC(cmd.Context(), err)
	}
	info, err := pbconv.InfoFromPB(pinfo)
	if err != nil {
		return err
	}
	return a.printDescribe(info)
}

func (a *app) collectionListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List collections",
		Args:  exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				infos, err := b.ListCollections(cmd.Context())
				if err != nil {
					return err
				}
				if a.g.json {
					out := make([]map[string]any, 0, len(infos))
					for _, info := range infos {
						out = append(out, describeJSON(info))
					}
					return a.printJSON(out)
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCOUNT\tDIM\tKERNEL\tSCORE")
				for _, info := range infos {
					s := info.Config.Similarity
					fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", info.Name, info.Count, info.Config.Dim, s.Kernel, s.Score)
				}
				return tw.Flush()
			})
		},
	}
}

func (a *app) collectionDescribeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Print every setting of a collection, its item count and size on disk",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				info, err := b.DescribeCollection(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.printDescribe(info)
			})
		},
	}
}

func (a *app) collectionCalibrateCommand() *cobra.Command {
	var queries string
	cmd := &cobra.Command{
		Use:   "calibrate NAME [--queries q.jsonl]",
		Short: "Choose the first-stage vector by measured recall on the collection's own data",
		Long: `calibrate measures, on a sample of NAME's items, the recall@10 at the default
first-stage depth of each candidate first-stage vector (the weighted centroid
when the kernel has a linear term, φ projected on 16 to 128 principal
directions, and φ itself) against the exact top 10, and switches the collection
to the smallest one that holds 0.98 (else the smallest within 0.01 of the best). The queries are those of
--queries (JSONL clouds, the real workload, at most 1000) or held-out items.
Collections calibrate by themselves as they grow and at the end of an ingest;
this runs it now. Text output is one line per candidate; --json prints the
measurement.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var qs []wpcsim.Cloud
			if queries != "" {
				var err error
				if qs, err = readQueries(queries, 1000); err != nil {
					return err
				}
			}
			return a.withBackend(func(b backend) error {
				cal, err := b.Calibrate(cmd.Context(), args[0], qs)
				if err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(map[string]any{"chosen": cal.Chosen.String(), "skipped": cal.Skipped, "measured": cal.Measured,
						"depth": cal.Chosen.Depth, "sample": cal.Chosen.Sample, "queries": cal.Chosen.Queries})
				}
				if cal.Skipped != "" {
					_, err := fmt.Fprintf(a.stdout, "first stage: %s (%s)\n", cal.Chosen, cal.Skipped)
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(tw, "representation\tdim\trecall@10\n")
				for _, m := range cal.Measured {
					mark := ""
					if m.Representation == cal.Chosen.String() {
						mark = "  <- chosen"
					}
					fmt.Fprintf(tw, "%s\t%d\t%.3f%s\n", m.Representation, m.Dim, m.Recall, mark)
				}
				fmt.Fprintf(tw, "(depth %d of %d sampled items, %d queries)\n", cal.Chosen.Depth, cal.Chosen.Sample, cal.Chosen.Queries)
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&queries, "queries", "", "JSONL query clouds of the real workload (default: held-out items)")
	return cmd
}

// readQueries reads up to limit JSON clouds, one per line.
func readQueries(path string, limit int) ([]wpcsim.Cloud, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var out []wpcsim.Cloud
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if len(out) == limit {
			return nil, fmt.Errorf("%s: more than %d queries", path, limit)
		}
		rec, err := cloudjson.Decode(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		out = append(out, rec.Cloud)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

func (a *app) collectionDropCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "drop NAME",
		Short: "Delete a collection and every item in it",
		Args:  exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withBackend(func(b backend) error {
				if err := b.DropCollection(cmd.Context(), args[0]); err != nil {
					return err
				}
				if a.g.json {
					return a.printJSON(map[string]any{"dropped": args[0]})
				}
				_, err := fmt.Fprintf(a.stdout, "dropped collection %s\n", args[0])
				return err
			})
		},
	}
}

// describeJSON is the JSON form of a collection's description; "count" is
// at the top level.
func describeJSON(info wpcdb.CollectionInfo) map[string]any {
	c := info.Config
	s := c.Similarity
	return map[string]any{
		"name":         info.Name,
		"count":        info.Count,
		"disk_bytes":   info.DiskBytes,
		"dim":          c.Dim,
		"max_points":   c.MaxPoints,
		"kernel":       s.Kernel.String(),
		"norm":         s.Norm.String(),
		"normalize":    !s.RawPoints,
		"score":        s.Score.String(),
		"encoding":     c.Encoding.String(),
		"rff_dim":      c.Features.Dim,
		"rff_seed":     c.Features.Seed,
		"rff_imported": c.Features.Imported,
		"index":        c.Index,
		"index_status": info.Index,
		// The first-stage vectors' resident bytes, also in index_status.
		"first_stage_bytes": info.Index.FirstStageBytes,
	}
}

func (a *app) printDescribe(info wpcdb.CollectionInfo) error {
	if a.g.json {
		return a.printJSON(describeJSON(info))
	}
	c := info.Config
	s := c.Similarity
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	rows := [][2]string{
		{"name", info.Name},
		{"count", fmt.Sprint(info.Count)},
		{"disk bytes", fmt.Sprint(info.DiskBytes)},
		{"dim", fmt.Sprint(c.Dim)},
		{"max points", fmt.Sprint(c.MaxPoints)},
		{"kernel", s.Kernel.String()},
		{"norm", s.Norm.String()},
		{"normalize", fmt.Sprint(!s.RawPoints)},
		{"score", s.Score.String()},
		{"encoding", c.Encoding.String()},
		{"rff dim", fmt.Sprint(c.Features.Dim)},
		{"rff seed", fmt.Sprint(c.Features.Seed)},
		{"rff imported", fmt.Sprint(c.Features.Imported)},
		{"index", indexString(c.Index)},
		{"index status", fmt.Sprintf("%s, %d in graph, %d buffered", info.Index.Kind, info.Index.InGraph, info.Index.Buffered)},
		{"first stage", firstStageString(info.Index)},
	}
	if p := info.Index.Points; p != nil {
		rows = append(rows, [2]string{"point index", fmt.Sprintf("%d centroids, %d-bit residuals, %d points of %d items; %.1f bytes a point on disk (%d), %.2f resident (%d); drift %.2f",
			p.Centroids, p.Bits, p.Points, p.Items, p.DiskBytesPerPoint, p.DiskBytes, p.ResidentBytesPerPoint, p.ResidentBytes, p.Drift)})
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// firstStageString says which vector the first stage uses and how it was
// chosen.
func firstStageString(st wpcdb.IndexStatus) string {
	if st.Kind == "none" {
		return "none (every search scans exactly)"
	}
	s := fmt.Sprintf("%s, %d floats per item, %d bytes", st.Representation, st.Dim, st.FirstStageBytes)
	if st.Representation == "points" {
		// maxsim's point index, beside the FDE vectors signed queries use.
		s = fmt.Sprintf("points (maxsim's point index, with the %d-float FDE for queries with a negative weight), %d bytes", st.Dim, st.FirstStageBytes)
	}
	if st.Recall > 0 {
		s += fmt.Sprintf(", calibrated: recall@10 %.3f at the default depth", st.Recall)
	} else {
		s += ", not calibrated"
	}
	return s
}

// exactArgs checks the number of positional arguments, naming them.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			if n == 0 {
				return usageError{fmt.Errorf("%s takes no arguments, got %d", cmd.CommandPath(), len(args))}
			}
			return usageError{fmt.Errorf("%s needs %s, got %d arguments", cmd.CommandPath(), names, len(args))}
		}
		return nil
	}
}

// inputArgs requires at least one INPUT argument; msg says so.
func inputArgs(msg string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError{errors.New(msg)}
		}
		return nil
	}
}

func indexString(ic collconfig.Index) string {
	s := ic.Kind
	if ic.Kind == collconfig.IndexAuto && ic.GraphAt > 0 {
		s += fmt.Sprintf(" (graph at %d items)", ic.GraphAt)
	} else if ic.Kind == collconfig.IndexAuto {
		s += " (graph once a scan would read 4M floats)"
	}
	if ic.Kind != collconfig.IndexFlat {
		s += fmt.Sprintf(", m %d, ef construction %d, ef search %d", ic.M, ic.EfConstruction, ic.EfSearch)
	}
	return s
}
