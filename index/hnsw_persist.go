package index

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// HNSW persistence.
//
// # Format
//
// Save writes one blob, "hnsw", little-endian:
//
//	magic 'H' | version u8 (hnswFormatV2) | metric u8 | mode u8 | dim u32
//	M u32 | EfConstruction u32 | EfSearch u32 | Seed u64
//	level generator state: len u8 | bytes (rand.PCG.MarshalBinary)
//	entry slot u32 (0xFFFFFFFF: empty graph) | max level u8
//	slots u32, then per slot:
//	    state u8 (0 live, 1 tombstone, 2 free); a free slot ends here
//	    id u32 | level u8 | the node's vector:
//	        mode 0: vector dim×f32 (as stored: normalized for Cosine)
//	        mode 1 (codes only): scale f32 | squared norm f32 | code dim×i8
//	    per layer 0..level: count u16 | count × neighbour slot u32
//	CRC-32C u32 of everything before it
//
// Version 1 had no mode byte and only mode 0; it is read as such.
//
// Slots (free ones included) keep their positions, so that a loaded graph
// walks in the same order and searches give identical results; the level
// generator's state is kept so that later Adds build the same graph too.
// LoadHNSW checks the checksum and every structural invariant a walk relies
// on (neighbours in range, on nodes that have the layer, degrees within
// bounds, unique live IDs), so a corrupt blob gives an error wrapping
// ErrCorrupt, never a panic or an out-of-range walk.

const (
	hnswBlobName = "hnsw"
	hnswMagic    = 'H'
	hnswFormatV1 = 1
	hnswFormatV2 = 2
	hnswNoEntry  = math.MaxUint32
	hnswMaxDim   = 1 << 20
)

// Save writes the index as one blob through p (see # Format), streamed
// when p is a BlobStreamer.
func (h *HNSW) Save(p Persister) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	state, err := h.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("index: saving the level generator: %w", err)
	}
	return writeBlob(p, hnswBlobName, func(w *blobWriter) { h.encode(w, state) })
}

// encode writes the blob body (h.mu held).
func (h *HNSW) encode(w *blobWriter, state []byte) {
	mode := byte(0)
	if h.codesOnly {
		mode = 1
	}
	w.write([]byte{hnswMagic, hnswFormatV2, byte(h.metric), mode})
	w.u32(uint32(h.dim))
	w.u32(uint32(h.opts.M))
	w.u32(uint32(h.opts.EfConstruction))
	w.u32(uint32(h.opts.EfSearch))
	w.u64(h.opts.Seed)
	w.u8(byte(len(state)))
	w.write(state)
	entry := uint32(hnswNoEntry)
	if h.entry >= 0 {
		entry = uint32(h.entry)
	}
	w.u32(entry)
	w.u8(byte(h.maxLevel))
	w.u32(uint32(len(h.ids)))
	var codeBuf []byte
	if h.codesOnly {
		codeBuf = make([]byte, h.dim)
	}
	for s, st := range h.states {
		w.u8(byte(st))
		if st == slotFree {
			continue
		}
		w.u32(h.ids[s])
		w.u8(h.levels[s])
		if h.codesOnly {
			w.f32s([]float32{h.cscales[s], h.norms2[s]})
			for i, c := range h.codes[s*h.dim : (s+1)*h.dim] {
				codeBuf[i] = byte(c)
			}
			w.write(codeBuf)
		} else {
			w.f32s(h.vecs[s*h.dim : (s+1)*h.dim])
		}
		for l := 0; l <= int(h.levels[s]); l++ {
			ns := h.neighbours(uint32(s), l)
			w.u16(uint16(len(ns)))
			w.u32s(ns)
		}
	}
}

// LoadHNSW reads an HNSW index saved by Save; (nil, nil) when none is saved.
func LoadHNSW(p Persister) (*HNSW, error) {
	var h *HNSW
	ok, err := readBlob(p, hnswBlobName, func(r *reader) error {
		var err error
		h, err = decodeHNSWFrom(r)
		return err
	})
	if !ok || err != nil {
		return nil, err
	}
	return h, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: hnsw: "+format, append([]any{ErrCorrupt}, args...)...)
}

// decodeHNSW decodes a whole blob body (checksum removed).
func decodeHNSW(b []byte) (*HNSW, error) {
	r := newReader(bytes.NewReader(b), hnswBlobName, int64(len(b)))
	h, err := decodeHNSWFrom(r)
	if err != nil {
		return nil, err
	}
	if r.left != 0 {
		return nil, corrupt("%d bytes after the last slot", r.left)
	}
	return h, nil
}

// decodeHNSWFrom decodes a blob body from r, which bounds every count by
// the bytes left so that a damaged count cannot allocate beyond the blob.
func decodeHNSWFrom(r *reader) (*HNSW, error) {
	magic, version := r.u8(), r.u8()
	if r.err == nil && (magic != hnswMagic || version != hnswFormatV1 && version != hnswFormatV2) {
		return nil, corrupt("magic %q version %d", magic, version)
	}
	metric := Metric(r.u8())
	mode := byte(0)
	if version == hnswFormatV2 {
		mode = r.u8()
	}
	dim := r.u32()
	opts := HNSWOptions{M: int(r.u32()), EfConstruction: int(r.u32()), EfSearch: int(r.u32()), Seed: r.u64()}
	if r.err != nil {
		return nil, r.err
	}
	if metric > L2 || dim == 0 || dim > hnswMaxDim || opts.M == 0 || opts.EfConstruction == 0 || opts.EfSearch == 0 || mode > 1 || mode == 1 && !quantizable(int(dim)) {
		return nil, corrupt("header: metric %d, mode %d, dimension %d, options %+v", metric, mode, dim, opts)
	}
	if err := opts.Validate(); err != nil {
		return nil, corrupt("options: %v", err)
	}
	h, err := NewHNSW(int(dim), metric, opts)
	if err != nil {
		return nil, corrupt("%v", err)
	}
	state := r.take(int(r.u8()))
	if r.err != nil {
		return nil, r.err
	}
	if err := h.pcg.UnmarshalBinary(state); err != nil {
		return nil, corrupt("level generator: %v", err)
	}
	entry := r.u32()
	maxLevel := int(r.u8())
	n := int(r.u32())
	if r.err != nil {
		return nil, r.err
	}
	if int64(n) > r.left { // every slot takes at least a byte
		return nil, corrupt("%d slots in %d bytes", n, r.left)
	}
	if maxLevel > hnswMaxLevel {
		return nil, corrupt("max level %d", maxLevel)
	}
	h.states = make([]slotState, n)
	h.ids = make([]uint32, n)
	h.levels = make([]uint8, n)
	h.norms2 = make([]float32, n)
	var zeroCode []int8 // a free slot's code, appended like its vector
	if quantizable(int(dim)) {
		h.codes = make([]int8, 0, min(int64(n)*int64(dim), r.left/4))
		h.cscales = make([]float32, n)
		zeroCode = make([]int8, dim)
	}
	h.upper = make([][][]uint32, n)
	h.codesOnly = mode == 1
	if !h.codesOnly {
		h.vecs = make([]float32, 0, min(int64(n)*int64(dim), r.left/4))
	}
	h.links0 = make([]uint32, 0, min(int64(n)*int64(h.maxDeg0+1), r.left/4))
	zero := make([]float32, dim)
	for s := 0; s < n && r.err == nil; s++ {
		st := slotState(r.u8())
		h.states[s] = st
		switch st {
		case slotFree:
			h.free = append(h.free, uint32(s))
			if !h.codesOnly {
				h.vecs = append(h.vecs, zero...)
			}
			h.codes = append(h.codes, zeroCode...)
			h.links0 = append(h.links0, make([]uint32, h.maxDeg0+1)...)
			continue
		case slotLive, slotDeleted:
		default:
			return nil, corrupt("slot %d: state %d", s, st)
		}
		id, level := r.u32(), int(r.u8())
		if level > maxLevel {
			return nil, corrupt("slot %d: level %d above the max level %d", s, level, maxLevel)
		}
		h.ids[s], h.levels[s] = id, uint8(level)
		if h.codesOnly {
			scale := math.Float32frombits(r.u32())
			n2 := math.Float32frombits(r.u32())
			code := r.take(int(dim))
			if r.err != nil {
				break
			}
			if !(scale >= 0 && scale <= math.MaxFloat32 && n2 >= 0 && n2 <= math.MaxFloat32) {
				return nil, corrupt("slot %d: code scale %g, squared norm %g", s, scale, n2)
			}
			h.cscales[s], h.norms2[s] = scale, n2
			for _, b := range code {
				h.codes = append(h.codes, int8(b))
			}
		} else {
			vec := r.take(4 * int(dim))
			if r.err != nil {
				break
			}
			h.vecs = slices.Grow(h.vecs, int(dim))
			v := h.vecs[len(h.vecs) : len(h.vecs)+int(dim)]
			for i := range v {
				v[i] = math.Float32frombits(binary.LittleEndian.Uint32(vec[4*i:]))
			}
			h.vecs = h.vecs[:len(h.vecs)+int(dim)]
			h.norms2[s] = dot(v, v)
			if zeroCode != nil {
				h.codes = append(h.codes, zeroCode...)
				h.setCode(uint32(s), v)
			}
		}
		if st == slotLive {
			if _, dup := h.slot[id]; dup {
				return nil, corrupt("slot %d: id %d is live twice", s, id)
			}
			h.slot[id] = uint32(s)
		} else {
			h.deleted++
		}
		if level > 0 {
			h.upper[s] = make([][]uint32, level)
		}
		for l := 0; l <= level && r.err == nil; l++ {
			count := int(r.u16())
			if count > h.maxDeg(l) {
				return nil, corrupt("slot %d: %d links on layer %d, at most %d", s, count, l, h.maxDeg(l))
			}
			raw := r.take(4 * count)
			if r.err != nil {
				break
			}
			if l == 0 {
				h.links0 = append(h.links0, uint32(count))
				for i := 0; i < count; i++ {
					h.links0 = append(h.links0, binary.LittleEndian.Uint32(raw[4*i:]))
				}
				h.links0 = append(h.links0, make([]uint32, h.maxDeg0-count)...)
			} else {
				ns := make([]uint32, count, h.opts.M) // as newSlot makes them
				for i := range ns {
					ns[i] = binary.LittleEndian.Uint32(raw[4*i:])
				}
				h.upper[s][l-1] = ns
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	// The links a walk follows: to existing nodes that have the layer.
	for s, st := range h.states {
		if st == slotFree {
			continue
		}
		for l := 0; l <= int(h.levels[s]); l++ {
			for _, nb := range h.neighbours(uint32(s), l) {
				if int(nb) >= n || h.states[nb] == slotFree || int(h.levels[nb]) < l {
					return nil, corrupt("slot %d: layer %d link to slot %d, which is free, absent or lower", s, l, nb)
				}
			}
		}
	}
	switch {
	case entry == hnswNoEntry:
		if len(h.slot) > 0 || h.deleted > 0 {
			return nil, corrupt("no entry in a graph of %d nodes", len(h.slot)+h.deleted)
		}
	case int(entry) >= n || h.states[entry] == slotFree || int(h.levels[entry]) != maxLevel:
		return nil, corrupt("entry slot %d (max level %d)", entry, maxLevel)
	default:
		h.entry, h.maxLevel = int32(entry), maxLevel
	}
	// Slots are freed in bulk and reused smallest first: descending order.
	for i, j := 0, len(h.free)-1; i < j; i, j = i+1, j-1 {
		h.free[i], h.free[j] = h.free[j], h.free[i]
	}
	return h, nil
}
