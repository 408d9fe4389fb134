package pointindex

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/wpcdb/wpcdb/internal/order"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Params tune one search; zero values take the index's.
type Params struct {
	// NProbe is the centroids probed per query point.
	NProbe int
}

// Hit is a candidate and its estimated score.
type Hit struct {
	IID      uint32
	Estimate float32
}

// scratch is one search's reusable memory.
type scratch struct {
	cur     []float32 // iid → best estimate for the current query point, −Inf when none
	touched []uint32  // iids the current query point found
	est     []float32 // iid → Σ_i v_i (best_i − impute_i) over the points that found it
	inCand  []bool    // iid → est is in use
	cand    []uint32  // the iids found by any query point
	hits    []Hit     // their estimates
	table   []float32
	lut     []byte    // nibble tables (quantizer.nibbleLUT)
	tabs    []float32 // their float values
	table16 []uint16  // their byte sums (byteSums)
	sums    []float32 // simd.ScanNibbles' estimates
	probes  []int     // nq × nprobe: each query point's probed lists
	span    []int32   // list → its view (−1: not probed)
	views   []view    // the probed lists
	fiids   []uint32  // the postings read from the store: items
	fcodes  []byte    // and codes
	iids    []uint32  // the postings copied to scan (filtered, or skipping stale ones): items
	vals    []byte    // and codes
	units   []float32
	cs      []float32 // k × nq centroid scores
	active  []int     // the query points with a weight
	counts  []int     // topNAll's scratch
	allow   []uint64
}

// view is one probed list's postings to scan: items and codes.
type view struct {
	list     uint32
	res      *resList // resident; nil: read into fiids/fcodes[lo:hi]
	lo, hi   int
	maxIID   uint32
	copied   bool // iids/codes are sc.iids/vals[clo:chi]
	clo, chi int
	iids     []uint32
	codes    []byte
	blocks   []byte // a clean resident list's nibble blocks: codes is nil
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// Search returns up to r items among allowed (nil: every item), best
// first by an estimate of the weighted MaxSim Σ_i v_i · max_j <q̂_i, x̂_j>
// (in "sum" units: a "mean" collection's score is this divided by the
// query's point count, which ranks the same), ties by internal ID.
//
// For each query point i with a weight v_i ≠ 0, the NProbe centroids
// nearest q̂_i are probed, and each posting x̂ in their lists estimates
// <q̂_i, x̂> as <q̂_i, c> + <q̂_i, r̂> (its centroid's score plus its decoded
// residual's, through a per-point lookup table). An item's estimate for
// point i is the best of its postings found, or, when none was, the score
// of the NProbe-th centroid (WARP's imputation: a point outside the probed
// lists is nearer another centroid, so its score is most likely below
// that). The estimates are summed with the signed weights, as the exact
// score sums the true maxima. Only items with at least one posting found
// are candidates. Each probed list is read from the store once per search
// (query points probing the same list share it), through one reader.
//
// When every point of an item lies in a probed list of point i, its
// estimate for i is within MaxResidualError·|q̂_i| = MaxResidualError of
// the true maximum (each posting's is, by Cauchy–Schwarz), so the item's
// estimate is within Σ_i |v_i| · MaxResidualError of the exact sum.
//
// Where simd.ScanNibbles runs in assembly (useNibbles: AVX-512BW or AVX2), the
// residual scores come from quantized nibble tables (quantizer.nibbleLUT,
// adding at most nbytes·step a point, a fraction of a percent of
// MaxResidualError), resident lists are kept as nibble blocks and scanned
// 64 postings a shuffle, and the other lists sum the same integers a
// posting at a time: the estimates do not depend on which lists are
// resident. Measured on bench colbert 20,000 (32-point queries, one core):
// the candidate search fell from about 9 to 5 ms of CPU.
func (x *Index) Search(q wpcsim.Cloud, r int, allowed *roaring.Bitmap, p Params) ([]Hit, error) {
	if q.Dim != x.d {
		return nil, fmt.Errorf("%w: query of dimension %d, index of %d", ErrInvalid, q.Dim, x.d)
	}
	if r <= 0 {
		return nil, nil
	}
	nprobe := x.nprobe
	if p.NProbe > 0 {
		nprobe = min(p.NProbe, x.k)
	}
	nq, d, k := q.Len(), x.d, x.k
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.units = slices.Grow(sc.units[:0], nq*d)[:nq*d]
	for i := 0; i < nq; i++ {
		normalize(sc.units[i*d:(i+1)*d], q.Point(i))
	}
	// The centroid scores, centroid-major (cs[c·nq + i]): the Gram
	// kernels pack their second operand, and packing the k centroids per
	// search cost more than the products (a 32-point query against 4,096
	// centroids at d = 128: 0.56 → 0.24 ms); packed, the query's 32 rows
	// are next to nothing. Each entry is the same sum either way round.
	sc.cs = slices.Grow(sc.cs[:0], nq*k)[:nq*k]
	simd.Gram(sc.cs, x.cents, k, sc.units, nq, d)
	sc.allow = sc.allow[:0]
	if allowed != nil && !allowed.IsEmpty() {
		sc.allow = slices.Grow(sc.allow, int(allowed.Maximum()/64)+1)[:allowed.Maximum()/64+1]
		clear(sc.allow)
		allowed.Iterate(func(v uint32) bool {
			sc.allow[v/64] |= 1 << (v % 64)
			return true
		})
	} else if allowed != nil {
		return nil, nil
	}
	filtered := allowed != nil

	// The probed lists of every query point, then each list read once.
	sc.active = sc.active[:0]
	for i := 0; i < nq; i++ {
		if q.Weights[i] != 0 {
			sc.active = append(sc.active, i)
		}
	}
	sc.probes, sc.counts = topNAll(sc.probes, sc.counts, sc.cs, k, nq, sc.active, nprobe)
	if len(sc.span) < k {
		sc.span = make([]int32, k)
		for c := range sc.span {
			sc.span[c] = -1
		}
	}
	defer func() {
		for _, c := range sc.probes {
			sc.span[c] = -1
		}
		clear(sc.views) // no resident list kept alive by the pool
	}()
	// Each probed list once: resident (scanned in place when no posting
	// needs skipping), else read from the store through one reader and
	// kept resident when the budget allows.
	x.mu.Lock()
	epoch, lastStale, stale := x.res.epoch, x.res.lastStale, x.res.staleAt
	sc.views = sc.views[:0]
	for _, c := range sc.probes {
		if sc.span[c] >= 0 {
			continue
		}
		sc.span[c] = int32(len(sc.views))
		sc.views = append(sc.views, view{res: x.res.lists[c], list: uint32(c)})
	}
	x.mu.Unlock()
	sc.fiids, sc.fcodes = sc.fiids[:0], sc.fcodes[:0]
	nb := x.qz.nbytes
	var maxIID uint32
	var rd Reader
	for i := range sc.views {
		v := &sc.views[i]
		if v.res != nil {
			maxIID = max(maxIID, v.res.maxIID)
			continue
		}
		if rd == nil {
			var err error
			if rd, err = x.store.NewReader(x.gen, x.shift); err != nil {
				return nil, err
			}
		}
		v.lo = len(sc.fiids)
		var m uint32
		var err error
		sc.fiids, sc.fcodes, m, err = x.readList(rd, v.list, sc.fiids, sc.fcodes)
		if err != nil {
			rd.Close()
			return nil, err
		}
		v.hi = len(sc.fiids)
		v.maxIID = m
		maxIID = max(maxIID, m)
	}
	if rd != nil {
		if err := rd.Close(); err != nil {
			return nil, err
		}
		x.mu.Lock()
		for i := range sc.views {
			if v := &sc.views[i]; v.res == nil && x.res.budget > 0 {
				x.res.install(v.list, epoch, sc.fiids[v.lo:v.hi], sc.fcodes[v.lo*nb:v.hi*nb], v.maxIID)
			}
		}
		x.mu.Unlock()
	}
	// quant: estimate through quantized nibble tables (quantizer.nibbleLUT),
	// where simd.ScanNibbles is fast, else through float tables.
	quant := useNibbles && nb <= simd.MaxNibbleBytes
	// The postings to scan: a clean resident list in place, else the
	// allowed postings of items not written since the list was read,
	// copied once (every query point probing the list scans the copy).
	sc.iids, sc.vals = sc.iids[:0], sc.vals[:0]
	for i := range sc.views {
		v := &sc.views[i]
		var iids []uint32
		var codes, blocks []byte
		check := false
		if v.res != nil {
			iids, codes, blocks = v.res.iids, v.res.codes, v.res.blocks
			check = lastStale > v.res.epoch
		} else {
			iids, codes = sc.fiids[v.lo:v.hi], sc.fcodes[v.lo*nb:v.hi*nb]
		}
		if !filtered && !check && (blocks == nil || quant) {
			v.iids, v.codes, v.blocks, v.copied = iids, codes, blocks, false
			continue
		}
		v.copied, v.clo, v.blocks = true, len(sc.iids), nil
		for t, s := range iids {
			if filtered && (int(s/64) >= len(sc.allow) || sc.allow[s/64]&(1<<(s%64)) == 0) {
				continue
			}
			if check && int(s) < len(stale) && stale[s].Load() > v.res.epoch {
				continue
			}
			sc.iids = append(sc.iids, s)
			if blocks != nil {
				sc.vals = codeOf(sc.vals, blocks, t, nb)
			} else {
				sc.vals = append(sc.vals, codes[t*nb:(t+1)*nb]...)
			}
		}
		v.chi = len(sc.iids)
	}
	for i := range sc.views {
		if v := &sc.views[i]; v.copied {
			v.iids, v.codes = sc.iids[v.clo:v.chi], sc.vals[v.clo*nb:v.chi*nb]
		}
	}

	inf := float32(math.Inf(-1))
	if n := int(maxIID) + 1; len(sc.cur) < n {
		old := len(sc.cur)
		sc.cur = slices.Grow(sc.cur, n-old)[:n]
		for i := old; i < n; i++ {
			sc.cur[i] = inf
		}
		sc.est = slices.Grow(sc.est, n-old)[:n]
		sc.inCand = slices.Grow(sc.inCand, n-old)[:n]
	}
	// An item's estimate is Σ_i v_i·impute_i, the same for every item,
	// plus, for each point i that found it, v_i·(best_i − impute_i): a
	// point's pass touches only the items it found, in arrays over
	// internal IDs that stay in cache.
	sc.cand = sc.cand[:0]
	var base float32
	pi := 0
	for i := 0; i < nq; i++ {
		v := q.Weights[i]
		if v == 0 {
			continue
		}
		probe := sc.probes[pi : pi+min(nprobe, k)]
		pi += len(probe)
		impute := sc.cs[probe[len(probe)-1]*nq+i]
		base += v * impute
		// With nibble tables (quant), every list estimates from them:
		// blocks through simd.ScanNibbles, the others a posting at a
		// time through their byte sums (table16), the same integers, so
		// that the candidates do not depend on which lists are resident.
		unit := sc.units[i*d : (i+1)*d]
		var lutBase, lutStep float32
		if quant {
			sc.lut, lutBase, lutStep, sc.tabs = x.qz.nibbleLUT(sc.lut, unit, sc.tabs)
			needTable16 := false
			for _, c := range probe {
				needTable16 = needTable16 || sc.views[sc.span[c]].blocks == nil
			}
			if needTable16 {
				sc.table16 = byteSums(sc.table16, sc.lut, nb)
			}
		} else {
			sc.table = x.qz.table(sc.table, unit)
		}
		table := sc.table
		cur := sc.cur
		touched := sc.touched[:0]
		for _, c := range probe {
			v := &sc.views[sc.span[c]]
			cs := sc.cs[c*nq+i]
			if v.blocks != nil {
				// 64 postings a block through simd.ScanNibbles.
				const B = simd.NibbleBlock
				n := len(v.iids)
				nblk := (n + B - 1) / B
				sc.sums = slices.Grow(sc.sums[:0], nblk*B)[:nblk*B]
				simd.ScanNibbles(sc.sums, v.blocks, nblk, nb, sc.lut, cs+lutBase, lutStep)
				sums := sc.sums[:n]
				for t, s := range v.iids {
					e := sums[t]
					touched = keepBest(cur, touched, s, e, inf)
				}
				continue
			}
			codes := v.codes
			if quant {
				cs += lutBase
				for t, s := range v.iids {
					// ScanNibbles' rounding: the product, then the sum.
					e := cs + float32(lutStep*float32(dotSums(sc.table16, codes[t*nb:(t+1)*nb])))
					touched = keepBest(cur, touched, s, e, inf)
				}
				continue
			}
			switch nb {
			case 32:
				t32 := (*[32 * 256]float32)(table)
				for t, s := range v.iids {
					e := cs + dot32(t32, (*[32]byte)(codes[t*32:]))
					touched = keepBest(cur, touched, s, e, inf)
				}
			case 16:
				t16 := (*[16 * 256]float32)(table)
				for t, s := range v.iids {
					e := cs + dot16(t16, (*[16]byte)(codes[t*16:]))
					touched = keepBest(cur, touched, s, e, inf)
				}
			default:
				for t, s := range v.iids {
					e := cs + dot(table, codes[t*nb:(t+1)*nb])
					touched = keepBest(cur, touched, s, e, inf)
				}
			}
		}
		for _, s := range touched {
			if !sc.inCand[s] {
				sc.inCand[s] = true
				sc.est[s] = 0
				sc.cand = append(sc.cand, s)
			}
			sc.est[s] += v * (cur[s] - impute)
			cur[s] = inf
		}
		sc.touched = touched
	}
	all := slices.Grow(sc.hits[:0], len(sc.cand))[:len(sc.cand)]
	for j, s := range sc.cand {
		sc.inCand[s] = false
		all[j] = Hit{IID: s, Estimate: base + sc.est[s]}
	}
	sc.hits = all
	return slices.Clone(topHits(all, r)), nil
}

// byteSums fills dst (nb × 256) with every byte's sum of its two nibble
// tables in lut (quantizer.nibbleLUT): a posting's ScanNibbles sum is then
// dotSums of its code.
func byteSums(dst []uint16, lut []byte, nb int) []uint16 {
	dst = slices.Grow(dst[:0], nb*256)[:nb*256]
	for p := 0; p < nb; p++ {
		lo, hi := lut[p*32:p*32+16], lut[p*32+16:p*32+32]
		row := dst[p*256 : (p+1)*256]
		for h, hv := range hi {
			for l, lv := range lo {
				row[h<<4|l] = uint16(lv) + uint16(hv)
			}
		}
	}
	return dst
}

// dotSums is a code's sum of byteSums entries: exactly simd.ScanNibbles'
// sum for it (integers), four partial sums so that the lookups overlap.
func dotSums(table []uint16, code []byte) uint32 {
	var s0, s1, s2, s3 uint32
	i := 0
	for ; i+3 < len(code); i += 4 {
		c := code[i : i+4 : i+4]
		t := table[i<<8 : (i+4)<<8 : (i+4)<<8]
		s0 += uint32(t[c[0]])
		s1 += uint32(t[256|int(c[1])])
		s2 += uint32(t[512|int(c[2])])
		s3 += uint32(t[768|int(c[3])])
	}
	for ; i < len(code); i++ {
		s0 += uint32(table[i<<8|int(code[i])])
	}
	return s0 + s1 + s2 + s3
}

// topHits returns the r best of hits (order.Compare: estimate, then
// internal ID), best first, reordering hits: a heap of the r best so far
// (its worst at the root), which most candidates fail to enter with one
// comparison, then a sort of those r. At 20,000 ColBERT documents nearly
// every item is a candidate, and sorting them all was a fifth of a
// candidate search.
func topHits(hits []Hit, r int) []Hit {
	worse := func(a, b Hit) bool { return order.Better(b.Estimate, b.IID, a.Estimate, a.IID) }
	if len(hits) > r {
		h := hits[:r]
		down := func(i int) {
			for {
				c := 2*i + 1
				if c >= len(h) {
					return
				}
				if c+1 < len(h) && worse(h[c+1], h[c]) {
					c++
				}
				if !worse(h[c], h[i]) {
					return
				}
				h[i], h[c] = h[c], h[i]
				i = c
			}
		}
		for i := len(h)/2 - 1; i >= 0; i-- {
			down(i)
		}
		for _, c := range hits[r:] {
			if worse(h[0], c) {
				h[0] = c
				down(0)
			}
		}
		hits = h
	}
	slices.SortFunc(hits, func(a, b Hit) int { return order.Compare(a.Estimate, a.IID, b.Estimate, b.IID) })
	return hits
}

// topNAll sets dst, for each query point i of active in turn, to the
// indexes of its n largest centroid scores (cs[c·nq + i], c < k), largest
// first, ties by index (topN's order, for every point in one pass over
// cs, which is centroid-major); counts is scratch.
func topNAll(dst, counts []int, cs []float32, k, nq int, active []int, n int) ([]int, []int) {
	n = min(n, k)
	dst = slices.Grow(dst[:0], len(active)*n)[:len(active)*n]
	counts = slices.Grow(counts[:0], len(active))[:len(active)]
	clear(counts)
	for c := 0; c < k; c++ {
		row := cs[c*nq : (c+1)*nq]
		for a, i := range active {
			v := row[i]
			top := dst[a*n : a*n+counts[a]]
			if len(top) == n && v <= cs[top[n-1]*nq+i] {
				continue
			}
			if len(top) < n {
				counts[a]++
				top = dst[a*n : a*n+counts[a]]
			}
			top[len(top)-1] = c
			for t := len(top) - 1; t > 0 && cs[top[t]*nq+i] > cs[top[t-1]*nq+i]; t-- {
				top[t], top[t-1] = top[t-1], top[t]
			}
		}
	}
	return dst, counts
}

// topN appends to dst the indexes of the n largest values of row, largest
// first (ties by index); dst's first at entries are left as they are.
func topN(dst []int, row []float32, n, at int) []int {
	n = min(n, len(row))
	for j, v := range row {
		top := dst[at:]
		if len(top) == n && v <= row[top[n-1]] {
			continue
		}
		if len(top) < n {
			dst = append(dst, j)
		} else {
			dst[len(dst)-1] = j
		}
		top = dst[at:]
		for t := len(top) - 1; t > 0 && row[top[t]] > row[top[t-1]]; t-- {
			top[t], top[t-1] = top[t-1], top[t]
		}
	}
	return dst
}

// Warm reads every posting list once: into the resident lists while the
// budget allows, the rest through the store (Pebble's block cache keeps
// what it can), so that the first searches do not pay for the reads.
func (x *Index) Warm() error {
	x.mu.Lock()
	epoch := x.res.epoch
	x.mu.Unlock()
	rd, err := x.store.NewReader(x.gen, x.shift)
	if err != nil {
		return err
	}
	var iids []uint32
	var codes []byte
	for c := 0; c < x.k; c++ {
		var m uint32
		iids, codes, m, err = x.readList(rd, uint32(c), iids[:0], codes[:0])
		if err != nil {
			rd.Close()
			return err
		}
		x.mu.Lock()
		if x.res.budget > 0 {
			x.res.install(uint32(c), epoch, iids, codes, m)
		}
		x.mu.Unlock()
	}
	return rd.Close()
}

// keepBest records e as item s's estimate for the query point when it is
// the first (s joins touched, returned) or above the one recorded; cur
// holds inf for the items not yet touched.
func keepBest(cur []float32, touched []uint32, s uint32, e, inf float32) []uint32 {
	if b := cur[s]; b == inf {
		cur[s] = e
		return append(touched, s)
	} else if e > b {
		cur[s] = e
	}
	return touched
}
