package index

import (
	"container/heap"
	"slices"

	"github.com/wpcdb/wpcdb/internal/order"
)

// better reports whether a ranks before b (internal/order).
func better(a, b Result) bool { return order.Better(a.Score, a.ID, b.Score, b.ID) }

// compareResults is better as a comparison function for slices.SortFunc.
func compareResults(a, b Result) int { return order.Compare(a.Score, a.ID, b.Score, b.ID) }

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
	slices.SortFunc(out, compareResults)
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
