package index

import (
	"github.com/wpcdb/wpcdb/internal/order"
)

// better reports whether a ranks before b (internal/order).
func better(a, b Result) bool { return order.Better(a.Score, a.ID, b.Score, b.ID) }

// compareResults is better as a comparison function for slices.SortFunc.
func compareResults(a, b Result) int { return order.Compare(a.Score, a.ID, b.Score, b.ID) }

// topK keeps the k best results seen, in a heap whose root is the worst:
// the walks' typed heap (hnsw_scratch.go) with IDs for keys. (It was
// container/heap over an interface, whose calls were an eighth of a flat
// scan of 10,000 64-float vectors at k = 20.)
type topK struct {
	k int
	h worstHeap
}

func newTopK(k int) *topK { return &topK{k: k, h: make(worstHeap, 0, k)} }

func (t *topK) push(r Result) { t.h.keep(cand{score: r.Score, key: r.ID}, t.k) }

// worst is the score of the worst kept result (only when k are kept).
func (t *topK) worst() float32 { return t.h[0].score }

// full reports whether k results are kept.
func (t *topK) full() bool { return len(t.h) == t.k }

// sorted returns the kept results, best first.
func (t *topK) sorted() []Result {
	cs := t.h.drain(nil)
	out := make([]Result, len(cs))
	for i, c := range cs {
		out[i] = Result{ID: c.key, Score: c.score}
	}
	return out
}
