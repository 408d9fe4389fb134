package index

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// Flat is an exact scan over every vector: the first stage of small
// collections and of filters that pass few items, and the oracle the
// approximate indexes are measured against.
//
// The vectors are kept in panels (simd.ScorePanel): slot s is lane s%pw of
// panel s/pw, coordinate k at panels[(s/pw)*pw*dim + k*pw + s%pw], so a
// scan scores pw vectors per kernel call. Measured on 10,000 64-float
// vectors (BenchmarkSearchSmall): one simd.Dot per vector spent as much in
// calls and horizontal sums as in multiply-adds.
type Flat struct {
	mu     sync.RWMutex
	dim    int
	metric Metric
	pw     int       // vectors per panel (simd.PanelWidth at creation)
	panels []float32 // len(ids) rounded up to whole panels
	norms2 []float32 // squared norm per slot (L2)
	ids    []uint32  // slot → id
	slot   map[uint32]int
	// codes, when not nil, replaces panels: the Flat keeps int8 codes only
	// (flat_codes.go), and pw is simd.PanelI8Lanes.
	codes *flatCodes
}

// NewFlat returns an empty Flat index of dimension dim.
func NewFlat(dim int, m Metric) *Flat {
	return &Flat{dim: dim, metric: m, pw: simd.PanelWidth(), slot: map[uint32]int{}}
}

// lane locates slot s: the offset of its panel in panels and its lane c,
// coordinate k being at base + k*pw + c.
func (f *Flat) lane(s int) (base, c int) { return (s / f.pw) * f.pw * f.dim, s % f.pw }

// put writes v into slot s's lane.
func (f *Flat) put(s int, v []float32) {
	if f.codes != nil {
		f.putCode(s, v)
		return
	}
	base, c := f.lane(s)
	for k, x := range v {
		f.panels[base+k*f.pw+c] = x
	}
}

// vec copies slot s's vector into dst (len dim).
func (f *Flat) vec(s int, dst []float32) {
	if f.codes != nil {
		f.vecCode(s, dst)
		return
	}
	base, c := f.lane(s)
	for k := range dst {
		dst[k] = f.panels[base+k*f.pw+c]
	}
}

func (f *Flat) Dim() int { return f.dim }

func (f *Flat) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.ids)
}

// IDs returns a new bitmap of the indexed IDs.
func (f *Flat) IDs() *roaring.Bitmap {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return roaring.BitmapOf(f.ids...)
}

func (f *Flat) Contains(id uint32) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.slot[id]
	return ok
}

// prepare returns the vector as stored: normalized for Cosine.
func prepare(m Metric, v []float32, dst []float32) []float32 {
	dst = append(dst[:0], v...)
	if m == Cosine {
		var n2 float64
		for _, x := range v {
			n2 += float64(x) * float64(x)
		}
		if n2 > 0 {
			inv := float32(1 / math.Sqrt(n2))
			for i := range dst {
				dst[i] *= inv
			}
		}
	}
	return dst
}

func (f *Flat) Add(id uint32, v []float32) error {
	if len(v) != f.dim {
		return fmt.Errorf("%w: %d, index has %d", ErrDimension, len(v), f.dim)
	}
	var buf [256]float32
	pv := prepare(f.metric, v, buf[:0])
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addPrepared(id, pv)
	return nil
}

// addPrepared stores a prepared vector (f.mu held, or f not yet shared).
func (f *Flat) addPrepared(id uint32, pv []float32) {
	s, ok := f.slot[id]
	if !ok {
		s = len(f.ids)
		f.ids = append(f.ids, id)
		if f.codes != nil {
			f.growCodes(s)
		} else if s%f.pw == 0 {
			f.panels = growVecs(f.panels, f.pw*f.dim) // a new, zeroed panel
		}
		f.norms2 = append(f.norms2, 0)
		f.slot[id] = s
	}
	f.put(s, pv)
	f.norms2[s] = dot(pv, pv)
	if f.codes != nil {
		// The code's own squared norm: what a saved buffer (scale · code)
		// gives back on load, so that L2 estimates survive a reload.
		f.norms2[s] = f.codeNorm2(s)
	}
}

func (f *Flat) Delete(id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.slot[id]
	if !ok {
		return
	}
	last := len(f.ids) - 1
	if f.codes != nil {
		f.moveCode(last, s) // and zeroes the last lane
	} else {
		v := make([]float32, f.dim)
		if s != last {
			f.vec(last, v)
			f.put(s, v)
		}
		clear(v)
		f.put(last, v) // a freed lane scores 0, never a stale vector
		f.panels = f.panels[:(last+f.pw-1)/f.pw*f.pw*f.dim]
	}
	if s != last {
		f.norms2[s] = f.norms2[last]
		f.ids[s] = f.ids[last]
		f.slot[f.ids[s]] = s
	}
	f.ids = f.ids[:last]
	if f.codes != nil {
		f.truncateCodes(last)
	}
	f.norms2 = f.norms2[:last]
	delete(f.slot, id)
	if cap(f.ids) > 64 && len(f.ids) < cap(f.ids)/4 {
		f.shrink()
	}
}

// shrink reallocates the slices and the ID map at twice the vectors held
// (f.mu held): a Tiered buffer that moved 100,000 vectors into the graph
// otherwise kept their panels (4·dim bytes each) and a map that Go never
// shrinks, twice the graph's own memory at dimension 64.
func (f *Flat) shrink() {
	n := len(f.ids)
	if f.codes != nil {
		f.shrinkCodes()
	} else {
		panels := make([]float32, len(f.panels), max(2*len(f.panels), 4*f.pw*f.dim))
		copy(panels, f.panels)
		f.panels = panels
	}
	f.norms2 = append(make([]float32, 0, 2*n), f.norms2...)
	f.ids = append(make([]uint32, 0, 2*n), f.ids...)
	f.slot = make(map[uint32]int, n)
	for s, id := range f.ids {
		f.slot[id] = s
	}
}

// score is the metric's "higher is closer" score of a prepared query q
// (with squared norm qn2) against slot s.
func (f *Flat) score(q []float32, qn2 float32, s int) float32 {
	base, c := f.lane(s)
	var d float32
	for k, x := range q {
		d += x * f.panels[base+k*f.pw+c]
	}
	if f.metric == L2 {
		return -(qn2 + f.norms2[s] - 2*d)
	}
	return d
}

func (f *Flat) Search(q []float32, k int, filter *roaring.Bitmap, _ Params) ([]Result, error) {
	if run, err := checkSearch(q, f.dim, k, Params{}); !run { // Flat has no parameters
		return nil, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.ids) == 0 {
		return nil, nil // an empty buffer in front of a graph: nothing to prepare
	}
	pq := prepare(f.metric, q, nil)
	qn2 := dot(pq, pq)
	top := newTopK(k)
	if f.codes != nil {
		f.searchCodes(pq, qn2, top, filter)
		return top.sorted(), nil
	}
	if filter != nil && filter.GetCardinality() < uint64(len(f.ids)) {
		it := filter.Iterator()
		for it.HasNext() {
			id := it.Next()
			if s, ok := f.slot[id]; ok {
				top.push(Result{ID: id, Score: f.score(pq, qn2, s)})
			}
		}
		return top.sorted(), nil
	}
	// The scan proper, a panel per kernel call: a score only enters the
	// heap when it beats the worst kept one (ties go to push, which orders
	// them by ID).
	worst := float32(math.Inf(-1))
	var buf [64]float32
	scores := buf[:f.pw]
	if f.pw > len(buf) {
		scores = make([]float32, f.pw)
	}
	score := simd.ScorePanel
	if f.pw != simd.PanelWidth() { // laid out under another SIMD path (tests)
		score = simd.ScorePanelGeneric
	}
	for p := 0; p*f.pw < len(f.ids); p++ {
		score(scores, pq, f.panels[p*f.pw*f.dim:(p+1)*f.pw*f.dim])
		s0 := p * f.pw
		for c, sc := range scores[:min(f.pw, len(f.ids)-s0)] {
			s := s0 + c
			if f.metric == L2 {
				sc = -(qn2 + f.norms2[s] - 2*sc)
			}
			if sc < worst || (filter != nil && !filter.Contains(f.ids[s])) {
				continue
			}
			top.push(Result{ID: f.ids[s], Score: sc})
			if top.full() {
				worst = top.worst()
			}
		}
	}
	return top.sorted(), nil
}

// Save writes the flat index as one blob: 'F', version 2, metric, dim,
// count, then per vector its ID and values (little-endian), then a CRC-32C
// of all that, so that a damaged blob is refused (and the index rebuilt)
// rather than searched.
func (f *Flat) Save(p Persister) error { return f.saveAs(p, flatBlobName) }

const (
	flatBlobName = "flat"
	flatVersion  = 2
)

func (f *Flat) saveAs(p Persister, name string) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v := make([]float32, f.dim)
	return writeBlob(p, name, func(w *blobWriter) {
		w.write([]byte{'F', flatVersion, byte(f.metric)})
		w.u32(uint32(f.dim))
		w.u32(uint32(len(f.ids)))
		for s, id := range f.ids {
			w.u32(id)
			f.vec(s, v)
			w.f32s(v)
		}
	})
}

// LoadFlat reads a Flat index saved by Save; (nil, nil) when none is saved.
func LoadFlat(p Persister) (*Flat, error) { return loadFlatAs(p, flatBlobName) }

func loadFlatAs(p Persister, name string) (*Flat, error) {
	var f *Flat
	ok, err := readBlob(p, name, func(r *reader) error {
		magic, version, m := r.u8(), r.u8(), Metric(r.u8())
		dim, n := int64(r.u32()), int64(r.u32())
		if r.err != nil {
			return r.err
		}
		if magic != 'F' || version != flatVersion || m > L2 {
			return fmt.Errorf("%w: flat header", ErrCorrupt)
		}
		if dim <= 0 || r.left != n*(4+4*dim) {
			return fmt.Errorf("%w: flat body of %d bytes for %d vectors of dimension %d", ErrCorrupt, r.left, n, dim)
		}
		f = NewFlat(int(dim), m)
		f.ids = make([]uint32, 0, n)
		f.norms2 = make([]float32, 0, n)
		f.slot = make(map[uint32]int, n)
		f.panels = make([]float32, 0, (n+int64(f.pw)-1)/int64(f.pw)*int64(f.pw)*dim)
		v := make([]float32, dim)
		for i := int64(0); i < n; i++ {
			id := r.u32()
			b := r.take(4 * int(dim))
			if r.err != nil {
				return r.err
			}
			if _, dup := f.slot[id]; dup {
				return fmt.Errorf("%w: flat: id %d stored twice", ErrCorrupt, id)
			}
			for k := range v {
				v[k] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*k:]))
			}
			// Stored as prepared (normalized for Cosine): put back as is, so
			// a loaded index scores bit for bit as the saved one did.
			f.addPrepared(id, v)
		}
		return nil
	})
	if !ok || err != nil {
		return nil, err
	}
	return f, nil
}

// dot is the SIMD dot product; every vector comparison goes through it.
func dot(a, b []float32) float32 { return simd.Dot(a, b) }

// growVecs extends vecs by n zeroed floats (a panel), doubling its
// capacity when full: append's growth of a large slice (about 1.25×)
// copied the whole store four to five times over during a bulk load, the
// largest cost of an upsert of 1088-float φ.
func growVecs(vecs []float32, n int) []float32 {
	end := len(vecs) + n
	if end > cap(vecs) {
		grown := make([]float32, len(vecs), max(2*cap(vecs), 4*n))
		copy(grown, vecs)
		vecs = grown
	}
	vecs = vecs[:end]
	clear(vecs[end-n:])
	return vecs
}
