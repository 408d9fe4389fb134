package index

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// The graph algorithms of HNSW: layer search (the paper's algorithm 2),
// insertion (algorithm 1), neighbour selection (algorithm 4) and the repair
// of links to tombstones. Callers hold the lock: read for searches, write
// for everything that changes links.

// query is a prepared vector bound with its squared norm; scores of nodes
// against it go through score.
//
// A walk's query may carry its int8 code (quant): its scores of nodes are
// then estimates from the nodes' codes (quant.go), to be made exact by
// rescoring with the float32 query (exact) before they are returned.
type query struct {
	v  []float32
	n2 float32
	c  []int8 // the code of v and its scale, when quant
	cs float32
	l1 float32 // |v|₁, when quant (rescore's error bound)
	// quant: score nodes by their codes.
	quant bool
}

// exact returns q scoring with the float32 vectors.
func (q query) exact() query { return query{v: q.v, n2: q.n2} }

// score is the "higher is closer" score of node s against q.
func (h *HNSW) score(q query, s uint32) float32 {
	var d float32
	if q.quant {
		d = quantDot(q.c, q.cs, h.codes[int(s)*h.dim:int(s+1)*h.dim], h.cscales[s])
	} else {
		d = dot(q.v, h.vecs[int(s)*h.dim:int(s+1)*h.dim])
	}
	if h.metric == L2 {
		return -(q.n2 + h.norms2[s] - 2*d)
	}
	return d
}

// nodeQuery binds node s as a query: its code when the graph keeps no
// vectors.
func (h *HNSW) nodeQuery(s uint32) query {
	if h.codesOnly {
		return query{c: h.codes[int(s)*h.dim : int(s+1)*h.dim], cs: h.cscales[s], n2: h.norms2[s], quant: true}
	}
	return query{v: h.vecs[int(s)*h.dim : int(s+1)*h.dim], n2: h.norms2[s]}
}

func (h *HNSW) maxDeg(level int) int {
	if level == 0 {
		return h.maxDeg0
	}
	return h.opts.M
}

// neighbours returns the links of s on level (aliasing the graph).
func (h *HNSW) neighbours(s uint32, level int) []uint32 {
	if level == 0 {
		base := int(s) * (h.maxDeg0 + 1)
		return h.links0[base+1 : base+1+int(h.links0[base])]
	}
	return h.upper[s][level-1]
}

// setNeighbours replaces the links of s on level by the keys of sel.
func (h *HNSW) setNeighbours(s uint32, level int, sel []cand) {
	if level == 0 {
		base := int(s) * (h.maxDeg0 + 1)
		h.links0[base] = uint32(len(sel))
		for i, c := range sel {
			h.links0[base+1+i] = c.key
		}
		return
	}
	l := h.upper[s][level-1][:0]
	for _, c := range sel {
		l = append(l, c.key)
	}
	h.upper[s][level-1] = l
}

// greedy walks from ep to a local best of q on level (the beam of width 1
// used above the layers a search or an insertion works on).
//
// A node's links are scored in one batch (scoreBatch): with a DotI8 call
// each, the descent was an eighth of a walk at ef 30 on compact 20k.
func (h *HNSW) greedy(sc *hnswScratch, q query, ep cand, level int) cand {
	for changed := true; changed; {
		changed = false
		ns := h.neighbours(ep.key, level)
		for i, s := range h.scoreBatch(sc, q, ns) {
			if s > ep.score {
				ep = cand{score: s, key: ns[i]}
				changed = true
			}
		}
	}
	return ep
}

// searchLayer runs a beam search of width ef on level from eps, leaving in
// sc.cands the best ef admitted nodes, best first (ties by slot). With
// liveOnly, tombstones and nodes whose IDs are not in filter (when not nil)
// are traversed but not admitted; the walk goes on while fewer than ef are
// admitted.
//
// The beam is one sorted pool (beamPool) instead of the paper's two heaps
// (candidates to expand, best found): the same walk, cheaper per node.
func (h *HNSW) searchLayer(sc *hnswScratch, q query, eps []cand, ef, level int, liveOnly bool, filter *roaring.Bitmap) {
	sc.visited.reset(len(h.ids))
	pool := &sc.pool
	pool.reset(ef)
	admit := func(s uint32) bool {
		return !liveOnly || (h.states[s] == slotLive && (filter == nil || filter.Contains(h.ids[s])))
	}
	for _, ep := range eps {
		if sc.visited.visit(ep.key) && (!pool.full() || ep.score > pool.bound()) {
			pool.insert(ep, admit(ep.key))
		}
	}
	for {
		c, ok := pool.next()
		if !ok {
			break
		}
		// The unvisited neighbours first, then their scores in one batch
		// (scoreBatch: one assembly call for the codes of them all).
		batch := sc.batch[:0]
		for _, n := range h.neighbours(c, level) {
			if sc.visited.visit(n) {
				batch = append(batch, n)
			}
		}
		sc.batch = batch
		if walkCounts != nil {
			walkCounts.expanded++
			walkCounts.scored += len(batch)
		}
		scores := h.scoreBatch(sc, q, batch)
		for i, n := range batch {
			if s := scores[i]; !pool.full() || s > pool.bound() {
				pool.insert(cand{score: s, key: n}, admit(n))
			}
		}
	}
	sc.cands = pool.results(sc.cands)
}

// walkCounts, when set (by benchmarks, single-threaded), counts the
// nodes layer searches expand and score: a cost of a walk that a loaded
// machine's timings cannot blur.
var walkCounts *struct{ expanded, scored int }

// scoreBatch returns the scores of nodes ns against q, h.score's values,
// in sc.scores. By codes, one simd.DotsI8 call scores them all: a DotI8
// call per node cost three calls (the path's function value, the slice
// wrapper, the assembly) around a 64-byte dot. On compact 20k centroids
// (BenchmarkHNSWExported, thread CPU per query, 7 alternating runs on a
// machine at load 10–14) ef 32 went from 18.3 to 16.4 µs (fastest run;
// medians 24.5 → 19.7), ef 64 from 36.2 to 33.5 (47.4 → 39.8). The former software prefetch (touching each node's first
// line before scoring any) is gone: the rows' loads in the one assembly
// loop are independent and overlap by themselves.
func (h *HNSW) scoreBatch(sc *hnswScratch, q query, ns []uint32) []float32 {
	out := slices.Grow(sc.scores[:0], len(ns))[:len(ns)]
	sc.scores = out
	if q.quant {
		dots := slices.Grow(sc.dots[:0], len(ns))[:len(ns)]
		sc.dots = dots
		simd.DotsI8(dots, q.c, h.codes, ns)
		for i, n := range ns {
			out[i] = q.cs * h.cscales[n] * float32(dots[i])
		}
	} else {
		for i, n := range ns {
			out[i] = dot(q.v, h.vecs[int(n)*h.dim:int(n+1)*h.dim])
		}
	}
	if h.metric == L2 {
		for i, n := range ns {
			out[i] = -(q.n2 + h.norms2[n] - 2*out[i])
		}
	}
	return out
}

// insert links the new node s into the graph (algorithm 1).
func (h *HNSW) insert(sc *hnswScratch, s uint32) {
	level := int(h.levels[s])
	if h.entry < 0 {
		h.entry = int32(s)
		h.maxLevel = level
		return
	}
	q := h.nodeQuery(s)
	ep := cand{key: uint32(h.entry), score: h.score(q, uint32(h.entry))}
	for l := h.maxLevel; l > level; l-- {
		ep = h.greedy(sc, q, ep, l)
	}
	sc.eps = append(sc.eps[:0], ep)
	for l := min(level, h.maxLevel); l >= 0; l-- {
		h.searchLayer(sc, q, sc.eps, h.opts.EfConstruction, l, false, nil)
		sc.eps = append(sc.eps[:0], sc.cands...)
		// Link to live nodes only (tombstones waste degree and go away at
		// the next repair), unless only tombstones were found: then linking
		// to them keeps the new node reachable until the repair.
		live := sc.cands[:0]
		for _, c := range sc.eps {
			if h.states[c.key] == slotLive {
				live = append(live, c)
			}
		}
		if len(live) > 0 {
			sc.cands = live
		} else {
			sc.cands = append(sc.cands[:0], sc.eps...)
		}
		sc.sel = h.selectNeighbours(sc.cands, h.opts.M, sc.sel[:0])
		h.setNeighbours(s, l, sc.sel)
		for _, n := range sc.sel {
			h.link(sc, n.key, s, l)
		}
	}
	if level > h.maxLevel {
		h.entry = int32(s)
		h.maxLevel = level
	}
}

// selectNeighbours is the selection heuristic (algorithm 4, without
// extending the candidates, as hnswlib does): walking the candidates best
// first, keep one only if it is closer to the base node than to every one
// kept, so that the links point in diverse directions; then, for inner
// product and unlike hnswlib, fill the selection up to m with the best
// pruned ones (keepPrunedConnections). cands are sorted best first, scored against the
// base node; selectNeighbours reorders them.
func (h *HNSW) selectNeighbours(cands []cand, m int, dst []cand) []cand {
	if len(cands) <= m {
		return append(dst, cands...)
	}
	start := len(dst)
	pruned := 0
	for i, c := range cands {
		if len(dst)-start >= m {
			break
		}
		cq := h.nodeQuery(c.key)
		good := true
		for _, r := range dst[start:] {
			if h.score(cq, r.key) > c.score {
				good = false
				break
			}
		}
		if good {
			dst = append(dst, c)
		} else {
			// Compact the pruned ones at the front of cands (their order
			// kept) for keepPruned.
			cands[pruned], cands[i] = cands[i], cands[pruned]
			pruned++
		}
	}
	if keepPrunedConnections && h.metric == InnerProduct && !h.codesOnly {
		for _, c := range cands[:pruned] {
			if len(dst)-start >= m {
				break
			}
			dst = append(dst, c)
		}
	}
	return dst
}

// keepPrunedConnections fills a selection short of m with the best
// candidates the heuristic pruned (the paper's keepPrunedConnections; off
// only in benchmarks comparing the two). An inner-product graph needs it:
// the heuristic drops a candidate closer to a kept large-norm node than to
// the base, which is most candidates once a large-norm node is kept.
// Measured on compact 20k centroids (64 floats, inner product, M 16,
// ef_construction 200; BenchmarkHNSWExported, recall@10 against the exact
// top 10 of 200 queries, nodes scored a query): without it layer 0 had a
// mean degree of 3.7 and 9,667 nodes without in-links, and a beam of 32
// found 0.958 (543 nodes scored), 64 0.984 (892), 256 0.993 (2,092):
// hnswlib (M 16, ef_construction 200, which does not keep them) found
// 0.960, 0.985, 0.994. With it: mean degree 17.8, and 0.988 (608), 0.998
// (997), 1.000 (2,408). Filling only up to M at layer 0 (whose bound is
// 2M) found 0.984 (584), 0.997 (962), 0.9995 (2,340): less per node
// scored. The index's recall tests (testdata/recall, 8 dimensions, 50
// queries) moved from 0.79 to 0.95 for inner product, and from 0.99 to
// 0.98 for L2 and 0.97 to 0.96 for cosine, whose heuristic does not
// degenerate: L2 and cosine graphs select as hnswlib does.
//
// A graph of codes only (a first stage that only prunes: φ, PCA) selects
// as hnswlib does too. On paper 20k (φ, 1,536 floats, `wpcdb bench
// --workload paper --n 20000 --queries 100`, idle machine) keeping the
// pruned ones lowered recall@10 after the rerank from 0.993 to 0.926 at
// R = 20 and from 0.997 to 0.954 at the default depth: φ's norms vary
// little, so the heuristic does not degenerate there, and the filling
// links crowd out the diverse ones.
var keepPrunedConnections = true

// link adds the link n → s on level, pruning n's links with the heuristic
// when they exceed the level's degree bound. Tombstones are dropped first.
func (h *HNSW) link(sc *hnswScratch, n, s uint32, level int) {
	ns := h.neighbours(n, level)
	if len(ns) < h.maxDeg(level) {
		if level == 0 {
			base := int(n) * (h.maxDeg0 + 1)
			h.links0[base+1+len(ns)] = s
			h.links0[base]++
		} else {
			h.upper[n][level-1] = append(ns, s)
		}
		return
	}
	q := h.nodeQuery(n)
	cands := sc.pruneBuf[:0]
	for _, x := range ns {
		if h.states[x] == slotLive {
			cands = append(cands, cand{score: h.score(q, x), key: x})
		}
	}
	cands = append(cands, cand{score: h.score(q, s), key: s})
	slices.SortFunc(cands, compareCands)
	sel := h.selectNeighbours(cands, h.maxDeg(level), sc.pruned[:0])
	h.setNeighbours(n, level, sel)
	sc.pruneBuf, sc.pruned = cands, sel
}

// repair removes the tombstones. On each layer, every tombstone gets a
// replacement: the live node closest to it among those reachable from it
// through tombstones (its links are intact until the end). Each live node's
// links to tombstones are replaced by their replacements, so that every
// path through a tombstone keeps going the same way, then live nodes that
// only tombstones linked to are linked from their best neighbour. The
// tombstones' slots are then freed.
//
// Reselecting a node's links with the heuristic over its tombstones'
// neighbours (hnswlib's repair) was measured worse: on clustered data it
// drops the few long links between clusters and leaves clusters
// unreachable (recall@10 after deleting 30%: 0.952 for InnerProduct, 0.998
// for L2, against 0.990 and 0.999 with replacements).
func (h *HNSW) repair(sc *hnswScratch) {
	if len(h.slot) == 0 {
		h.reset()
		return
	}
	if h.states[h.entry] != slotLive {
		best := -1
		for s, st := range h.states {
			if st == slotLive && (best < 0 || h.levels[s] > h.levels[best]) {
				best = s
			}
		}
		h.entry = int32(best)
		h.maxLevel = int(h.levels[best])
	}
	work := make([]int32, len(h.ids)) // replacements, then in-degrees
	for l := 0; l <= h.maxLevel; l++ {
		for s, st := range h.states {
			if st == slotDeleted && int(h.levels[s]) >= l {
				work[s] = h.nearestLive(sc, uint32(s), l)
			}
		}
		for s, st := range h.states {
			if st == slotLive && int(h.levels[s]) >= l {
				h.replaceLinks(sc, uint32(s), l, work)
			}
		}
		h.relinkOrphans(sc, l, work)
	}
	for s, st := range h.states {
		if st == slotDeleted {
			h.states[s] = slotFree
			h.links0[s*(h.maxDeg0+1)] = 0
			h.upper[s] = nil
			h.free = append(h.free, uint32(s))
		}
	}
	slices.Sort(h.free)
	slices.Reverse(h.free)
	h.deleted = 0
}

// nearestLive returns the live node closest to tombstone d among those
// reachable from d through tombstones on level (a bounded search), or -1.
func (h *HNSW) nearestLive(sc *hnswScratch, d uint32, level int) int32 {
	q := h.nodeQuery(d)
	sc.visited.reset(len(h.ids))
	sc.visited.visit(d)
	queue := append(sc.stack[:0], d)
	best, found := cand{}, false
	for head := 0; head < len(queue) && head < 64; head++ {
		for _, n := range h.neighbours(queue[head], level) {
			if !sc.visited.visit(n) {
				continue
			}
			if h.states[n] == slotLive {
				if c := (cand{score: h.score(q, n), key: n}); !found || betterCand(c, best) {
					best, found = c, true
				}
			} else if !found {
				queue = append(queue, n)
			}
		}
	}
	sc.stack = queue[:0]
	if !found {
		return -1
	}
	return int32(best.key)
}

// replaceLinks replaces each tombstone among the links of s on level by
// its replacement (repl, from nearestLive), dropping duplicates. A node
// left without links gets them as an insertion would.
func (h *HNSW) replaceLinks(sc *hnswScratch, s uint32, level int, repl []int32) {
	ns := h.neighbours(s, level)
	if !slices.ContainsFunc(ns, func(n uint32) bool { return h.states[n] != slotLive }) {
		return
	}
	sel := sc.pruned[:0]
	for _, n := range ns {
		if h.states[n] == slotLive {
			sel = append(sel, cand{key: n})
		}
	}
	for _, n := range ns {
		if h.states[n] == slotLive {
			continue
		}
		r := repl[n]
		if r < 0 || uint32(r) == s || slices.ContainsFunc(sel, func(c cand) bool { return c.key == uint32(r) }) {
			continue
		}
		sel = append(sel, cand{key: uint32(r)})
	}
	if len(sel) == 0 {
		sel = h.searchNeighbours(sc, s, level, sel)
	}
	h.setNeighbours(s, level, sel)
	sc.pruned = sel
}

// searchNeighbours selects links for s on level as an insertion would,
// from the (live) entry, appending them to dst.
func (h *HNSW) searchNeighbours(sc *hnswScratch, s uint32, level int, dst []cand) []cand {
	q := h.nodeQuery(s)
	ep := cand{key: uint32(h.entry), score: h.score(q, uint32(h.entry))}
	for l := h.maxLevel; l > level; l-- {
		ep = h.greedy(sc, q, ep, l)
	}
	sc.eps = append(sc.eps[:0], ep)
	h.searchLayer(sc, q, sc.eps, h.opts.EfConstruction, level, true, nil)
	sc.cands = slices.DeleteFunc(sc.cands, func(c cand) bool { return c.key == s })
	return h.selectNeighbours(sc.cands, h.opts.M, dst)
}

// reset empties the graph, keeping the options and the level generator.
func (h *HNSW) reset() {
	h.vecs, h.norms2, h.ids, h.levels, h.states = h.vecs[:0], h.norms2[:0], h.ids[:0], h.levels[:0], h.states[:0]
	h.codes, h.cscales = h.codes[:0], h.cscales[:0]
	h.links0, h.upper, h.free = h.links0[:0], nil, h.free[:0]
	h.deleted, h.entry, h.maxLevel = 0, -1, 0
}

// relinkOrphans gives each live node on level that no live node links to
// (its in-links all came from tombstones) a link from its best live
// neighbour, so that it stays reachable. indeg is scratch of len(h.ids).
func (h *HNSW) relinkOrphans(sc *hnswScratch, level int, indeg []int32) {
	clear(indeg)
	for s, st := range h.states {
		if st == slotLive && int(h.levels[s]) >= level {
			for _, n := range h.neighbours(uint32(s), level) {
				indeg[n]++
			}
		}
	}
	for s, st := range h.states {
		if st != slotLive || int(h.levels[s]) < level || indeg[s] > 0 || int32(s) == h.entry {
			continue
		}
		q := h.nodeQuery(uint32(s))
		best := cand{key: ^uint32(0)}
		for _, n := range h.neighbours(uint32(s), level) {
			if c := (cand{score: h.score(q, n), key: n}); h.states[n] == slotLive && (best.key == ^uint32(0) || betterCand(c, best)) {
				best = c
			}
		}
		if best.key != ^uint32(0) {
			h.link(sc, best.key, uint32(s), level)
		}
	}
}
