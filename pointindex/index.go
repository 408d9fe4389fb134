package pointindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

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
	// Store keeps the posting lists (nil: in memory), under generation
	// Gen.
	Store Store
	Gen   uint32
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

// Postings are one item's postings, grouped by list: what a Store keeps.
// Values[i] holds the item's postings in list Lists[i] (ascending), each
// 4 + B bytes: point number u16, weight f16 (little-endian), code (B =
// ceil(d·bits/8) bytes; see the package doc).
type Postings struct {
	Points int
	// Shift is the index's grouping of items in a store's values: the
	// items iid>>Shift share one per list (see the package doc).
	Shift  uint8
	Lists  []uint32
	Values [][]byte

	resid  float64 // Σ |r| over the points: the drift statistic
	maxErr float32 // the largest decoding error |r − r̂|
}

// Store keeps the posting lists of an index (a generation of them): in
// Pebble for a collection (storage's point postings, the root package
// adapts), in memory for tests (NewMemStore).
type Store interface {
	// NewReader opens a reader of gen's lists (written with shift), a
	// consistent view.
	NewReader(gen uint32, shift uint8) (Reader, error)
	// Put replaces item iid's postings in gen by p; Delete removes them.
	// Both may be buffered until Flush.
	Put(gen, iid uint32, p Postings) error
	Delete(gen, iid uint32) error
	Flush() error
	// Items calls fn with every item holding postings in gen and its
	// point count.
	Items(gen uint32, fn func(iid, points uint32) error) error
	// DiskBytes is the size of gen's postings where they are kept.
	DiskBytes(gen uint32) (int64, error)
}

// Reader reads posting lists.
type Reader interface {
	// List calls fn with every item holding postings in list l and its
	// bytes there (valid during the call only).
	List(l uint32, fn func(iid uint32, v []byte)) error
	Close() error
}

// Index is a point-level index for MaxSim: k-means centroids over every
// stored unit point, a posting per point in its nearest centroid's list
// with its residual code, and candidate generation with an estimate of
// the weighted MaxSim (Search). The centroids and buckets are in memory,
// the lists in a Store, read on demand. See the package doc.
//
// It is safe for concurrent use. Its writes (Add, Delete) and the Store's
// are the caller's to serialize per item.
type Index struct {
	d      int
	k      int
	nprobe int
	gen    uint32
	shift  uint8     // Postings.Shift
	cents  []float32 // k × d unit rows
	qz     quantizer
	store  Store
	// trainResid is the mean residual norm |x̂ − c| of the training
	// sample: the baseline of the drift statistic.
	trainResid float32

	mu     sync.Mutex
	npts   []uint32 // internal ID → its postings (0: none)
	items  int
	points int
	maxErr float32 // the largest residual decoding error |r − r̂| of a posting
	// addedResid and added: Σ |r| and the count of points added since the
	// index was trained (Drift).
	addedResid float64
	added      int
	res        resident // the resident posting lists (resident.go)
}

// Source calls fn with every cloud to index and its internal ID.
type Source func(fn func(iid uint32, c wpcsim.Cloud) error) error

// Build trains an index of d-dimensional points on the clouds of src and
// adds them all: src is read twice, once for a reservoir sample of points
// (k-means and the residual buckets are fitted on it), once to add every
// cloud.
func Build(d int, src Source, o Options) (*Index, error) {
	x, err := Train(d, src, o)
	if err != nil {
		return nil, err
	}
	if err := src(x.Add); err != nil {
		return nil, err
	}
	// Drift measures the points written after the build.
	x.mu.Lock()
	x.added, x.addedResid = 0, 0
	x.mu.Unlock()
	return x, x.Flush()
}

// Train trains an empty index on a reservoir sample of the points of src
// (read once), writing to o.Store under o.Gen.
func Train(d int, src Source, o Options) (*Index, error) {
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
	total, clouds := 0, 0
	err := src(func(_ uint32, c wpcsim.Cloud) error {
		clouds++
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
	x.shift = shiftFor(k, float64(total)/float64(max(clouds, 1)))
	// The residual buckets, from the sample's residuals.
	lab := make([]int32, n)
	assign(lab, nil, sample[:n*d], n, x.cents, k, d, o.Parallelism)
	var resid float64
	for i := 0; i < n; i++ {
		r := sample[i*d : (i+1)*d]
		c := x.cents[int(lab[i])*d:]
		var r2 float64
		for t := range r {
			r[t] -= c[t]
			r2 += float64(r[t]) * float64(r[t])
		}
		resid += math.Sqrt(r2)
	}
	x.trainResid = float32(resid / float64(n))
	// The buckets are quantiles: 16,384 residuals place them well enough
	// (the sample is uniform, so its prefix is one too), and sorting every
	// dimension of 131,072 cost more than k-means.
	x.qz.train(sample[:min(n, 1<<14)*d], min(n, 1<<14))
	return x, nil
}

// New returns an empty index over the given unit centroids (k × d,
// row-major) with untrained residual buckets (every residual decodes to
// 0 until trained), writing to o.Store (nil: a new memory store) under
// o.Gen: Build is the usual way to make one.
func New(d int, cents []float32, o Options) *Index {
	o.EnsureDefaults()
	k := len(cents) / d
	st := o.Store
	if st == nil {
		st = NewMemStore()
	}
	x := &Index{d: d, k: k, nprobe: min(o.NProbe, k), gen: o.Gen, cents: cents, qz: newQuantizer(d, o.Bits), store: st}
	x.res.init(k)
	return x
}

// Encode computes cloud c's postings, for the caller to store (with
// Added) or for Add.
func (x *Index) Encode(c wpcsim.Cloud) (Postings, error) {
	if c.Dim != x.d {
		return Postings{}, fmt.Errorf("%w: a cloud of dimension %d, the index %d", ErrInvalid, c.Dim, x.d)
	}
	m := c.Len()
	if m > MaxPoints {
		return Postings{}, fmt.Errorf("%w: a cloud of %d points, at most %d", ErrInvalid, m, MaxPoints)
	}
	d := x.d
	u := make([]float32, m*d)
	for i := 0; i < m; i++ {
		normalize(u[i*d:(i+1)*d], c.Point(i))
	}
	lab := make([]int32, m)
	assign(lab, nil, u, m, x.cents, x.k, d, 1)
	wts := make([]uint16, m)
	simd.F32ToF16(wts, c.Weights)
	// The points by list (then by number), each list's postings one value.
	order := make([]int32, m)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		if lab[a] != lab[b] {
			return int(lab[a]) - int(lab[b])
		}
		return int(a) - int(b)
	})
	p := Postings{Points: m, Shift: x.shift}
	per := postingBytes(x.qz.nbytes)
	buf := make([]byte, 0, m*per)
	for j, i := range order {
		if j == 0 || lab[i] != lab[order[j-1]] {
			if j > 0 {
				p.Values = append(p.Values, buf)
				buf = buf[len(buf):]
			}
			p.Lists = append(p.Lists, uint32(lab[i]))
		}
		r := u[int(i)*d : (int(i)+1)*d]
		cent := x.cents[int(lab[i])*d:]
		var r2 float64
		for t := range r {
			r[t] -= cent[t]
			r2 += float64(r[t]) * float64(r[t])
		}
		p.resid += math.Sqrt(r2)
		buf = binary.LittleEndian.AppendUint16(buf, uint16(i))
		buf = binary.LittleEndian.AppendUint16(buf, wts[i])
		var e float32
		buf, e = x.qz.encode(buf, r)
		p.maxErr = max(p.maxErr, e)
	}
	if m > 0 {
		p.Values = append(p.Values, buf)
	}
	return p, nil
}

// shiftFor is the grouping of items in a store's values for k lists and
// clouds of mean points each: about 32 postings a value (2^shift items
// hold 2^shift·mean/k postings in a list). One key per (list, item) cost
// as much CPU in Pebble's iterator as the whole estimate (colbert 2,000:
// 4.4 of 9.1 ms a search); fewer, larger values cost a write of one item
// more: it rewrites each of its lists' values (about 32 postings, 1.2 KB
// at d = 128).
func shiftFor(k int, mean float64) uint8 {
	var s uint8
	for s < 16 && float64(int(1)<<(s+1))*mean/float64(k) <= 32*1.5 {
		s++
	}
	return s
}

// postingBytes is a posting's size with nb code bytes.
func postingBytes(nb int) int { return 4 + nb }

// Add indexes cloud c as item iid, replacing what iid held before: its
// postings go to the store.
func (x *Index) Add(iid uint32, c wpcsim.Cloud) error {
	p, err := x.Encode(c)
	if err != nil {
		return fmt.Errorf("item %d: %w", iid, err)
	}
	if err := x.store.Put(x.gen, iid, p); err != nil {
		return err
	}
	x.Added(iid, p)
	return nil
}

// Added records that item iid's postings are now p (which the caller
// stored, e.g. in the batch that wrote the item).
func (x *Index) Added(iid uint32, p Postings) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setCountLocked(iid, uint32(p.Points))
	x.res.noteWrite(iid, p.Lists)
	x.maxErr = max(x.maxErr, p.maxErr)
	x.addedResid += p.resid
	x.added += p.Points
}

func (x *Index) setCountLocked(iid, n uint32) {
	if int(iid) >= len(x.npts) {
		if n == 0 {
			return
		}
		x.npts = append(x.npts, make([]uint32, int(iid)+1-len(x.npts))...)
	}
	old := x.npts[iid]
	if old > 0 {
		x.items--
		x.points -= int(old)
	}
	if n > 0 {
		x.items++
		x.points += int(n)
	}
	x.npts[iid] = n
}

// Delete removes item iid's postings from the store (a no-op when absent).
func (x *Index) Delete(iid uint32) error {
	if err := x.store.Delete(x.gen, iid); err != nil {
		return err
	}
	x.Removed(iid)
	return nil
}

// Removed records that item iid's postings were deleted by the caller.
func (x *Index) Removed(iid uint32) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.setCountLocked(iid, 0)
	x.res.noteWrite(iid, nil)
}

// Flush commits the store's buffered writes. The resident lists are
// dropped: one read while writes were buffered may lack them.
func (x *Index) Flush() error {
	err := x.store.Flush()
	x.mu.Lock()
	x.res.dropEvery()
	x.mu.Unlock()
	return err
}

// Gen is the generation the index's postings are stored under.
func (x *Index) Gen() uint32 { return x.gen }

// Sync brings the counts and the store in line with the live items after
// a load: the store's items are counted, those not live deleted, and the
// live items without postings (written while no index was loaded) added
// from cloud.
func (x *Index) Sync(live *roaring.Bitmap, cloud func(iid uint32) (wpcsim.Cloud, bool, error)) error {
	have := roaring.New()
	var gone []uint32
	err := x.store.Items(x.gen, func(iid, n uint32) error {
		if !live.Contains(iid) {
			gone = append(gone, iid)
			return nil
		}
		have.Add(iid)
		x.mu.Lock()
		x.setCountLocked(iid, n)
		x.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	for _, iid := range gone {
		if err := x.store.Delete(x.gen, iid); err != nil {
			return err
		}
	}
	missing := roaring.AndNot(live, have)
	it := missing.Iterator()
	for it.HasNext() {
		iid := it.Next()
		c, ok, err := cloud(iid)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := x.Add(iid, c); err != nil {
			return err
		}
	}
	return x.Flush()
}

// Dim is the dimension of the indexed points.
func (x *Index) Dim() int { return x.d }

// Stats describe an index.
type Stats struct {
	Centroids int `json:"centroids"`
	Bits      int `json:"bits"`
	NProbe    int `json:"nprobe"`
	Gen       int `json:"generation"`
	Items     int `json:"items"`
	// Points counts the postings.
	Points int `json:"points"`
	// BytesPerPoint is a posting's value size: point number, weight and
	// code (the key is the store's).
	BytesPerPoint int `json:"bytes_per_point"`
	// DiskBytes is the postings' size in the store (Pebble's estimate for
	// a collection: tables on disk, not memtables), ResidentBytes the
	// memory the index holds: centroids, buckets, a count and a write
	// epoch per item, and the resident posting lists, ResidentPostingBytes
	// of it (within SetResidentBytes's budget).
	DiskBytes            int64 `json:"disk_bytes"`
	ResidentBytes        int64 `json:"resident_bytes"`
	ResidentPostingBytes int64 `json:"resident_posting_bytes"`
	// MaxResidualError is the largest |r − r̂| of an indexed point.
	MaxResidualError float32 `json:"max_residual_error"`
	// Drift is the mean residual norm of the points added since training
	// over the training sample's (see Drift).
	Drift float64 `json:"drift"`
}

// Stats returns the index's counts and sizes.
func (x *Index) Stats() Stats {
	disk, _ := x.store.DiskBytes(x.gen)
	drift, _ := x.Drift()
	x.mu.Lock()
	defer x.mu.Unlock()
	res := int64(4*(len(x.cents)+len(x.qz.cut)+len(x.qz.val))) + int64(4*cap(x.npts)) + x.res.overhead()
	return Stats{Centroids: x.k, Bits: x.qz.bits, NProbe: x.nprobe, Gen: int(x.gen), Items: x.items, Points: x.points,
		BytesPerPoint: postingBytes(x.qz.nbytes), DiskBytes: disk, ResidentBytes: res, ResidentPostingBytes: x.res.bytes, MaxResidualError: x.maxErr, Drift: drift}
}

// StoredStats is Stats with the items and points counted from the store
// (an index read but not synced has zero counts; the store's may include
// items deleted since, until a sync).
func (x *Index) StoredStats() (Stats, error) {
	st := x.Stats()
	st.Items, st.Points = 0, 0
	var maxIID uint32
	err := x.store.Items(x.gen, func(iid, n uint32) error {
		st.Items++
		st.Points += int(n)
		maxIID = max(maxIID, iid)
		return nil
	})
	st.ResidentBytes = int64(4*(len(x.cents)+len(x.qz.cut)+len(x.qz.val))) + 4*int64(maxIID+1)
	return st, err
}

// Count returns the items and points indexed.
func (x *Index) Count() (items, points int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.items, x.points
}

// Drift returns the mean residual norm |x̂ − c| of the points added since
// the index was trained over that of its training sample, and how many
// points that mean is over (0: ratio 0). Points drawn like the training
// sample give about 1; new data far from every centroid gives more (see
// NeedsRetrain).
func (x *Index) Drift() (float64, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.added == 0 || x.trainResid <= 0 {
		return 0, x.added
	}
	return x.addedResid / float64(x.added) / float64(x.trainResid), x.added
}
