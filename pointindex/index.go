package pointindex

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Errors.
var (
	// ErrInvalid wraps errors about options and inputs.
	ErrInvalid = errors.New("pointindex: invalid")
	// ErrTooFew is Build's error when the source holds fewer points than
	// centroids to train.
	ErrTooFew = errors.New("pointindex: too few points to train on")
)

// MaxPoints is the most points an indexed cloud may have (a posting's
// point number is 16 bits).
const MaxPoints = 1 << 16

// Options tune an index; the zero value is valid.
type Options struct {
	// Centroids is the number of k-means centroids (0: the power of two
	// nearest 2·sqrt(points), between 64 and 4,096).
	Centroids int
	// Bits is the residual code's bits per dimension: 2 or 4 (0: 2, that is
	// d/4 bytes per point: 32 at d = 128).
	Bits int
	// NProbe is the centroids probed per query point (0: 8). Measured on
	// bench's colbert shape (2,000 documents, 1,024 centroids, 30 queries):
	// the exact top 10 in the top 50 for 98.7% of hits with 4, 100% with
	// 8 and 16; 16 cost 1.2× the time of 8 and 2× that of 4.
	NProbe int
	// Sample bounds the points k-means is trained on (0: 64 per centroid,
	// at most 131,072).
	Sample int
	// Iterations of k-means (0: 8).
	Iterations int
	// Seed draws the training sample and the initial centroids.
	Seed uint64
	// Parallelism bounds the goroutines of Build (0: GOMAXPROCS).
	Parallelism int
}

// EnsureDefaults fills the zero fields that do not depend on the data.
func (o *Options) EnsureDefaults() {
	if o.Bits == 0 {
		o.Bits = 2
	}
	if o.NProbe == 0 {
		o.NProbe = 8
	}
	if o.Iterations == 0 {
		o.Iterations = 8
	}
}

// Validate reports every problem with o (after EnsureDefaults).
func (o Options) Validate() error {
	var errs []error
	if o.Bits != 2 && o.Bits != 4 {
		errs = append(errs, fmt.Errorf("%w: bits per dimension must be 2 or 4, got %d", ErrInvalid, o.Bits))
	}
	if o.Centroids < 0 || o.Centroids > 1<<20 {
		errs = append(errs, fmt.Errorf("%w: centroids must be between 1 and %d, got %d", ErrInvalid, 1<<20, o.Centroids))
	}
	if o.NProbe < 1 {
		errs = append(errs, fmt.Errorf("%w: nprobe must be positive, got %d", ErrInvalid, o.NProbe))
	}
	if o.Sample < 0 || o.Iterations < 1 {
		errs = append(errs, fmt.Errorf("%w: sample %d and iterations %d must not be negative", ErrInvalid, o.Sample, o.Iterations))
	}
	return errors.Join(errs...)
}

// centroidsFor is the default number of centroids for p points.
func centroidsFor(p int) int {
	want := 2 * math.Sqrt(float64(p))
	k := 64
	for k < 4096 && float64(2*k) <= want*math.Sqrt2 {
		k *= 2
	}
	return k
}

// postings is one centroid's list, in parallel arrays.
type postings struct {
	slots  []uint32 // the item's slot (see Index)
	points []uint16 // the point's number in its cloud
	wts    []uint16 // the point's weight, float16
	codes  []byte   // nbytes per posting
}

// Index is a point-level index for MaxSim: k-means centroids over every
// stored unit point, a posting per point in its nearest centroid's list
// with its residual code, and candidate generation with an estimate of
// the weighted MaxSim (Search). See the package doc for the layout.
//
// It is safe for concurrent use: searches share a read lock, Add and
// Delete take the write lock.
type Index struct {
	d      int
	k      int
	nprobe int
	cents  []float32 // k × d unit rows
	qz     quantizer

	mu     sync.RWMutex
	lists  []postings
	iidOf  []uint32          // slot → internal ID
	npts   []uint32          // slot → its postings
	live   []uint64          // bitset over slots: the slot is its item's current one
	slotOf map[uint32]uint32 // internal ID → its current slot
	points int               // postings of live slots
	dead   int               // postings of dead slots, dropped by the next compaction
	maxErr float32           // the largest residual decoding error |r − r̂| of a posting
}

// Source calls fn with every cloud to index and its internal ID.
type Source func(fn func(iid uint32, c wpcsim.Cloud) error) error

// Build trains an index of d-dimensional points on the clouds of src and
// adds them all: src is read twice, once for a reservoir sample of points
// (k-means and the residual buckets are fitted on it), once to add every
// cloud.
func Build(d int, src Source, o Options) (*Index, error) {
	o.EnsureDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, fmt.Errorf("%w: dimension %d", ErrInvalid, d)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x9017))
	// The sample is bounded before the count is known: the default for
	// the largest default centroid count.
	limit := o.Sample
	if limit == 0 {
		limit = 1 << 17
		if o.Centroids > 0 {
			limit = min(limit, 64*o.Centroids)
		}
	}
	sample := make([]float32, 0, min(limit, 1<<14)*d)
	total := 0
	err := src(func(_ uint32, c wpcsim.Cloud) error {
		if c.Dim != d {
			return fmt.Errorf("%w: a cloud of dimension %d in an index of %d", ErrInvalid, c.Dim, d)
		}
		for i := 0; i < c.Len(); i++ {
			total++
			if len(sample) < limit*d {
				sample = append(sample, make([]float32, d)...)
				normalize(sample[len(sample)-d:], c.Point(i))
			} else if j := rng.IntN(total); j < limit {
				normalize(sample[j*d:(j+1)*d], c.Point(i))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := len(sample) / d
	k := o.Centroids
	if k == 0 {
		k = centroidsFor(total)
		if o.Sample == 0 && n > 64*k {
			n = 64 * k // the reservoir is uniform: its prefix is a sample too
		}
	}
	if n < k {
		return nil, fmt.Errorf("%w: %d points, %d centroids", ErrTooFew, n, k)
	}
	x := New(d, kmeans(sample[:n*d], n, d, k, o.Iterations, rng, o.Parallelism), o)
	// The residual buckets, from the sample's residuals.
	lab := make([]int32, n)
	assign(lab, nil, sample[:n*d], n, x.cents, k, d, o.Parallelism)
	for i := 0; i < n; i++ {
		r := sample[i*d : (i+1)*d]
		c := x.cents[int(lab[i])*d:]
		for t := range r {
			r[t] -= c[t]
		}
	}
	// The buckets are quantiles: 16,384 residuals place them well enough
	// (the sample is uniform, so its prefix is one too), and sorting every
	// dimension of 131,072 cost more than k-means.
	x.qz.train(sample[:min(n, 1<<14)*d], min(n, 1<<14))
	if err := src(x.Add); err != nil {
		return nil, err
	}
	return x, nil
}

// New returns an empty index over the given unit centroids (k × d,
// row-major) with untrained residual buckets (every residual decodes to
// 0 until trained): Build is the usual way to make one.
func New(d int, cents []float32, o Options) *Index {
	o.EnsureDefaults()
	k := len(cents) / d
	return &Index{d: d, k: k, nprobe: min(o.NProbe, k), cents: cents, qz: newQuantizer(d, o.Bits),
		lists: make([]postings, k), slotOf: map[uint32]uint32{}}
}

// Add indexes cloud c as item iid, replacing what iid held before.
func (x *Index) Add(iid uint32, c wpcsim.Cloud) error {
	if c.Dim != x.d {
		return fmt.Errorf("%w: item %d has dimension %d, the index %d", ErrInvalid, iid, c.Dim, x.d)
	}
	m := c.Len()
	if m > MaxPoints {
		return fmt.Errorf("%w: item %d has %d points, at most %d", ErrInvalid, iid, m, MaxPoints)
	}
	// The work outside the lock: unit points, their centroids, codes.
	u := make([]float32, m*x.d)
	for i := 0; i < m; i++ {
		normalize(u[i*x.d:(i+1)*x.d], c.Point(i))
	}
	lab := make([]int32, m)
	assign(lab, nil, u, m, x.cents, x.k, x.d, 1)
	codes := make([]byte, 0, m*x.qz.nbytes)
	wts := make([]uint16, m)
	simd.F32ToF16(wts, c.Weights)
	var maxErr float32
	for i := 0; i < m; i++ {
		r := u[i*x.d : (i+1)*x.d]
		cent := x.cents[int(lab[i])*x.d:]
		for t := range r {
			r[t] -= cent[t]
		}
		var e float32
		codes, e = x.qz.encode(codes, r)
		maxErr = max(maxErr, e)
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	x.deleteLocked(iid)
	slot := uint32(len(x.iidOf))
	x.iidOf = append(x.iidOf, iid)
	x.npts = append(x.npts, uint32(m))
	if int(slot)/64 >= len(x.live) {
		x.live = append(x.live, 0)
	}
	x.live[slot/64] |= 1 << (slot % 64)
	x.slotOf[iid] = slot
	nb := x.qz.nbytes
	for i := 0; i < m; i++ {
		l := &x.lists[lab[i]]
		l.slots = append(l.slots, slot)
		l.points = append(l.points, uint16(i))
		l.wts = append(l.wts, wts[i])
		l.codes = append(l.codes, codes[i*nb:(i+1)*nb]...)
	}
	x.points += m
	x.maxErr = max(x.maxErr, maxErr)
	return nil
}

// Delete removes item iid (a no-op when absent). Its postings stay in
// their lists, skipped by searches, until a compaction drops them: the
// first write after they make up a quarter of all postings.
func (x *Index) Delete(iid uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.deleteLocked(iid)
}

func (x *Index) deleteLocked(iid uint32) {
	slot, ok := x.slotOf[iid]
	if !ok {
		return
	}
	delete(x.slotOf, iid)
	x.live[slot/64] &^= 1 << (slot % 64)
	n := int(x.npts[slot])
	x.points -= n
	x.dead += n
	if x.dead > x.points/3 && x.dead > 1024 {
		x.compactLocked()
	}
}

// compactLocked drops the postings of dead slots and renumbers the live
// slots densely.
func (x *Index) compactLocked() {
	renum := make([]uint32, len(x.iidOf))
	iidOf := make([]uint32, 0, len(x.slotOf))
	npts := make([]uint32, 0, len(x.slotOf))
	live := make([]uint64, (len(x.slotOf)+63)/64)
	for s, iid := range x.iidOf {
		if x.isLive(uint32(s)) {
			ns := uint32(len(iidOf))
			renum[s] = ns
			iidOf = append(iidOf, iid)
			npts = append(npts, x.npts[s])
			live[ns/64] |= 1 << (ns % 64)
			x.slotOf[iid] = ns
		}
	}
	nb := x.qz.nbytes
	points := 0
	for li := range x.lists {
		l := &x.lists[li]
		j := 0
		for i, s := range l.slots {
			if !x.isLive(s) {
				continue
			}
			l.slots[j] = renum[s]
			l.points[j] = l.points[i]
			l.wts[j] = l.wts[i]
			copy(l.codes[j*nb:(j+1)*nb], l.codes[i*nb:(i+1)*nb])
			j++
		}
		l.slots, l.points, l.wts, l.codes = l.slots[:j], l.points[:j], l.wts[:j], l.codes[:j*nb]
		points += j
	}
	x.iidOf, x.npts, x.live = iidOf, npts, live
	x.points, x.dead = points, 0
}

func (x *Index) isLive(slot uint32) bool { return x.live[slot/64]&(1<<(slot%64)) != 0 }

// Dim is the dimension of the indexed points.
func (x *Index) Dim() int { return x.d }

// Stats describe an index.
type Stats struct {
	Centroids int `json:"centroids"`
	Bits      int `json:"bits"`
	NProbe    int `json:"nprobe"`
	Items     int `json:"items"`
	// Points counts the postings of live items, Dead those awaiting
	// compaction.
	Points int `json:"points"`
	Dead   int `json:"dead"`
	// BytesPerPoint is a posting's size: slot, point number, weight and
	// code.
	BytesPerPoint int `json:"bytes_per_point"`
	// MaxResidualError is the largest |r − r̂| of an indexed point.
	MaxResidualError float32 `json:"max_residual_error"`
	// Bytes is the resident memory: postings, centroids, buckets and the
	// per-slot arrays.
	Bytes int64 `json:"bytes"`
}

// Stats returns the index's counts and sizes.
func (x *Index) Stats() Stats {
	x.mu.RLock()
	defer x.mu.RUnlock()
	per := 4 + 2 + 2 + x.qz.nbytes
	bytes := int64(x.points+x.dead)*int64(per) + int64(4*(len(x.cents)+len(x.qz.cut)+len(x.qz.val))) +
		int64(len(x.iidOf))*8 + int64(len(x.live))*8 + int64(len(x.slotOf))*16
	return Stats{Centroids: x.k, Bits: x.qz.bits, NProbe: x.nprobe, Items: len(x.slotOf), Points: x.points, Dead: x.dead,
		BytesPerPoint: per, MaxResidualError: x.maxErr, Bytes: bytes}
}
