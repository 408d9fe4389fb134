package index

import (
	"container/heap"
	"sort"
)

// better reports whether a ranks before b: higher score, then lower ID.
func better(a, b Result) bool {
	if a.Score != b.Score {
		return a.Score > b.Score
	}
	return a.ID < b.ID
}

// topK keeps the k best results seen, in a heap whose root is the worst.
type topK struct {
	k int
	h resultHeap
}

func newTopK(k int) *topK { return &topK{k: k, h: make(resultHeap, 0, k)} }

func (t *topK) push(r Result) {
	if len(t.h) < t.k {
		heap.Push(&t.h, r)
		return
	}
	if better(r, t.h[0]) {
		t.h[0] = r
		heap.Fix(&t.h, 0)
	}
}

// sorted returns the kept results, best first.
func (t *topK) sorted() []Result {
	out := append([]Result(nil), t.h...)
	sort.Slice(out, func(i, j int) bool { return better(out[i], out[j]) })
	return out
}

// resultHeap is a min-heap by rank: the root is the worst result.
type resultHeap []Result

func (h resultHeap) Len() int           { return len(h) }
func (h resultHeap) Less(i, j int) bool { return better(h[j], h[i]) }
func (h resultHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *resultHeap) Push(x any)        { *h = append(*h, x.(Result)) }
func (h *resultHeap) Pop() any {
	old := *h
	r := old[len(old)-1]
	*h = old[:len(old)-1]
	return r
}
