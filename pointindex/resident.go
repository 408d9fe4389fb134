package pointindex

import (
	"fmt"
	"sync/atomic"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// DefaultResidentBytes is the default budget of an index's resident
// posting lists (see Index.SetResidentBytes): 256 MiB, the postings of
// about 7 million points at d = 128 (36 bytes each: an internal ID and a
// 32-byte code), e.g. a colbert collection of 40,000 documents.
//
// Measured on bench's colbert shape (5,000 and 20,000 documents, 32-point
// queries, depth 50, one core): reading the probed lists from Pebble cost
// about as much CPU as scoring them when they were all in its block cache
// (colbert 5k: 20.5 ms a search against 11.4 with the lists in memory), and
// at 20,000 documents the 144 MB of postings overflowed the default 64 MiB
// block cache (41 ms a search). Resident lists are scanned in place, with
// no copy and no iterator: bench colbert 20,000 (132 MB resident, 36.7
// bytes a point) then searched at recall@10 0.994 in 18.2 ms of CPU a
// query, against 57.9 ms reading Pebble.
const DefaultResidentBytes = 256 << 20

// resList is a resident copy of one posting list as read from the store
// at write epoch epoch: its postings' items and codes (nbytes a posting,
// the point number and weight dropped: the estimate uses neither).
// Immutable once installed; a write to the list drops it.
//
// The codes are kept either as read (codes, nbytes a posting in turn) or,
// where simd.ScanNibbles runs in assembly (useNibbles), transposed into
// blocks of 64 postings for it (blocks: byte p of posting t at
// (t/64·nbytes + p)·64 + t%64, the last block padded with zero codes).
type resList struct {
	iids   []uint32
	codes  []byte
	blocks []byte
	maxIID uint32
	epoch  uint64
}

func (r *resList) bytes() int64 { return int64(4*len(r.iids)+len(r.codes)+len(r.blocks)) + 64 }

// useNibbles says whether lists become resident as nibble blocks: where
// simd.ScanNibbles runs in assembly (AVX-512BW or AVX2) and the codes fit it. A
// variable so that tests run both layouts.
var useNibbles = simd.NibblesFast()

// toBlocks returns n codes of nb bytes (row-major) transposed into blocks
// of simd.NibbleBlock (see resList).
func toBlocks(codes []byte, n, nb int) []byte {
	const B = simd.NibbleBlock
	blocks := make([]byte, (n+B-1)/B*B*nb)
	for t := 0; t < n; t++ {
		blk := blocks[t/B*B*nb:]
		for p, c := range codes[t*nb : (t+1)*nb] {
			blk[p*B+t%B] = c
		}
	}
	return blocks
}

// codeOf appends posting t's code from nibble blocks of nb-byte codes.
func codeOf(dst, blocks []byte, t, nb int) []byte {
	const B = simd.NibbleBlock
	blk := blocks[t/B*B*nb:]
	for p := 0; p < nb; p++ {
		dst = append(dst, blk[p*B+t%B])
	}
	return dst
}

// resident is an index's resident lists and what keeps them current,
// guarded by Index.mu.
//
// A list is read from the store by a search (or Warm) that finds it not
// resident, and kept when the budget allows and no write touched it since
// the search captured the epoch (before opening its reader): each write
// (Added, Removed) takes the next epoch, records it as the item's staleAt
// and, for Added, as the lastWrite of the lists the item's new postings
// are in, dropping those lists. A resident list then holds every current
// posting of the items not written since it was read, and the stale
// postings of items written since are skipped (staleAt > the list's
// epoch): a deleted item's, or a rewritten item's in a list its new
// postings are not in (a list they are in was dropped). Flush (the
// store's buffered writes made visible) drops every list.
type resident struct {
	budget    int64
	bytes     int64
	lists     []*resList // by list; nil: not resident
	lastWrite []uint64   // by list: the epoch of the last write to it
	dropAll   uint64     // the epoch of the last Flush
	epoch     uint64
	lastStale uint64          // the largest staleAt
	staleAt   []atomic.Uint64 // by internal ID: the epoch of its last write
}

func (r *resident) init(k int) {
	r.budget = DefaultResidentBytes
	r.lists = make([]*resList, k)
	r.lastWrite = make([]uint64, k)
}

// noteWrite records a write to item iid (and to lists, its new postings'
// lists) under a new epoch.
func (r *resident) noteWrite(iid uint32, lists []uint32) {
	r.epoch++
	e := r.epoch
	if r.bytes == 0 {
		// Nothing resident to skip stale postings in: a list being read
		// meanwhile is not kept (the per-item epochs are kept only while
		// lists are resident, and cost nothing during a build).
		r.dropAll = e
		return
	}
	if int(iid) >= len(r.staleAt) {
		n := max(int(iid)+1, 2*len(r.staleAt), 1024)
		s := make([]atomic.Uint64, n)
		for i := range r.staleAt {
			s[i].Store(r.staleAt[i].Load())
		}
		r.staleAt = s
	}
	r.staleAt[iid].Store(e)
	r.lastStale = e
	for _, l := range lists {
		if int(l) < len(r.lists) {
			r.lastWrite[l] = e
			r.drop(l)
		}
	}
}

func (r *resident) drop(l uint32) {
	if rl := r.lists[l]; rl != nil {
		r.bytes -= rl.bytes()
		r.lists[l] = nil
	}
}

func (r *resident) dropEvery() {
	r.epoch++
	r.dropAll = r.epoch
	for l := range r.lists {
		r.drop(uint32(l))
	}
}

// install keeps list l, read at epoch epoch, when it fits the budget and
// no write touched it since; iids and codes are copied.
func (r *resident) install(l uint32, epoch uint64, iids []uint32, codes []byte, maxIID uint32) {
	if r.lists[l] != nil || r.lastWrite[l] > epoch || r.dropAll > epoch {
		return
	}
	rl := &resList{maxIID: maxIID, epoch: epoch}
	nb := 0
	if len(iids) > 0 {
		nb = len(codes) / len(iids)
	}
	size := len(codes)
	blocked := useNibbles && nb > 0 && nb <= simd.MaxNibbleBytes
	if blocked {
		size = (len(iids) + simd.NibbleBlock - 1) / simd.NibbleBlock * simd.NibbleBlock * nb
	}
	if r.bytes+int64(4*len(iids)+size)+64 > r.budget {
		return
	}
	rl.iids = append([]uint32(nil), iids...)
	if blocked {
		rl.blocks = toBlocks(codes, len(iids), nb)
	} else {
		rl.codes = append([]byte(nil), codes...)
	}
	r.lists[l] = rl
	r.bytes += rl.bytes()
}

// SetResidentBytes sets the budget of the index's resident posting lists
// (0: none, every search reads its lists from the store; the default is
// DefaultResidentBytes), dropping them all. Lists are kept as searches
// read them, until the budget is spent: the lists beyond it are read from
// the store (Pebble's block cache, else disk) by every search.
func (x *Index) SetResidentBytes(n int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.res.dropEvery()
	x.res.budget = max(n, 0)
}

// readList appends list l's postings (item, code) from rd to iids and
// codes and returns them with the largest item.
func (x *Index) readList(rd Reader, l uint32, iids []uint32, codes []byte) ([]uint32, []byte, uint32, error) {
	nb := x.qz.nbytes
	per := postingBytes(nb)
	var bad error
	var maxIID uint32
	err := rd.List(l, func(iid uint32, v []byte) {
		n := len(v) / per
		if n == 0 || len(v)%per != 0 {
			if bad == nil {
				bad = fmt.Errorf("%w: list %d: item %d has %d bytes, not a multiple of %d", ErrCorrupt, l, iid, len(v), per)
			}
			return
		}
		for t := range n {
			iids = append(iids, iid)
			codes = append(codes, v[t*per+4:(t+1)*per]...)
		}
		maxIID = max(maxIID, iid)
	})
	if err == nil {
		err = bad
	}
	return iids, codes, maxIID, err
}

// overhead is the resident lists' memory with the bookkeeping's.
func (r *resident) overhead() int64 {
	return r.bytes + int64(16*len(r.lists)+8*len(r.staleAt))
}
