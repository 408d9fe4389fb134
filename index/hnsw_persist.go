package index

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// HNSW persistence.
//
// # Format
//
// Save writes one blob, "hnsw", little-endian:
//
//	magic 'H' | version u8 (hnswFormatV1) | metric u8 | dim u32
//	M u32 | EfConstruction u32 | EfSearch u32 | Seed u64
//	level generator state: len u8 | bytes (rand.PCG.MarshalBinary)
//	entry slot u32 (0xFFFFFFFF: empty graph) | max level u8
//	slots u32, then per slot:
//	    state u8 (0 live, 1 tombstone, 2 free); a free slot ends here
//	    id u32 | level u8 | vector dim×f32 (as stored: normalized for Cosine)
//	    per layer 0..level: count u16 | count × neighbour slot u32
//	CRC-32C u32 of everything before it
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
	hnswNoEntry  = math.MaxUint32
	hnswMaxDim   = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save writes the index as one blob through p (see # Format).
func (h *HNSW) Save(p Persister) error {
	h.mu.RLock()
	b, err := h.appendBinary(nil)
	h.mu.RUnlock()
	if err != nil {
		return err
	}
	return p.PutBlob(hnswBlobName, b)
}

func (h *HNSW) appendBinary(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	b = append(b, hnswMagic, hnswFormatV1, byte(h.metric))
	b = le.AppendUint32(b, uint32(h.dim))
	b = le.AppendUint32(b, uint32(h.opts.M))
	b = le.AppendUint32(b, uint32(h.opts.EfConstruction))
	b = le.AppendUint32(b, uint32(h.opts.EfSearch))
	b = le.AppendUint64(b, h.opts.Seed)
	state, err := h.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("index: saving the level generator: %w", err)
	}
	b = append(b, byte(len(state)))
	b = append(b, state...)
	entry := uint32(hnswNoEntry)
	if h.entry >= 0 {
		entry = uint32(h.entry)
	}
	b = le.AppendUint32(b, entry)
	b = append(b, byte(h.maxLevel))
	b = le.AppendUint32(b, uint32(len(h.ids)))
	for s, st := range h.states {
		b = append(b, byte(st))
		if st == slotFree {
			continue
		}
		b = le.AppendUint32(b, h.ids[s])
		b = append(b, h.levels[s])
		for _, x := range h.vecs[s*h.dim : (s+1)*h.dim] {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
		for l := 0; l <= int(h.levels[s]); l++ {
			ns := h.neighbours(uint32(s), l)
			b = le.AppendUint16(b, uint16(len(ns)))
			for _, n := range ns {
				b = le.AppendUint32(b, n)
			}
		}
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// LoadHNSW reads an HNSW index saved by Save; (nil, nil) when none is saved.
func LoadHNSW(p Persister) (*HNSW, error) {
	b, err := p.GetBlob(hnswBlobName)
	if err != nil || b == nil {
		return nil, err
	}
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: hnsw blob of %d bytes", ErrCorrupt, len(b))
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, fmt.Errorf("%w: hnsw checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	return decodeHNSW(body)
}

// reader decodes little-endian fields, remembering the first short read.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%w: hnsw blob truncated at byte %d (want %d more)", ErrCorrupt, r.off, n)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: hnsw: "+format, append([]any{ErrCorrupt}, args...)...)
}

// decodeHNSW decodes a blob body (checksum removed).
func decodeHNSW(b []byte) (*HNSW, error) {
	r := &reader{b: b}
	if magic, version := r.u8(), r.u8(); r.err == nil && (magic != hnswMagic || version != hnswFormatV1) {
		return nil, corrupt("magic %q version %d", magic, version)
	}
	metric := Metric(r.u8())
	dim := r.u32()
	opts := HNSWOptions{M: int(r.u32()), EfConstruction: int(r.u32()), EfSearch: int(r.u32()), Seed: r.u64()}
	if r.err != nil {
		return nil, r.err
	}
	if metric > L2 || dim == 0 || dim > hnswMaxDim || opts.M == 0 || opts.EfConstruction == 0 || opts.EfSearch == 0 {
		return nil, corrupt("header: metric %d, dimension %d, options %+v", metric, dim, opts)
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
	if n > len(b)-r.off { // every slot takes at least a byte
		return nil, corrupt("%d slots in %d bytes", n, len(b)-r.off)
	}
	if maxLevel > hnswMaxLevel {
		return nil, corrupt("max level %d", maxLevel)
	}
	h.states = make([]slotState, n)
	h.ids = make([]uint32, n)
	h.levels = make([]uint8, n)
	h.norms2 = make([]float32, n)
	h.upper = make([][][]uint32, n)
	h.vecs = make([]float32, 0, min(n*int(dim), (len(b)-r.off)/4))
	h.links0 = make([]uint32, 0, min(n*(h.maxDeg0+1), (len(b)-r.off)/4))
	zero := make([]float32, dim)
	for s := 0; s < n && r.err == nil; s++ {
		st := slotState(r.u8())
		h.states[s] = st
		switch st {
		case slotFree:
			h.free = append(h.free, uint32(s))
			h.vecs = append(h.vecs, zero...)
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
		vec := r.take(4 * int(dim))
		if r.err != nil {
			break
		}
		for i := 0; i < int(dim); i++ {
			h.vecs = append(h.vecs, math.Float32frombits(binary.LittleEndian.Uint32(vec[4*i:])))
		}
		v := h.vecs[s*int(dim):]
		h.norms2[s] = dot(v, v)
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
	if r.off != len(b) {
		return nil, corrupt("%d bytes after the last slot", len(b)-r.off)
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
