package index

import (
	"slices"

	"github.com/wpcdb/wpcdb/internal/order"
)

// Scratch state of one graph walk: a visited set, the beam and a typed
// heap, kept in a sync.Pool so that a search allocates nothing per visited
// node.

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
// O(1) instead of clearing the marks. The marks are 16 bits (cleared once
// every 65,535 walks), as hnswlib's: half the cache lines of 32-bit marks,
// 40 KB for 20,000 nodes, within a core's L1 data cache.
type visitedSet struct {
	marks []uint16
	gen   uint16
}

// reset starts a new walk over n nodes.
func (v *visitedSet) reset(n int) {
	if len(v.marks) < n {
		v.marks = make([]uint16, n+n/4+64)
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

// beamPool is the beam of a layer search: the nodes scored so far that
// can still matter, sorted best first, each marked admitted (a result
// candidate) or not (a tombstone or a node outside the filter, traversed
// only) and expanded or not. It holds every scored node above the bound,
// the ef-th admitted score once ef are admitted, which is what the paper's
// two heaps hold between them (the candidates to expand and the best ef
// found): the walk expands the best unexpanded entry until none is left,
// as the paper's stops when the best candidate is worse than the ef-th
// found.
//
// An insertion shifts the entries after it (a memmove of a few hundred
// bytes at ef 32) where the heaps paid two sift-downs of unpredictable
// branches; the next entry to expand is found by a cursor, not a pop.
// Measured on compact 20k centroids (BenchmarkHNSWExported, thread CPU
// per query, fastest of 7 alternating runs at load 10–14): ef 32 16.4 →
// 13.3 µs, ef 64 33.5 → 25.0 µs (the same recall: the walk is the same).
type beamPool struct {
	e        []poolEntry
	ef       int
	admitted int // admitted entries in e
	cur      int // no unexpanded entry before cur
}

type poolEntry struct {
	cand
	flags uint32
}

const (
	poolAdmitted = 1 << iota
	poolExpanded
)

func (p *beamPool) reset(ef int) {
	p.e, p.ef, p.admitted, p.cur = p.e[:0], ef, 0, 0
}

// full reports whether ef entries are admitted: a node must then score
// above bound to enter.
func (p *beamPool) full() bool { return p.admitted >= p.ef }

// bound is the ef-th admitted score (only when full): the last entry, as
// insert drops every entry after it.
func (p *beamPool) bound() float32 { return p.e[len(p.e)-1].score }

// insert adds c (scoring above the bound when full) after the entries
// scoring at least as much. Once ef entries are admitted the pool ends at
// the ef-th admitted one: an admitted node entering a full pool pushes out
// the last entry and any traversed-only entries left after the new last.
//
// The common case, an admitted node entering a full pool, shifts the
// entries below it by one over the last (which leaves) instead of growing
// and trimming the slice: slices.Insert and the trim were a quarter of a
// walk (BenchmarkSearchSmall/linear profile).
func (p *beamPool) insert(c cand, admitted bool) {
	e := p.e
	n := len(e)
	lo := 0
	for m := n; m > 0; {
		half := m / 2
		if e[lo+half].score >= c.score {
			lo += half + 1
			m -= half + 1
		} else {
			m = half
		}
	}
	if lo < p.cur {
		p.cur = lo
	}
	if admitted && p.admitted >= p.ef {
		// Full: c scores above the last entry, the ef-th admitted, so
		// lo < n; that entry leaves, and so do the traversed-only
		// entries it leaves at the end.
		copy(e[lo+1:n], e[lo:n-1])
		e[lo] = poolEntry{cand: c, flags: poolAdmitted}
		for n > 0 && e[n-1].flags&poolAdmitted == 0 {
			n--
		}
		p.e = e[:n]
		return
	}
	var f uint32
	if admitted {
		f = poolAdmitted
		p.admitted++
	}
	e = append(e, poolEntry{})
	copy(e[lo+1:], e[lo:n])
	e[lo] = poolEntry{cand: c, flags: f}
	if admitted && p.admitted == p.ef {
		// Now full: the bound is the ef-th admitted score; the
		// traversed-only entries below it leave.
		n++
		for e[n-1].flags&poolAdmitted == 0 {
			n--
		}
		e = e[:n]
	}
	p.e = e
}

// next marks the best unexpanded entry expanded and returns its node, or
// false when every entry is expanded.
func (p *beamPool) next() (uint32, bool) {
	for p.cur < len(p.e) {
		e := &p.e[p.cur]
		p.cur++
		if e.flags&poolExpanded == 0 {
			e.flags |= poolExpanded
			return e.key, true
		}
	}
	return 0, false
}

// results appends the admitted entries to dst[:0], best first, ties by
// key (the order worstHeap.drain gave).
func (p *beamPool) results(dst []cand) []cand {
	dst = dst[:0]
	for _, e := range p.e {
		if e.flags&poolAdmitted != 0 {
			dst = append(dst, e.cand)
		}
	}
	// Sorted by score already; only runs of equal scores may need their
	// keys ordered.
	for i := 1; i < len(dst); i++ {
		if dst[i].score == dst[i-1].score {
			slices.SortFunc(dst, compareCands)
			break
		}
	}
	return dst
}

// hnswScratch is the per-walk state, pooled.
type hnswScratch struct {
	visited  visitedSet
	pool     beamPool  // the beam of searchLayer
	found    worstHeap // the top k of an exact scan
	q        []float32 // the prepared query
	qcode    []int8    // its code (quant.go)
	eps      []cand    // entry points of the next layer
	cands    []cand    // drained results / neighbour candidates
	sel      []cand    // selected neighbours
	pruneBuf []cand    // candidates when pruning or repairing links
	pruned   []cand    // their selection
	stack    []uint32  // tombstones to expand in a repair
	batch    []uint32  // a node's unvisited neighbours (searchLayer)
	scores   []float32 // their scores (scoreBatch)
	dots     []int32   // their codes' dots (scoreBatch)
}
