package index

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// TieredOptions configure a Tiered index.
type TieredOptions struct {
	// GraphAt is the number of vectors at which the HNSW graph is built;
	// below it every vector stays in the flat buffer, whose exact scan is
	// cheaper than a graph walk. 1 builds the graph from the first vector;
	// 0 or less never builds it (a flat index).
	GraphAt int
	// HNSW configures the graph.
	HNSW HNSWOptions
	// CodesOnly makes the graph keep its vectors' int8 codes and not the
	// vectors (HNSW.dropVectors): for a first stage that only prunes, whose
	// candidates are reranked exactly. A loaded graph that kept its
	// vectors drops them; one saved without them cannot serve an index
	// that wants them (LoadTiered errs, and the caller rebuilds). The
	// buffer keeps codes too (flat_codes.go), scanned with simd.PanelI8:
	// it is the whole first stage of a collection below the graph
	// threshold (65,536 64-float centroids).
	//
	// Measured on compact 100k (PCA-64, default kernel, `wpcdb bench
	// --workload compact --n 100000 --queries 100 --peers=false`): the
	// graph built and walked on codes alone found recall@10 0.973 at the
	// default depth R = 100 (0.955 at R = 20, 0.987 at R = 400), against
	// 0.977 (0.960, 0.988) with the vectors kept; the first stage went from
	// 580 to 257 bytes an item and the run's peak RSS from 757 to 617 MiB.
	// On 8,000 clustered, anisotropic 64-float vectors (index test data,
	// ef 50) the codes alone lose about 0.015 of recall@10 against the
	// exact top 10, most of it the estimates' order among the top, which a
	// rerank of R ≥ 20 candidates does not see.
	CodesOnly bool
}

// Tiered is a flat buffer in front of an HNSW graph: the first stage of a
// collection. Add puts a vector in the buffer, where an exact scan finds it
// at once, and returns; once the index holds GraphAt vectors a background
// builder moves buffered vectors into the graph one at a time. A bulk load
// therefore pays for the graph after (and beside) the load instead of in
// each write, and a search stays complete meanwhile: it scans the buffer
// exactly, walks the graph, and merges the two.
//
// Every vector is in the buffer, the graph, or (while it moves) both;
// never in neither, because the builder adds a vector to the graph before it
// removes it from the buffer, and Search reads the buffer before the graph.
// The graph insertion runs without the lock writers take, so writes never
// wait for the graph; during a move the buffer is the truth about the
// moving ID and readers ignore the graph's copy (an Add or Delete of that
// ID meanwhile makes the copy stale, and the builder removes it). A search
// concurrent with a re-add of an ID may miss that ID.
//
// Inner product graphs (used for score mode inner) have a known weakness:
// the neighbour selection favours large-norm nodes, and on data of nearly
// one cluster many small-norm nodes end with no in-links (index/testdata/
// recall). The textbook cure, an L2 graph over vectors augmented to a common
// norm Φ (Bachrach et al., 2014), was measured and rejected: on paper-shape
// φ vectors, whose squared norms spread 66-fold, it found 0.89 of the φ top
// 10 within the top 100 at 3,000 items and 0.45 at 20,000, against 0.998
// for the inner-product graph.
type Tiered struct {
	dim    int
	metric Metric
	opts   TieredOptions

	mu      sync.Mutex      // serializes Add, Delete, the start and end of a move, and Save
	ids     *roaring.Bitmap // every indexed ID, wherever its vector is
	pending *Flat
	graph   *HNSW // nil until GraphAt vectors are indexed
	running bool  // a builder goroutine is active
	// The vector the builder is inserting into the graph (noID: none), and
	// whether an Add or Delete of it came meanwhile.
	moving      uint32
	movingStale bool
	stopped     bool
	wg          sync.WaitGroup
	idle        *sync.Cond // broadcast when the builder stops
}

// NewTiered returns an empty Tiered index of dimension dim.
func NewTiered(dim int, m Metric, opts TieredOptions) (*Tiered, error) {
	if dim <= 0 {
		return nil, fmt.Errorf("%w: dimension %d", ErrInvalidOptions, dim)
	}
	if m > L2 {
		return nil, fmt.Errorf("%w: unknown metric %s", ErrInvalidOptions, m)
	}
	if err := opts.HNSW.Validate(); err != nil {
		return nil, err
	}
	opts.HNSW.EnsureDefaults()
	pending := NewFlat(dim, m)
	if opts.CodesOnly {
		pending = newCodeFlat(dim, m)
	}
	t := &Tiered{dim: dim, metric: m, opts: opts, pending: pending, moving: noID, ids: roaring.New()}
	t.idle = sync.NewCond(&t.mu)
	return t, nil
}

func (t *Tiered) Dim() int { return t.dim }

// Options returns the options the index was made with (defaults filled).
func (t *Tiered) Options() TieredOptions { return t.opts }

// Len is the number of indexed vectors (buffered or in the graph).
func (t *Tiered) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.ids.GetCardinality())
}

// Status reports how many vectors are in the graph and how many still wait
// in the flat buffer (a vector being moved counts as buffered).
func (t *Tiered) Status() (inGraph, buffered int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	buffered = t.pending.Len()
	return int(t.ids.GetCardinality()) - buffered, buffered
}

func (t *Tiered) Contains(id uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ids.Contains(id)
}

// IDs returns a new bitmap of the indexed IDs.
func (t *Tiered) IDs() *roaring.Bitmap {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ids.Clone()
}

// Missing returns the members of allowed the index does not hold, in
// ascending order (nil when it holds them all, the common case, found
// without building a bitmap: the AndNot was 4% of a linear-kernel search).
func (t *Tiered) Missing(allowed *roaring.Bitmap) []uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if allowed.AndCardinality(t.ids) == allowed.GetCardinality() {
		return nil
	}
	return roaring.AndNot(allowed, t.ids).ToArray()
}

// Add buffers the vector of id (replacing any earlier one) and wakes the
// builder when the graph is due.
func (t *Tiered) Add(id uint32, v []float32) error {
	if len(v) != t.dim {
		return fmt.Errorf("%w: %d, index has %d", ErrDimension, len(v), t.dim)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.touch(id)
	if err := t.pending.Add(id, v); err != nil {
		return err
	}
	t.ids.Add(id)
	if t.graph != nil { // the buffered vector supersedes it
		t.graph.Delete(id)
	}
	t.kickLocked()
	return nil
}

// Delete removes id; unknown IDs are ignored.
func (t *Tiered) Delete(id uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.touch(id)
	t.pending.Delete(id)
	t.ids.Remove(id)
	if t.graph != nil {
		t.graph.Delete(id)
	}
}

// touch marks a move of id in progress as stale (t.mu held).
func (t *Tiered) touch(id uint32) {
	if t.moving == id {
		t.movingStale = true
	}
}

// noID marks no move in progress; internal IDs never reach it (storage
// allocates them densely from 0).
const noID = ^uint32(0)

// kickLocked creates the graph when it is due and starts the builder when
// there is work for it.
func (t *Tiered) kickLocked() {
	if t.stopped || t.running || t.opts.GraphAt <= 0 || t.pending.Len() == 0 {
		return
	}
	if t.graph == nil {
		if t.ids.GetCardinality() < uint64(t.opts.GraphAt) {
			return
		}
		g, err := NewHNSW(t.dim, t.metric, t.opts.HNSW)
		if err != nil {
			return // options were validated in NewTiered
		}
		if t.opts.CodesOnly {
			g.dropVectors()
		}
		g.reserve(t.pending.Len())
		t.graph = g
	}
	t.running = true
	t.wg.Add(1)
	go t.build()
}

// build moves buffered vectors into the graph until the buffer is empty or
// the index is stopped.
func (t *Tiered) build() {
	defer t.wg.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	v := make([]float32, t.dim)
	for !t.stopped {
		id, ok := t.pending.last(v)
		if !ok {
			break
		}
		// Insert without t.mu, so that writers do not wait for the graph;
		// an Add or Delete of id meanwhile marks the move stale.
		t.moving, t.movingStale = id, false
		t.mu.Unlock()
		err := t.graph.Add(id, v)
		t.mu.Lock()
		t.moving = noID
		if err != nil {
			break // impossible: the dimensions agree
		}
		if t.movingStale {
			t.graph.Delete(id) // the buffer holds its newer state
		} else {
			t.pending.Delete(id)
		}
	}
	t.running = false
	t.idle.Broadcast()
}

// Wait blocks until the builder is idle: every vector added so far is in
// the graph (when the graph is due) or the index is stopped.
func (t *Tiered) Wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.running {
		t.idle.Wait()
	}
}

// Stop stops the builder and waits for it; buffered vectors stay buffered
// (and searchable). Add after Stop still buffers. Stop is for closing.
func (t *Tiered) Stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
	t.wg.Wait()
}

// Search scans the buffer exactly, walks the graph, and merges the two.
func (t *Tiered) Search(q []float32, k int, filter *roaring.Bitmap, p Params) ([]Result, error) {
	if run, err := checkSearch(q, t.dim, k, p); !run {
		return nil, err
	}
	// The buffer first: a vector moving to the graph meanwhile is then
	// seen in one or the other (see Tiered).
	res, err := t.pending.Search(q, k, filter, p)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	g := t.graph
	moving := t.moving
	t.mu.Unlock()
	if g == nil {
		return res, nil
	}
	gk := k
	if moving != noID {
		gk++ // room for the moving vector's copy, dropped below
	}
	gres, err := g.Search(q, gk, filter, p)
	if err != nil {
		return nil, err
	}
	if moving != noID {
		gres = slices.DeleteFunc(gres, func(r Result) bool { return r.ID == moving })
		gres = gres[:min(k, len(gres))]
	}
	if len(res) == 0 {
		return gres, nil
	}
	res = append(res, gres...)
	slices.SortFunc(res, compareResults)
	// Drop duplicates (a vector caught mid-move); equal IDs carry equal
	// scores, so they are adjacent after the sort.
	out := res[:0]
	for i, r := range res {
		if i > 0 && r.ID == res[i-1].ID {
			continue
		}
		out = append(out, r)
	}
	return out[:min(k, len(out))], nil
}

// Blob names of a saved Tiered index.
const (
	tieredBlobName  = "tiered"
	pendingBlobName = flatBlobName
	tieredVersion   = 4
	tieredHeaderLen = 32

	tieredHasGraph    = 1 << 0 // flags: a graph is saved
	tieredBufferCodes = 1 << 1 // flags: the buffer holds codes, not vectors
)

// Save writes the buffer, the graph (when built) and a header naming the
// options, as consistent blobs: no vector moves while they are written.
//
// The header blob, "tiered", little-endian:
//
//	'T' | version u8 (4) | metric u8 | dim u32 | GraphAt u64 | flags u8
//	in graph u64 | buffered u64
//
// flags: bit 0, a graph is saved; bit 1, the buffer was saved from codes
// (CodesOnly: its floats are the codes' values, not the vectors), so an
// index that needs its vectors refuses it, as it refuses a graph saved
// without vectors. A header without bit 1 reads as before.
//
// The counts let SavedTieredStatus describe a saved index without loading
// it.
func (t *Tiered) Save(p Persister) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := make([]byte, 0, tieredHeaderLen)
	h = append(h, 'T', tieredVersion, byte(t.metric))
	h = binary.LittleEndian.AppendUint32(h, uint32(t.dim))
	h = binary.LittleEndian.AppendUint64(h, uint64(max(t.opts.GraphAt, 0)))
	flags := byte(0)
	if t.graph != nil {
		flags |= tieredHasGraph
	}
	if t.opts.CodesOnly {
		flags |= tieredBufferCodes
	}
	h = append(h, flags)
	buffered := uint64(t.pending.Len())
	h = binary.LittleEndian.AppendUint64(h, t.ids.GetCardinality()-buffered)
	h = binary.LittleEndian.AppendUint64(h, buffered)
	if err := t.pending.Save(p); err != nil {
		return err
	}
	if t.graph != nil {
		if err := t.graph.Save(p); err != nil {
			return err
		}
	}
	return p.PutBlob(tieredBlobName, h)
}

// SavedStatus is what a saved Tiered index holds, read from its header.
type SavedStatus struct {
	Dim               int
	HasGraph          bool
	InGraph, Buffered int
}

// SavedTieredStatus reads what a saved Tiered index holds from its header
// blob alone; ok is false when none was saved.
func SavedTieredStatus(p Persister) (s SavedStatus, ok bool, err error) {
	h, err := p.GetBlob(tieredBlobName)
	if err != nil || h == nil {
		return s, false, err
	}
	if err := checkTieredHeader(h); err != nil {
		return s, false, err
	}
	le := binary.LittleEndian
	s = SavedStatus{Dim: int(le.Uint32(h[3:])), HasGraph: h[15]&tieredHasGraph != 0}
	if len(h) == tieredHeaderLen { // version 3 did not count
		s.InGraph, s.Buffered = int(le.Uint64(h[16:])), int(le.Uint64(h[24:]))
	}
	return s, true, nil
}

// checkTieredHeader accepts version 4 and version 3, which had no counts
// (its first 16 bytes are version 4's; a saved index of format 1 storage,
// upgraded, has one).
func checkTieredHeader(h []byte) error {
	ok := len(h) >= 16 && h[0] == 'T' && h[15] <= tieredHasGraph|tieredBufferCodes &&
		(h[1] == 3 && len(h) == 16 || h[1] == tieredVersion && len(h) == tieredHeaderLen &&
			binary.LittleEndian.Uint64(h[16:]) <= 1<<32 && binary.LittleEndian.Uint64(h[24:]) <= 1<<32)
	if !ok {
		return fmt.Errorf("%w: tiered header", ErrCorrupt)
	}
	return nil
}

// LoadTiered reads a Tiered index written by Save; (nil, nil) when none was
// saved. The graph keeps the options it was built with; opts gives GraphAt
// and the options of a graph not yet built. The builder starts when
// buffered vectors are due for the graph.
func LoadTiered(p Persister, opts TieredOptions) (*Tiered, error) {
	h, err := p.GetBlob(tieredBlobName)
	if err != nil || h == nil {
		return nil, err
	}
	if err := checkTieredHeader(h); err != nil {
		return nil, err
	}
	m := Metric(h[2])
	dim := int(binary.LittleEndian.Uint32(h[3:]))
	t, err := NewTiered(dim, m, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	flat, err := LoadFlat(p)
	if err != nil {
		return nil, err
	}
	if flat == nil || flat.Dim() != dim || flat.metric != m {
		return nil, fmt.Errorf("%w: tiered buffer missing or of another shape", ErrCorrupt)
	}
	t.pending = flat
	switch {
	case opts.CodesOnly:
		t.pending = flat.toCodes()
	case h[15]&tieredBufferCodes != 0:
		return nil, fmt.Errorf("%w: the saved buffer kept codes without vectors; this index needs its vectors", ErrCorrupt)
	}
	if h[15]&tieredHasGraph != 0 {
		g, err := LoadHNSW(p)
		if err != nil {
			return nil, err
		}
		if g == nil || g.Dim() != dim || g.metric != m {
			return nil, fmt.Errorf("%w: tiered graph missing or of another shape", ErrCorrupt)
		}
		switch {
		case opts.CodesOnly:
			g.dropVectors()
		case g.codesOnly:
			return nil, fmt.Errorf("%w: the saved graph kept codes without vectors; this index needs its vectors", ErrCorrupt)
		}
		t.graph = g
		// A save taken during a move holds the moving vector in both; the
		// buffer is the truth about it.
		for _, id := range flat.IDs().ToArray() {
			g.Delete(id)
		}
		g.mu.RLock()
		for id := range g.slot {
			t.ids.Add(id)
		}
		g.mu.RUnlock()
	}
	t.ids.Or(flat.IDs())
	t.mu.Lock()
	t.kickLocked()
	t.mu.Unlock()
	return t, nil
}

// last copies the vector of the buffer's last slot (the cheapest to
// delete) into v and returns its ID.
func (f *Flat) last(v []float32) (uint32, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := len(f.ids)
	if n == 0 {
		return 0, false
	}
	f.vec(n-1, v)
	return f.ids[n-1], true
}

// Metric is the index's metric.
func (t *Tiered) Metric() Metric { return t.metric }

// HasGraph reports whether the graph has been built.
func (t *Tiered) HasGraph() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.graph != nil
}
