package index

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// HNSW is an in-memory hierarchical navigable small world graph (Malkov and
// Yashunin, 2016): approximate search in about log(n) hops with recall set
// by the beam width ef.
//
// Deleted nodes become tombstones: walks still pass through them but never
// return them. When tombstones exceed a quarter of the nodes, the links of
// the live nodes that point at tombstones are repaired (with the selection
// heuristic over the tombstones' neighbours) and the tombstones' slots are
// reused. Adding an existing ID tombstones its old node and inserts a new
// one.
//
// Filters are applied inside the walk: the walk goes through every node but
// only nodes passing the filter enter the results. A filter passing few
// items is answered by an exact scan of its members, and so is any walk that
// finds fewer than k results, so a search returns min(k, #passing) results.
//
// HNSW is safe for concurrent use: searches run in parallel with each other
// under a read lock; Add and Delete take the write lock.
type HNSW struct {
	mu        sync.RWMutex
	dim       int
	metric    Metric
	opts      HNSWOptions
	maxDeg0   int     // 2M: the degree bound of layer 0
	levelMult float64 // 1/ln(M): the mean of the level distribution
	pcg       *rand.PCG
	rng       *rand.Rand

	// Per slot (a node's index in the graph).
	vecs   []float32 // slot-major: slot s is vecs[s*dim:(s+1)*dim], prepared; nil when codesOnly
	norms2 []float32 // squared norm (of the float32 vector, kept in codesOnly too)
	// codes and cscales are the vectors' int8 codes and scales (quant.go),
	// what searches walk the graph with; nil when the dimension is too
	// large for them (quantizable).
	codes   []int8
	cscales []float32
	// codesOnly: the graph keeps the codes alone (vecs is nil), scores
	// every node from them, inserts and links by them, and returns their
	// estimates as scores (see dropVectors).
	codesOnly bool
	ids       []uint32    // slot → id
	levels    []uint8     // top layer of the node
	states    []slotState // live, tombstone or free
	links0    []uint32    // layer 0: slot s has count links0[s*stride0] then its neighbours
	upper     [][][]uint32

	slot     map[uint32]uint32 // live id → slot
	free     []uint32          // free slots, sorted descending (the smallest is reused first)
	deleted  int               // tombstones
	entry    int32             // entry slot, -1 when the graph is empty
	maxLevel int               // the entry's level

	scratch sync.Pool // *hnswScratch
}

type slotState uint8

const (
	slotLive slotState = iota
	slotDeleted
	slotFree
)

// hnswMaxLevel caps sampled levels (a level above ~8 has probability
// below 1e-9 for M = 16).
const hnswMaxLevel = 31

// NewHNSW returns an empty HNSW index of dimension dim.
func NewHNSW(dim int, m Metric, opts HNSWOptions) (*HNSW, error) {
	if dim <= 0 {
		return nil, fmt.Errorf("%w: dimension %d", ErrInvalidOptions, dim)
	}
	if m > L2 {
		return nil, fmt.Errorf("%w: unknown metric %s", ErrInvalidOptions, m)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	pcg := rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)
	return &HNSW{
		dim:       dim,
		metric:    m,
		opts:      opts,
		maxDeg0:   2 * opts.M,
		levelMult: 1 / math.Log(float64(opts.M)),
		pcg:       pcg,
		rng:       rand.New(pcg),
		slot:      map[uint32]uint32{},
		entry:     -1,
	}, nil
}

// Options returns the options in use, with defaults filled in.
func (h *HNSW) Options() HNSWOptions { return h.opts }

func (h *HNSW) Dim() int { return h.dim }

func (h *HNSW) Len() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.slot)
}

func (h *HNSW) Contains(id uint32) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.slot[id]
	return ok
}

func (h *HNSW) getScratch() *hnswScratch {
	if sc, ok := h.scratch.Get().(*hnswScratch); ok {
		return sc
	}
	return &hnswScratch{}
}

// Add inserts or replaces the vector of id.
func (h *HNSW) Add(id uint32, v []float32) error {
	if len(v) != h.dim {
		return fmt.Errorf("%w: %d, index has %d", ErrDimension, len(v), h.dim)
	}
	sc := h.getScratch()
	defer h.scratch.Put(sc)
	sc.q = prepare(h.metric, v, sc.q[:0])
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, ok := h.slot[id]; ok {
		h.tombstone(id, old)
	}
	s := h.newSlot(id, sc.q)
	h.insert(sc, s)
	if h.needsRepair() {
		h.repair(sc)
	}
	return nil
}

// Delete removes id; unknown IDs are ignored.
func (h *HNSW) Delete(id uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.slot[id]
	if !ok {
		return
	}
	h.tombstone(id, s)
	if h.needsRepair() {
		sc := h.getScratch()
		h.repair(sc)
		h.scratch.Put(sc)
	}
}

func (h *HNSW) tombstone(id, s uint32) {
	delete(h.slot, id)
	h.states[s] = slotDeleted
	h.deleted++
}

// nodes is the number of nodes in the graph: live and tombstones.
func (h *HNSW) nodes() int { return len(h.ids) - len(h.free) }

// needsRepair reports whether tombstones exceed a quarter of the nodes.
func (h *HNSW) needsRepair() bool { return h.deleted*4 > h.nodes() }

// setCode sets slot s's code from its prepared vector pv.
func (h *HNSW) setCode(s uint32, pv []float32) {
	if quantizable(h.dim) {
		lo, hi := int(s)*h.dim, int(s+1)*h.dim
		h.cscales[s] = quantize(h.codes[lo:hi], pv)
	}
}

// dropVectors makes the graph keep its int8 codes alone: 4·dim bytes a
// node less (at dimension 64, 256 of the ~580 bytes a node took). Its
// scores are then estimates within the bound of quant.go, for first
// stages that only prune (a rerank scores the candidates exactly); an
// exact first stage (firststage.Map.Exact) keeps the vectors. It is a no-op
// when the dimension has no codes (quantizable). Measured on compact 100k
// (PCA-64, the default kernel, `wpcdb bench --n 100000 --peers none`):
// see TieredOptions.CodesOnly.
func (h *HNSW) dropVectors() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !quantizable(h.dim) || h.codesOnly {
		return
	}
	h.codesOnly = true
	h.vecs = nil
}

// reserve sets the capacity of the per-slot slices for n more nodes, so
// that a graph built from a known number of vectors (a Tiered buffer) does
// not carry append's slack (up to a quarter of each slice).
func (h *HNSW) reserve(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.codesOnly {
		h.vecs = slices.Grow(h.vecs, n*h.dim)
	}
	if quantizable(h.dim) {
		h.codes = slices.Grow(h.codes, n*h.dim)
		h.cscales = slices.Grow(h.cscales, n)
	}
	h.norms2 = slices.Grow(h.norms2, n)
	h.ids = slices.Grow(h.ids, n)
	h.levels = slices.Grow(h.levels, n)
	h.states = slices.Grow(h.states, n)
	h.links0 = slices.Grow(h.links0, n*(h.maxDeg0+1))
	h.upper = slices.Grow(h.upper, n)
}

// CodesOnly reports whether the graph keeps codes without vectors.
func (h *HNSW) CodesOnly() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.codesOnly
}

// newSlot stores a prepared vector in a free or new slot with a sampled
// level and no links.
func (h *HNSW) newSlot(id uint32, pv []float32) uint32 {
	level := int(-math.Log(1-h.rng.Float64()) * h.levelMult)
	level = min(level, hnswMaxLevel)
	var s uint32
	if n := len(h.free); n > 0 {
		s = h.free[n-1]
		h.free = h.free[:n-1]
	} else {
		s = uint32(len(h.ids))
		if !h.codesOnly {
			h.vecs = append(h.vecs, make([]float32, h.dim)...)
		}
		h.norms2 = append(h.norms2, 0)
		if quantizable(h.dim) {
			h.codes = append(h.codes, make([]int8, h.dim)...)
			h.cscales = append(h.cscales, 0)
		}
		h.ids = append(h.ids, 0)
		h.levels = append(h.levels, 0)
		h.states = append(h.states, slotFree)
		h.links0 = append(h.links0, make([]uint32, h.maxDeg0+1)...)
		h.upper = append(h.upper, nil)
	}
	if !h.codesOnly {
		copy(h.vecs[int(s)*h.dim:], pv)
	}
	h.norms2[s] = dot(pv, pv)
	h.setCode(s, pv)
	h.ids[s] = id
	h.levels[s] = uint8(level)
	h.states[s] = slotLive
	h.links0[int(s)*(h.maxDeg0+1)] = 0
	h.upper[s] = nil
	if level > 0 {
		h.upper[s] = make([][]uint32, level)
		for l := range h.upper[s] {
			h.upper[s][l] = make([]uint32, 0, h.opts.M)
		}
	}
	h.slot[id] = s
	return s
}

// Search returns up to k results, best first (ties by ID ascending), among
// the IDs in filter (all indexed IDs when filter is nil). The beam width is
// max(p.Ef, k), p.Ef defaulting to Options().EfSearch.
func (h *HNSW) Search(q []float32, k int, filter *roaring.Bitmap, p Params) ([]Result, error) {
	if run, err := checkSearch(q, h.dim, k, p); !run {
		return nil, err
	}
	ef := h.opts.EfSearch
	if p.Ef > 0 {
		ef = p.Ef
	}
	ef = max(ef, k)
	sc := h.getScratch()
	defer h.scratch.Put(sc)
	sc.q = prepare(h.metric, q, sc.q[:0])
	qq := query{v: sc.q, n2: dot(sc.q, sc.q)}
	h.mu.RLock()
	defer h.mu.RUnlock()
	walkq := qq // the walk's query: by codes when the graph has them
	if quantizable(h.dim) && (quantWalk || h.codesOnly) {
		sc.qcode = slices.Grow(sc.qcode[:0], h.dim)[:h.dim]
		walkq.c, walkq.cs, walkq.quant = sc.qcode, quantize(sc.qcode, sc.q), true
		for _, x := range sc.q {
			walkq.l1 += float32(math.Abs(float64(x)))
		}
	}
	if h.codesOnly {
		qq = walkq // no vectors to score exactly with
	}
	live := len(h.slot)
	if live == 0 {
		return nil, nil
	}
	want := min(k, live)
	if filter != nil {
		card := filter.GetCardinality()
		if card == 0 {
			return nil, nil
		}
		if filterScanIsCheaper(card, ef, live) {
			return h.exact(sc, qq, k, filter, card), nil
		}
		want = k // at most min(k, #passing): the walk cannot tell #passing
	}
	res := h.walk(sc, walkq, k, ef, filter)
	if len(res) < want {
		return h.exact(sc, qq, k, filter, 0), nil
	}
	return res, nil
}

// filterScanIsCheaper reports whether an exact scan of a filter's card
// members beats a filtered walk. The scan costs about card scores; the walk
// must admit ef nodes, so it visits about live/card times the nodes of an
// unfiltered walk, itself a few ef·log(live) scores. Equal costs make the
// threshold card² ≈ α·ef·live; BenchmarkHNSWFilterPaths (n = 20,000, dim
// 64, ef 64) put the crossover near 3,300 passing (the scan 265 µs, the
// walk 250 µs; at 200 passing the walk takes 3.1 ms, the scan 13 µs), that
// is α ≈ 9; α = 10 leans to the scan, which is also exact.
func filterScanIsCheaper(card uint64, ef, live int) bool {
	return card*card < 10*uint64(ef)*uint64(live)
}

// walk is the graph search: greedy descent on the upper layers, a beam of
// width ef on layer 0 admitting only live nodes that pass filter. With a
// quant query the walk scores codes and the ef nodes it keeps are scored
// again exactly: the results' order and scores are the float32 ones.
func (h *HNSW) walk(sc *hnswScratch, q query, k, ef int, filter *roaring.Bitmap) []Result {
	ep := cand{key: uint32(h.entry), score: h.score(q, uint32(h.entry))}
	for l := h.maxLevel; l > 0; l-- {
		ep = h.greedy(sc, q, ep, l)
	}
	sc.eps = append(sc.eps[:0], ep)
	h.searchLayer(sc, q, sc.eps, ef, 0, true, filter)
	if q.quant && !h.codesOnly {
		// The codes steered the walk; the nodes it kept are ranked by
		// their float32 scores, which the results report.
		sc.cands = h.rescore(sc, q, k, sc.cands)
		slices.SortFunc(sc.cands, func(a, b cand) int {
			if betterCand(a, b) {
				return -1
			}
			if betterCand(b, a) {
				return 1
			}
			return 0
		})
	}
	n := min(k, len(sc.cands))
	if n == 0 {
		return nil
	}
	// The candidates are ranked by score, then slot; candidates tied with
	// the k-th must be chosen by ID, as the exact scan does, so the whole
	// tie group is ranked before the cut.
	end := n
	for end < len(sc.cands) && sc.cands[end].score == sc.cands[n-1].score {
		end++
	}
	res := make([]Result, end)
	for i := range res {
		c := sc.cands[i]
		res[i] = Result{ID: h.ids[c.key], Score: c.score}
	}
	slices.SortFunc(res, compareResults)
	return res[:n:n]
}

// rescore replaces the estimates of cands (best first) by their float32
// scores, dropping the candidates that provably cannot be among the top k:
// those whose estimate plus its error bound (quantError) is below the k-th
// best float32 score of the candidates rescored before them. The top k
// and every candidate tied with the k-th are the ones rescoring them all
// would give.
//
// Measured on compact 20k centroids (64 floats; BenchmarkHNSWExported,
// k 10): 13.7 candidates a query were rescored at ef 30, 60 and 110 alike,
// instead of all ef.
func (h *HNSW) rescore(sc *hnswScratch, q query, k int, cands []cand) []cand {
	exact := q.exact()
	sc.found = sc.found[:0] // the k best float32 scores so far
	out := cands[:0]
	for _, c := range cands {
		if len(sc.found) == k && c.score+h.quantError(q, c.key, c.score) < sc.found[0].score {
			continue
		}
		c.score = h.score(exact, c.key)
		sc.found.keep(c, k)
		out = append(out, c)
	}
	if rescoreCounts != nil {
		rescoreCounts.cands += len(cands)
		rescoreCounts.rescored += len(out)
	}
	return out
}

// rescoreCounts, when set (by benchmarks, single-threaded), counts the
// candidates rescore sees and rescores.
var rescoreCounts *struct{ cands, rescored int }

// quantError bounds |est − s|, where est is the estimated score (from the
// codes) of node n against the quant query q and s its float32 score.
// With t and s_n the scales of q and of n's code, the estimate of the dot
// product is within t/2·|v|₁ + s_n/2·|q|₁ + d·t·s_n/4 of the exact one
// (quant.go), |v|₁ ≤ √(d·|v|²); on top of that both float32 computations
// round: the estimate's product by a few ulp, the float32 dot by at most
// d·2⁻²⁴·|q|·|v| (sequential summation's bound), doubled here for margin.
// L2 scores hold the dot product twice, and round their norm terms.
func (h *HNSW) quantError(q query, n uint32, est float32) float32 {
	d := float64(h.dim)
	n2 := float64(h.norms2[n]) * (1 + 1e-6)
	vn := math.Sqrt(n2)
	qn := math.Sqrt(float64(q.n2) * (1 + 1e-6))
	t, s := float64(q.cs), float64(h.cscales[n])
	e := t/2*math.Sqrt(d)*vn + s/2*float64(q.l1)*(1+1e-6) + d*t*s/4
	e += 1e-6*math.Abs(float64(est)) + d*1.2e-7*qn*vn
	if h.metric == L2 {
		e = 2*e + 1e-6*(float64(q.n2)+n2)
	}
	return float32(e*(1+1e-5) + 1e-30)
}

// exact scans the live nodes passing filter (of cardinality card, 0 when
// unknown).
func (h *HNSW) exact(sc *hnswScratch, q query, k int, filter *roaring.Bitmap, card uint64) []Result {
	sc.found = sc.found[:0]
	if filter != nil && card == 0 {
		card = filter.GetCardinality()
	}
	if filter != nil && card < uint64(len(h.slot)) {
		it := filter.Iterator()
		for it.HasNext() {
			id := it.Next()
			if s, ok := h.slot[id]; ok {
				sc.found.keep(cand{score: h.score(q, s), key: id}, k)
			}
		}
	} else {
		for s, st := range h.states {
			if st == slotLive && (filter == nil || filter.Contains(h.ids[s])) {
				sc.found.keep(cand{score: h.score(q, uint32(s)), key: h.ids[s]}, k)
			}
		}
	}
	sc.cands = sc.found.drain(sc.cands)
	res := make([]Result, len(sc.cands))
	for i, c := range sc.cands {
		res[i] = Result{ID: c.key, Score: c.score}
	}
	return res
}
