package pointindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// ErrCorrupt is Read's error for bytes that are not an index WriteTo
// wrote: the caller rebuilds the index from the stored clouds.
var ErrCorrupt = errors.New("pointindex: corrupt saved index")

// formatVersion is the version byte of the saved form (see the package
// doc, # Persistence). Version 1 held the posting lists too; reading it
// gives ErrCorrupt, and the caller rebuilds the index.
const formatVersion = 2

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteTo writes the index's saved form to w: its centroids and buckets,
// not its posting lists, which are the store's.
func (x *Index) WriteTo(w io.Writer) (int64, error) {
	x.mu.Lock()
	maxErr, added, addedResid := x.maxErr, x.added, x.addedResid
	x.mu.Unlock()
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	f32s := func(vs []float32) {
		for _, v := range vs {
			u32(math.Float32bits(v))
		}
	}
	b = append(b, 'W', 'P', 'I', formatVersion, byte(x.qz.bits), x.shift)
	u32(uint32(x.d))
	u32(uint32(x.k))
	u32(uint32(x.nprobe))
	u32(x.gen)
	u32(math.Float32bits(maxErr))
	u32(math.Float32bits(x.trainResid))
	b = binary.LittleEndian.AppendUint64(b, uint64(added))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(addedResid))
	f32s(x.cents)
	f32s(x.qz.cut)
	f32s(x.qz.val)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	n, err := w.Write(b)
	return int64(n), err
}

// maxSaved bounds the size Read accepts before it allocates.
const maxSaved = 1 << 34

// Read reads an index of size bytes that WriteTo wrote, over the posting
// lists of store (nil: an empty memory store). Damaged bytes (a checksum
// mismatch, counts that do not fit the size) give an error wrapping
// ErrCorrupt, never a panic. The index's counts are zero until Sync.
func Read(r io.Reader, size int64, store Store) (*Index, error) {
	if size < 4 || size > maxSaved {
		return nil, fmt.Errorf("%w: size %d", ErrCorrupt, size)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("pointindex: reading the saved index: %w", err)
	}
	body := buf[:size-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(buf[size-4:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	d := &decoder{b: body}
	x, err := d.index(store)
	if err != nil {
		return nil, err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the buckets", ErrCorrupt, len(d.b))
	}
	return x, nil
}

// decoder reads the saved form; every count is checked against the bytes
// left before anything is allocated.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) need(n int64) bool {
	if d.err == nil && (n < 0 || n > int64(len(d.b))) {
		d.err = fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	return d.err == nil
}

func (d *decoder) u32() uint32 {
	if !d.need(4) {
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) f32s(n int64) []float32 {
	if !d.need(4 * n) {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d.b[4*i:]))
	}
	d.b = d.b[4*n:]
	return out
}

func (d *decoder) index(store Store) (*Index, error) {
	if !d.need(6) || d.b[0] != 'W' || d.b[1] != 'P' || d.b[2] != 'I' || d.b[3] != formatVersion {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	bits, shift := int(d.b[4]), d.b[5]
	d.b = d.b[6:]
	dim, k, nprobe, gen := int64(d.u32()), int64(d.u32()), int64(d.u32()), d.u32()
	maxErr := math.Float32frombits(d.u32())
	trainResid := math.Float32frombits(d.u32())
	added, addedResid := uint64(d.u32())|uint64(d.u32())<<32, math.Float64frombits(uint64(d.u32())|uint64(d.u32())<<32)
	if d.err != nil {
		return nil, d.err
	}
	if (bits != 2 && bits != 4) || shift > 16 || dim < 1 || dim > 1<<16 || k < 1 || k > 1<<20 || nprobe < 1 || added > 1<<62 || !(addedResid >= 0) {
		return nil, fmt.Errorf("%w: %d bits, dimension %d, %d centroids, nprobe %d", ErrCorrupt, bits, dim, k, nprobe)
	}
	if !d.need(4 * k * dim) {
		return nil, d.err
	}
	x := New(int(dim), d.f32s(k*dim), Options{Bits: bits, NProbe: int(nprobe), Store: store, Gen: gen})
	x.maxErr = maxErr
	x.trainResid = trainResid
	x.shift = shift
	x.added, x.addedResid = int(added), addedResid
	x.qz.cut = d.f32s(int64(len(x.qz.cut)))
	x.qz.val = d.f32s(int64(len(x.qz.val)))
	return x, d.err
}
