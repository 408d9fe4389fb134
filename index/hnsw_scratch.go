package index

import (
	"slices"

	"github.com/wpcdb/wpcdb/internal/order"
)

// Scratch state of one graph walk: a visited set and two typed heaps, kept
// in a sync.Pool so that a search allocates nothing per visited node.

// cand is a node (or, in exact scans, an ID: key) with its score against
// the query.
type cand struct {
	score float32
	key   uint32
}

// betterCand ranks a before b: internal/order's order (score descending,
// then key ascending; a NaN score ties), written out so that it inlines in
// the heaps: order.Better's generic call was a fifth of a graph walk's
// time (BenchmarkSearchSmall/linear profile).
func betterCand(a, b cand) bool {
	return a.score > b.score || !(a.score < b.score) && a.key < b.key
}

// compareCands is betterCand as a comparison function for slices.SortFunc.
func compareCands(a, b cand) int { return order.Compare(a.score, a.key, b.score, b.key) }

// bestHeap is a max-heap: the root is the best candidate (the frontier of
// a walk).
type bestHeap []cand

func (h *bestHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !betterCand(s[i], s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *bestHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	*h = s
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && betterCand(s[r], s[l]) {
			m = r
		}
		if !betterCand(s[m], s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return top
}

// worstHeap is a min-heap: the root is the worst kept result.
type worstHeap []cand

func (h *worstHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !betterCand(s[p], s[i]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *worstHeap) pop() cand {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	*h = s
	h.down(0)
	return top
}

func (h worstHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && betterCand(h[l], h[r]) {
			m = r
		}
		if !betterCand(h[i], h[m]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// keep pushes c into a heap holding at most k results.
func (h *worstHeap) keep(c cand, k int) {
	if len(*h) < k {
		h.push(c)
		return
	}
	if betterCand(c, (*h)[0]) {
		(*h)[0] = c
		h.down(0)
	}
}

// drain empties the heap into dst, best first.
func (h *worstHeap) drain(dst []cand) []cand {
	n := len(*h)
	dst = slices.Grow(dst[:0], n)[:n]
	for i := n - 1; i >= 0; i-- {
		dst[i] = h.pop()
	}
	return dst
}

// visitedSet marks nodes with a generation counter, so that a reset is
// O(1) instead of clearing the marks.
type visitedSet struct {
	marks []uint32
	gen   uint32
}

// reset starts a new walk over n nodes.
func (v *visitedSet) reset(n int) {
	if len(v.marks) < n {
		v.marks = make([]uint32, n+n/4+64)
		v.gen = 0
	}
	v.gen++
	if v.gen == 0 {
		clear(v.marks)
		v.gen = 1
	}
}

// visit marks s and reports whether it was not yet marked.
func (v *visitedSet) visit(s uint32) bool {
	if v.marks[s] == v.gen {
		return false
	}
	v.marks[s] = v.gen
	return true
}

// hnswScratch is the per-walk state, pooled.
type hnswScratch struct {
	visited  visitedSet
	frontier bestHeap
	found    worstHeap
	q        []float32 // the prepared query
	qcode    []int8    // its code (quant.go)
	eps      []cand    // entry points of the next layer
	cands    []cand    // drained results / neighbour candidates
	sel      []cand    // selected neighbours
	pruneBuf []cand    // candidates when pruning or repairing links
	pruned   []cand    // their selection
	stack    []uint32  // tombstones to expand in a repair
	batch    []uint32  // a node's unvisited neighbours (searchLayer)
	touch    float32   // sink of searchLayer's prefetching loads
}
