package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/pbconv"
	pb "github.com/wpcdb/wpcdb/server/wpcdbv1"
)

// DefaultLoadItems is the items a load run fills its collection with.
const DefaultLoadItems = 10_000

// LoadConfig is a load run against a wpcdb server: a collection of N
// synthetic items is (re)created and filled, then Clients concurrent clients
// send requests back to back for Duration.
type LoadConfig struct {
	// Conn is a connection to the server (with its credentials).
	Conn grpc.ClientConnInterface
	// Collection is dropped if it exists, created with Config and filled
	// with N items (default DefaultLoadItems) of Synth (default: CompactShape, seeded
	// by Seed). A Config without a Dim takes Synth's shape.
	Collection string
	Config     wpcdb.CollectionConfig
	Synth      *Synth
	N          int
	// Batch is the items per Upsert batch of the fill and of the writes
	// during the run (default 500 for the fill, 10 during the run).
	Batch int
	// Clients run concurrently, each on its own stream of requests.
	Clients  int
	Duration time.Duration
	// QueryPoints and K shape each search (defaults 8 and 10).
	QueryPoints int
	K           int
	// WriteFraction of the requests are Upsert batches of new items; the
	// rest are searches.
	WriteFraction float64
	Seed          uint64
}

// LoadReport is what a load run measured.
type LoadReport struct {
	Clients     int     `json:"clients"`
	Seconds     float64 `json:"seconds"`
	FillItemsPS float64 `json:"fill_items_per_s"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	QPS         float64 `json:"qps"` // all requests per second
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	Search      OpStats `json:"search"`
	Upsert      OpStats `json:"upsert"`
}

// OpStats are one request kind's numbers.
type OpStats struct {
	Requests int     `json:"requests"`
	PerS     float64 `json:"per_s"`
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
}

func (r LoadReport) String() string {
	s := fmt.Sprintf("load: %d clients for %.1f s: %d requests, %.1f req/s, p50 %.2f ms, p99 %.2f ms, %d errors\n",
		r.Clients, r.Seconds, r.Requests, r.QPS, r.P50Ms, r.P99Ms, r.Errors)
	if r.FirstError != "" {
		s += "  first error: " + r.FirstError + "\n"
	}
	s += fmt.Sprintf("  search: %d, %.1f q/s, p50 %.2f ms, p99 %.2f ms", r.Search.Requests, r.Search.PerS, r.Search.P50Ms, r.Search.P99Ms)
	if r.Upsert.Requests > 0 {
		s += fmt.Sprintf("\n  upsert: %d batches, %.1f batches/s, p50 %.2f ms, p99 %.2f ms", r.Upsert.Requests, r.Upsert.PerS, r.Upsert.P50Ms, r.Upsert.P99Ms)
	}
	return s
}

// WriteLoadReport writes dir/report.json of a load run of cfg against the
// server at addr.
func WriteLoadReport(dir, addr string, cfg LoadConfig, rep LoadReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(map[string]any{"workload": "load", "addr": addr, "n": cmp.Or(cfg.N, DefaultLoadItems), "kernel": cfg.Config.Similarity.WithDefaults().Kernel.String(), "k": cfg.K, "load": rep}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "report.json"), append(js, '\n'), 0o644)
}

// Load fills the collection and runs the clients. A request error is
// counted, not fatal (a server under load may refuse some); the run fails
// only when it cannot set up, or when every request failed.
func Load(ctx context.Context, cfg LoadConfig) (LoadReport, error) {
	if cfg.Clients <= 0 || cfg.Duration <= 0 || cfg.Conn == nil {
		return LoadReport{}, errors.New("bench: load needs Conn, Clients > 0 and Duration > 0")
	}
	if cfg.Synth == nil {
		cfg.Synth = NewSynth(CompactShape, cfg.Seed)
	}
	if cfg.N == 0 {
		cfg.N = DefaultLoadItems
	}
	if cfg.Config.Dim == 0 {
		cfg.Config.Dim, cfg.Config.MaxPoints = cfg.Synth.Dim, max(cfg.Synth.MaxPoints, collconfig.DefaultMaxPoints)
	}
	if cfg.QueryPoints == 0 {
		cfg.QueryPoints = 8
	}
	if cfg.K == 0 {
		cfg.K = 10
	}
	cli := pb.NewWPCDBServiceClient(cfg.Conn)
	_, err := cli.DropCollection(ctx, &pb.DropCollectionRequest{Name: cfg.Collection})
	if err != nil && status.Code(err) != codes.NotFound {
		return LoadReport{}, fmt.Errorf("drop %s: %w", cfg.Collection, err)
	}
	if _, err := cli.CreateCollection(ctx, &pb.CreateCollectionRequest{Name: cfg.Collection, Config: pbconv.ConfigToPB(cfg.Config)}); err != nil {
		return LoadReport{}, fmt.Errorf("create %s: %w", cfg.Collection, err)
	}
	fillBatch := cfg.Batch
	if fillBatch <= 0 {
		fillBatch = 500
	}
	t0 := time.Now()
	if err := upsertRange(ctx, cli, cfg, 0, cfg.N, fillBatch); err != nil {
		return LoadReport{}, fmt.Errorf("fill: %w", err)
	}
	rep := LoadReport{Clients: cfg.Clients, FillItemsPS: float64(cfg.N) / time.Since(t0).Seconds()}

	runBatch := cfg.Batch
	if runBatch <= 0 {
		runBatch = 10
	}
	type result struct {
		search, upsert []float64 // latencies, ms
		errors         int
		firstErr       error
	}
	results := make([]result, cfg.Clients)
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var next struct {
		sync.Mutex
		id int
	}
	next.id = cfg.N
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(cfg.Duration)
	for w := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[w]
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)+1))
			for j := 0; rctx.Err() == nil && time.Now().Before(end); j++ {
				t0 := time.Now()
				var err error
				write := rng.Float64() < cfg.WriteFraction
				if write {
					next.Lock()
					lo := next.id
					next.id += runBatch
					next.Unlock()
					err = upsertRange(rctx, cli, cfg, lo, lo+runBatch, runBatch)
				} else {
					q := cfg.Synth.Query(w*1_000_000+j, cfg.QueryPoints)
					_, err = cli.Search(rctx, &pb.SearchRequest{Collection: cfg.Collection, Query: pbconv.CloudToPB(q), K: int32(cfg.K)})
				}
				ms := float64(time.Since(t0).Microseconds()) / 1000
				if rctx.Err() != nil || !time.Now().Before(end) {
					// Cut off by the end of the run (gRPC may see the
					// deadline before the context does): not measured.
					return
				}
				if err != nil {
					r.errors++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				if write {
					r.upsert = append(r.upsert, ms)
				} else {
					r.search = append(r.search, ms)
				}
			}
		}()
	}
	wg.Wait()
	rep.Seconds = time.Since(start).Seconds()
	var all, search, upsert []float64
	var firstErr error
	for _, r := range results {
		search = append(search, r.search...)
		upsert = append(upsert, r.upsert...)
		rep.Errors += r.errors
		if firstErr == nil {
			firstErr = r.firstErr
		}
	}
	all = append(append(all, search...), upsert...)
	for _, s := range [][]float64{all, search, upsert} {
		sort.Float64s(s)
	}
	rep.Requests = len(all)
	rep.QPS = float64(len(all)) / rep.Seconds
	rep.P50Ms, rep.P99Ms = percentile(all, 0.50), percentile(all, 0.99)
	rep.Search = OpStats{Requests: len(search), PerS: float64(len(search)) / rep.Seconds, P50Ms: percentile(search, 0.5), P99Ms: percentile(search, 0.99)}
	rep.Upsert = OpStats{Requests: len(upsert), PerS: float64(len(upsert)) / rep.Seconds, P50Ms: percentile(upsert, 0.5), P99Ms: percentile(upsert, 0.99)}
	if firstErr != nil {
		rep.FirstError = firstErr.Error()
	}
	if rep.Requests == 0 && firstErr != nil {
		return rep, fmt.Errorf("every request failed: %w", firstErr)
	}
	return rep, nil
}

// upsertRange writes items [lo, hi) on one Upsert stream in batches.
func upsertRange(ctx context.Context, cli pb.WPCDBServiceClient, cfg LoadConfig, lo, hi, batch int) error {
	stream, err := cli.Upsert(ctx)
	if err != nil {
		return err
	}
	for b := lo; b < hi; b += batch {
		req := &pb.UpsertRequest{Collection: cfg.Collection}
		for i := b; i < min(b+batch, hi); i++ {
			it, err := pbconv.ItemToPB(cfg.Synth.Item(i))
			if err != nil {
				return err
			}
			req.Items = append(req.Items, it)
		}
		if err := stream.Send(req); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("end of Upsert stream: %v", err)
	}
	return nil
}
