package bench

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// SearchConfig is a recall/QPS sweep on a collection already ingested.
type SearchConfig struct {
	Collection *wpcdb.Collection
	// Clouds are the queries. When nil, Queries queries of QueryPoints
	// points are drawn from Synth.
	Clouds      []wpcsim.Cloud
	Synth       *Synth
	Queries     int   // number of queries (with Synth)
	QueryPoints int   // points per query (with Synth; paper: 77)
	K           int   // default 10
	Candidates  []int // first-stage depths R to sweep, 0 meaning the default (default 0, 10, 20, 50, 100, 200, 400)
	// Truth is each query's exact top K, best first, from Truth (computed
	// in parallel, or cached). Given, the exact run only times the exact
	// scan on the first ExactTimed queries (and checks them against it);
	// nil, Search computes it by timing the exact scan on every query.
	Truth [][]string
	// ExactTimed is how many queries time the exact scan when Truth is
	// given (default 5, at most the number of queries).
	ExactTimed int
	// Progress, if set, is called as queries complete.
	Progress func(done, total int)
	// Method names the two-stage runs (default "wpcdb").
	Method string
}

// Measurement is one measured configuration, in report.json's "runs".
type Measurement struct {
	Method   string         `json:"method"`
	Params   map[string]any `json:"params"`
	Threads  int            `json:"threads"`
	Recall   float64        `json:"recall_at_k"`
	QPS      float64        `json:"qps"`
	P50Ms    float64        `json:"p50_ms"`
	P99Ms    float64        `json:"p99_ms"`
	Queries  int            `json:"queries"`
	Reranked float64        `json:"mean_reranked"`
	// CPUMsPerQuery is the process's CPU time per query (every goroutine;
	// 0 where not measured), FirstStageMs and RerankMs the mean wall time
	// of the two stages as the search's stats report them.
	CPUMsPerQuery float64 `json:"cpu_ms_per_query,omitempty"`
	FirstStageMs  float64 `json:"first_stage_ms,omitempty"`
	RerankMs      float64 `json:"rerank_ms,omitempty"`
	Peer          bool    `json:"peer,omitempty"`
}

// Search measures the exact scan and the two-stage search at each candidate
// depth, one query at a time with the collection's Parallelism scoring
// goroutines (every run states it), reporting recall@k against the exact
// answer, queries/s and latency percentiles. The exact run's params say how
// many queries it timed. It returns the runs and the ground truth.
func Search(ctx context.Context, cfg SearchConfig) ([]Measurement, [][]string, error) {
	if cfg.K == 0 {
		cfg.K = 10
	}
	if len(cfg.Candidates) == 0 {
		// 10 (= k) is in the sweep because the peers' graphs are swept
		// from ef 16: for an exact first stage (the linear kernel, whose
		// walk keeps R + k) it is the comparable shallow setting.
		cfg.Candidates = []int{0, 10, 20, 50, 100, 200, 400}
	}
	queries := cfg.Clouds
	if queries == nil {
		queries = make([]wpcsim.Cloud, cfg.Queries)
		for j := range queries {
			queries[j] = cfg.Synth.Query(j, cfg.QueryPoints)
		}
	}
	truth := cfg.Truth
	exactQueries := queries
	if truth != nil {
		if len(truth) != len(queries) {
			return nil, nil, fmt.Errorf("bench: ground truth of %d queries for %d queries", len(truth), len(queries))
		}
		if cfg.ExactTimed <= 0 {
			cfg.ExactTimed = 5
		}
		exactQueries = queries[:min(cfg.ExactTimed, len(queries))]
	} else {
		truth = make([][]string, len(queries))
	}
	total := len(exactQueries) + len(queries)*len(cfg.Candidates)
	done := 0
	tick := func() {
		done++
		if cfg.Progress != nil {
			cfg.Progress(done, total)
		}
	}
	var found, want int
	exact, err := measure(ctx, cfg.Collection, exactQueries, wpcdb.SearchOptions{K: cfg.K, Exact: true}, func(j int, hits []wpcdb.Hit) {
		if cfg.Truth == nil {
			for _, h := range hits {
				truth[j] = append(truth[j], h.ID)
			}
		}
		f, w := overlap(hits, truth[j])
		found, want = found+f, want+w
		tick()
	})
	if err != nil {
		return nil, nil, err
	}
	// The exact scan reads every stored cloud through Pebble's block
	// cache and the cloud cache, evicting what the searches read (a point
	// index's postings beyond its resident budget, the clouds reranks
	// read): warm again, untimed, so that the first measured run does not
	// pay for it alone. The peers hold their data in memory throughout.
	if _, err := cfg.Collection.Warm(ctx); err != nil {
		return nil, nil, err
	}
	exact.Method = "exact"
	exact.Recall = float64(found) / float64(max(want, 1))
	exact.Params = map[string]any{"k": cfg.K, "timed_queries": len(exactQueries)}
	runs := []Measurement{exact}
	for _, r := range cfg.Candidates {
		found, want = 0, 0
		run, err := measure(ctx, cfg.Collection, queries, wpcdb.SearchOptions{K: cfg.K, Candidates: r}, func(j int, hits []wpcdb.Hit) {
			f, w := overlap(hits, truth[j])
			found, want = found+f, want+w
			tick()
		})
		if err != nil {
			return nil, nil, err
		}
		run.Method = cmp.Or(cfg.Method, "wpcdb")
		run.Params = map[string]any{"k": cfg.K, "candidates": r}
		if r == 0 {
			run.Params["candidates"] = "default"
		}
		run.Recall = float64(found) / float64(max(want, 1))
		runs = append(runs, run)
	}
	return runs, truth, nil
}

// overlap counts the IDs of truth among the hits, and the IDs of truth.
func overlap(hits []wpcdb.Hit, truth []string) (found, want int) {
	got := make(map[string]bool, len(hits))
	for _, h := range hits {
		got[h.ID] = true
	}
	for _, id := range truth {
		if got[id] {
			found++
		}
	}
	return found, len(truth)
}

func measure(ctx context.Context, c *wpcdb.Collection, queries []wpcsim.Cloud, opts wpcdb.SearchOptions, check func(j int, hits []wpcdb.Hit)) (Measurement, error) {
	lat := make([]float64, len(queries))
	var reranked int
	var first, rerank float64
	cpu0 := processCPU()
	start := time.Now()
	for j, q := range queries {
		t0 := time.Now()
		res, err := c.Search(ctx, q, opts)
		if err != nil {
			return Measurement{}, fmt.Errorf("query %d: %w", j, err)
		}
		lat[j] = float64(time.Since(t0).Microseconds()) / 1000
		reranked += res.Stats.Reranked
		first += res.Stats.FirstStageMs
		rerank += res.Stats.RerankMs
		check(j, res.Hits)
	}
	secs := time.Since(start).Seconds()
	cpu := processCPU() - cpu0
	sort.Float64s(lat)
	nq := float64(max(len(queries), 1))
	return Measurement{
		CPUMsPerQuery: cpu / nq,
		FirstStageMs:  first / nq,
		RerankMs:      rerank / nq,
		Threads:       c.Parallelism(),
		QPS:           float64(len(queries)) / secs,
		P50Ms:         percentile(lat, 0.50),
		P99Ms:         percentile(lat, 0.99),
		Queries:       len(queries),
		Reranked:      float64(reranked) / float64(max(len(queries), 1)),
	}, nil
}

// percentile of sorted values, nearest rank.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
