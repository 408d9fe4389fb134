package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/firststage"
	"github.com/wpcdb/wpcdb/index"
	"github.com/wpcdb/wpcdb/internal/order"
	"github.com/wpcdb/wpcdb/internal/wpcerr"
	"github.com/wpcdb/wpcdb/storage"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// MaxK is the largest k a search accepts.
const MaxK = 10_000

// ErrInvalidRequest wraps errors about a search request (k, candidates, an
// invalid query cloud, unknown IDs for Rerank).
var ErrInvalidRequest = wpcerr.New(wpcerr.InvalidArgument, "query: invalid request")

// Engine runs searches on one collection: filter bitmap, plan, first stage,
// exact rerank. It holds no per-search state and is safe for concurrent use
// as long as its Index is.
type Engine struct {
	Coll *storage.Coll
	Sim  *wpcsim.Similarity
	// First is the first stage; nil means every search scans exactly.
	First FirstStage
	// Parallelism bounds the rerank goroutines; 0 means GOMAXPROCS.
	Parallelism int
	// Candidates gives the default first-stage depth of a search for the
	// top k of q (nil: DefaultCandidates).
	Candidates func(q wpcsim.Cloud, k int) int
}

// FirstStage generates a search's candidates (firststage.Stage).
type FirstStage interface {
	// Candidates returns up to r candidates for q among allowed, best
	// first, or with Exact set the top k with their exact scores; qself is
	// the query's g(Q,Q).
	Candidates(q wpcsim.Cloud, qself wpcsim.Self, k, r int, allowed *roaring.Bitmap, filtered bool, p index.Params) (firststage.Candidates, error)
}

// bufPool recycles the rerank workers' decode buffers across searches
// (*[]storage.CloudBuf of rerankChunk each).
var bufPool = sync.Pool{New: func() any {
	b := make([]storage.CloudBuf, rerankChunk)
	return &b
}}

// Request is one search.
type Request struct {
	Query wpcsim.Cloud
	K     int
	// Filter restricts the search to these internal IDs (nil: all items).
	// Compile a filter expression with Parse and Compile.
	Filter *roaring.Bitmap
	// Exact scans every item passing the filter with the exact kernel: the
	// oracle mode.
	Exact bool
	// Candidates is the first-stage depth R (0: DefaultCandidates(K)).
	Candidates int
	// Ef is the index's search beam (0: the index's default).
	Ef int
}

// Hit is one result. For mmd, Distance is the MMD and Score is -Distance,
// so that a higher score is always closer.
type Hit struct {
	ID       string
	IID      uint32
	Score    float64
	Distance float64
	// Attrs are the item's attributes when the caller asked for them (the
	// root package fills them in; the engine leaves them nil).
	Attrs map[string]any
}

// Stats say how a search ran.
type Stats struct {
	Plan         string  `json:"plan"`                  // "exact-scan" or "index"
	FirstStage   string  `json:"first_stage,omitempty"` // with plan "index": "flat" or "hnsw"
	Passing      int     `json:"passing"`               // live items passing the filter
	Candidates   int     `json:"candidates"`
	Reranked     int     `json:"reranked"`
	FirstStageMs float64 `json:"first_stage_ms"`
	RerankMs     float64 `json:"rerank_ms"`
	TotalMs      float64 `json:"total_ms"`
}

// Response is the result of a search.
type Response struct {
	Hits  []Hit
	Stats Stats
	// Missing lists, for Rerank, the requested IDs that are not live (unknown,
	// or deleted while it ran), in request order, each once.
	Missing []string
}

// DefaultCandidates is the first-stage depth used when a request gives
// none: enough candidates for recall@10 ≥ 0.95 on learned-looking clouds.
func DefaultCandidates(k int) int { return max(10*k, 100) }

// exactThreshold: when no more items than this pass the filter (or than the
// candidate depth), scanning them all exactly costs about as much as a
// first stage plus rerank and is never wrong.
const exactThreshold = 256

// Search runs req.
func (e *Engine) Search(ctx context.Context, req Request) (Response, error) {
	start := time.Now()
	if req.K <= 0 || req.K > MaxK {
		return Response{}, fmt.Errorf("%w: k must be between 1 and %d, got %d", ErrInvalidRequest, MaxK, req.K)
	}
	if req.Candidates < 0 || req.Ef < 0 {
		return Response{}, fmt.Errorf("%w: candidates and ef must not be negative", ErrInvalidRequest)
	}
	// The exact scorer is built before the first stage only when the first
	// stage needs the query's g(Q,Q) (cosine, mmd); in inner mode, whose
	// exact first stages (the linear kernel) often need no rerank at all,
	// it waits for a candidate to rerank. Its preparation and the query's
	// second validation were 5–6% of a search of 10,000 small clouds
	// (BenchmarkSearchSmall/linear profile).
	var sc *wpcsim.Scorer
	defer func() {
		if sc != nil {
			sc.Release()
		}
	}()
	var qself wpcsim.Self
	if e.Sim.Config().Score != wpcsim.ScoreInner {
		var err error
		if sc, err = e.scorer(req.Query); err != nil {
			return Response{}, err
		}
		qself = sc.QuerySelf()
	} else if err := e.validate(req.Query); err != nil {
		return Response{}, err
	}
	allowed := e.Coll.LiveShared() // read only
	if req.Filter != nil {
		allowed = roaring.And(allowed, req.Filter)
	}
	var st Stats
	st.Passing = int(allowed.GetCardinality())
	r := req.Candidates
	if r == 0 && e.Candidates != nil {
		r = e.Candidates(req.Query, req.K)
	}
	if r == 0 {
		r = DefaultCandidates(req.K)
	}
	r = max(r, req.K)
	var (
		cands []uint32
		hits  []Hit
	)
	if req.Exact || e.First == nil || st.Passing <= max(r, exactThreshold) {
		st.Plan = "exact-scan"
		cands = allowed.ToArray()
	} else {
		st.Plan = "index"
		t0 := time.Now()
		fc, err := e.First.Candidates(req.Query, qself, req.K, r, allowed, req.Filter != nil, index.Params{Ef: req.Ef})
		if err != nil {
			return Response{}, fmt.Errorf("%w: query: %w", ErrInvalidRequest, err)
		}
		st.FirstStage = fc.Index
		st.FirstStageMs = ms(time.Since(t0))
		// Items not (yet) in the index are scanned, so a search is never
		// blind to recent writes.
		cands = fc.Unindexed
		if fc.Exact {
			// The first stage's scores are the exact ones (the linear
			// kernel's centroids): no rerank but of the unindexed.
			if hits, err = e.exactHits(fc, allowed, req.K); err != nil {
				return Response{}, err
			}
			st.Candidates = len(fc.IIDs)
		} else {
			cands = append(cands, fc.IIDs...)
		}
	}
	st.Candidates += len(cands)
	t0 := time.Now()
	if sc == nil && len(cands) > 0 {
		var err error
		if sc, err = e.Sim.NewScorer(req.Query); err != nil {
			return Response{}, fmt.Errorf("%w: query: %w", ErrInvalidRequest, err)
		}
	}
	// An exact scan of many items evicts nothing from the cloud cache
	// (ReadCloudScan).
	scan := st.Plan == "exact-scan" && len(cands) > exactThreshold
	reranked, err := e.rerank(ctx, sc, cands, scan)
	if err != nil {
		return Response{}, err
	}
	hits = append(hits, reranked...)
	st.Reranked = len(reranked)
	st.RerankMs = ms(time.Since(t0))
	sortHits(hits)
	if len(hits) > req.K {
		hits = hits[:req.K]
	}
	st.TotalMs = ms(time.Since(start))
	return Response{Hits: hits, Stats: st}, nil
}

// exactHits turns a first stage's exactly scored candidates into hits,
// skipping items deleted since the index was searched. Only the IDs that
// can reach the top k are looked up: the candidates in score order until k
// are live and the next scores less than the k-th (a tie might still win
// on its ID). The other R − k lookups (the cloud cache's lock and LRU, or
// Pebble) were most of the difference between depths 20 and 100 of an
// exact linear search.
func (e *Engine) exactHits(fc firststage.Candidates, allowed *roaring.Bitmap, k int) ([]Hit, error) {
	mmd := e.Sim.Config().Score == wpcsim.ScoreMMD
	hits := make([]Hit, 0, len(fc.IIDs))
	for i, iid := range fc.IIDs {
		if allowed.Contains(iid) {
			hits = append(hits, newHit("", iid, fc.Scores[i], mmd))
		}
	}
	slices.SortFunc(hits, func(a, b Hit) int { return cmp.Compare(b.Score, a.Score) })
	n := 0
	for _, h := range hits {
		if n >= k && h.Score < hits[n-1].Score {
			break
		}
		id, err := e.Coll.ID(h.IID)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		h.ID = id
		hits[n] = h
		n++
	}
	return hits[:n], nil
}

// Rerank scores the items with these IDs exactly and returns them sorted.
// IDs that are not live (unknown, or deleted while it runs) are listed in
// the response's Missing, not an error.
func (e *Engine) Rerank(ctx context.Context, q wpcsim.Cloud, ids []string) (Response, error) {
	start := time.Now()
	if len(ids) > MaxK {
		return Response{}, fmt.Errorf("%w: at most %d IDs, got %d", ErrInvalidRequest, MaxK, len(ids))
	}
	sc, err := e.scorer(q)
	if err != nil {
		return Response{}, err
	}
	defer sc.Release()
	var iids []uint32
	var asked []string // each ID once, in request order
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		asked = append(asked, id)
		iid, ok, err := e.Coll.Lookup(id)
		if err != nil {
			return Response{}, err
		}
		if ok {
			iids = append(iids, iid)
		}
	}
	hits, err := e.rerank(ctx, sc, iids, false) // skips items deleted meanwhile
	if err != nil {
		return Response{}, err
	}
	sortHits(hits)
	scored := make(map[string]bool, len(hits))
	for _, h := range hits {
		scored[h.ID] = true
	}
	var missing []string
	for _, id := range asked {
		if !scored[id] {
			missing = append(missing, id)
		}
	}
	return Response{Hits: hits, Missing: missing, Stats: Stats{Plan: "rerank", Passing: len(iids), Candidates: len(iids), Reranked: len(hits), RerankMs: ms(time.Since(start)), TotalMs: ms(time.Since(start))}}, nil
}

func (e *Engine) scorer(q wpcsim.Cloud) (*wpcsim.Scorer, error) {
	if err := e.validate(q); err != nil {
		return nil, err
	}
	return e.Sim.NewScorer(q)
}

// validate checks a query cloud against the collection's dimension.
func (e *Engine) validate(q wpcsim.Cloud) error {
	if err := q.Validate(e.Sim.Limits(e.Coll.Config().Dim, 0)); err != nil {
		return fmt.Errorf("%w: query: %w", ErrInvalidRequest, err)
	}
	return nil
}

// newHit is the hit of an item with exact score s in the score mode's
// units: for mmd s is the distance, and the score its negation.
func newHit(id string, iid uint32, s float64, mmd bool) Hit {
	if mmd {
		return Hit{ID: id, IID: iid, Score: -s, Distance: s}
	}
	return Hit{ID: id, IID: iid, Score: s}
}

// rerankChunk is how many items one goroutine reads and scores at a time:
// one Gram product per chunk.
const rerankChunk = 16

// rerank reads the candidates' clouds and scores them exactly on all cores.
// Items deleted since the candidates were chosen are skipped. A scan reads
// with ReadCloudScan: it evicts nothing from the cloud cache.
func (e *Engine) rerank(ctx context.Context, sc *wpcsim.Scorer, cands []uint32, scan bool) ([]Hit, error) {
	read := e.Coll.ReadCloud
	if scan {
		read = e.Coll.ReadCloudScan
	}
	workers := e.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if len(cands) == 0 {
		return nil, nil
	}
	workers = max(1, min(workers, (len(cands)+rerankChunk-1)/rerankChunk))
	mmd := e.Sim.Config().Score == wpcsim.ScoreMMD
	var (
		mu      sync.Mutex
		hits    = make([]Hit, 0, len(cands))
		firstEr error
		next    int
	)
	work := func(wsc *wpcsim.Scorer) {
		var (
			xs     []wpcsim.Cloud
			selfs  []wpcsim.Self
			ids    []string
			iids   []uint32
			scores []float64
		)
		bufs := bufPool.Get().(*[]storage.CloudBuf)
		defer bufPool.Put(bufs)
		for {
			mu.Lock()
			if firstEr != nil || next >= len(cands) {
				mu.Unlock()
				return
			}
			lo := next
			hi := min(lo+rerankChunk, len(cands))
			next = hi
			mu.Unlock()
			if err := ctx.Err(); err != nil {
				setErr(&mu, &firstEr, err)
				return
			}
			xs, selfs, ids, iids = xs[:0], selfs[:0], ids[:0], iids[:0]
			for _, iid := range cands[lo:hi] {
				rec, err := read(iid, &(*bufs)[len(xs)])
				if errors.Is(err, storage.ErrNotFound) {
					continue // deleted meanwhile
				}
				if err != nil {
					setErr(&mu, &firstEr, err)
					return
				}
				xs, selfs, ids, iids = append(xs, rec.Cloud), append(selfs, rec.Self), append(ids, rec.ID), append(iids, iid)
			}
			var err error
			scores, err = wsc.ScoreBatchWithSelf(xs, selfs, scores[:0])
			if err != nil {
				// Name the item by its ID (its record decoded).
				var bad *wpcsim.BatchItemError
				if errors.As(err, &bad) && bad.Index < len(ids) {
					err = fmt.Errorf("stored item %s (internal id %d) in collection %q fails validation: %w", storage.QuoteID(ids[bad.Index]), iids[bad.Index], e.Coll.Name(), bad.Err)
				} else {
					err = fmt.Errorf("stored item fails validation: %w", err)
				}
				setErr(&mu, &firstEr, fmt.Errorf("%w: %w", storage.ErrCorrupt, err))
				return
			}
			mu.Lock()
			for i, s := range scores {
				hits = append(hits, newHit(ids[i], iids[i], s, mmd))
			}
			mu.Unlock()
		}
	}
	if workers == 1 {
		work(sc) // a small rerank: no goroutine
	} else {
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wsc := sc
			if w > 0 {
				wsc = sc.Clone()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				work(wsc)
				if wsc != sc {
					wsc.Release()
				}
			}()
		}
		wg.Wait()
	}
	if firstEr != nil {
		return nil, firstEr
	}
	return hits, nil
}

func setErr(mu *sync.Mutex, dst *error, err error) {
	mu.Lock()
	if *dst == nil {
		*dst = err
	}
	mu.Unlock()
}

// sortHits orders hits by internal/order: score, then ID.
func sortHits(h []Hit) {
	slices.SortFunc(h, func(a, b Hit) int { return order.Compare(a.Score, a.ID, b.Score, b.ID) })
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())) / 1000 }
