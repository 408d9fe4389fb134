package pointindex

import (
	"bufio"
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
// doc, # Persistence).
const formatVersion = 1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteTo writes the index in its saved form to w. It holds the read lock:
// searches go on, writes wait.
func (x *Index) WriteTo(w io.Writer) (int64, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	crc := crc32.New(castagnoli)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 1<<16)
	var b []byte
	u32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	f32s := func(vs []float32) {
		for _, v := range vs {
			u32(math.Float32bits(v))
		}
	}
	flush := func() {
		bw.Write(b)
		b = b[:0]
	}
	b = append(b, 'W', 'P', 'I', formatVersion, byte(x.qz.bits))
	u32(uint32(x.d))
	u32(uint32(x.k))
	u32(uint32(x.nprobe))
	u32(math.Float32bits(x.maxErr))
	f32s(x.cents)
	f32s(x.qz.cut)
	f32s(x.qz.val)
	u32(uint32(len(x.iidOf)))
	for s, iid := range x.iidOf {
		u32(iid)
		u32(x.npts[s])
	}
	for _, word := range x.live {
		b = binary.LittleEndian.AppendUint64(b, word)
	}
	flush()
	for _, l := range x.lists {
		u32(uint32(len(l.slots)))
		for _, s := range l.slots {
			u32(s)
		}
		for i := range l.points {
			b = binary.LittleEndian.AppendUint16(b, l.points[i])
			b = binary.LittleEndian.AppendUint16(b, l.wts[i])
		}
		b = append(b, l.codes...)
		flush()
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	sum := binary.LittleEndian.AppendUint32(nil, crc.Sum32())
	_, err := w.Write(sum)
	return cw.n + 4, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// maxSaved bounds the size Read accepts before it allocates.
const maxSaved = 1 << 40

// Read reads an index of size bytes that WriteTo wrote. Damaged bytes (a
// checksum mismatch, counts that do not fit the size, slots or codes out
// of range) give an error wrapping ErrCorrupt, never a panic.
func Read(r io.Reader, size int64) (*Index, error) {
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
	x, err := d.index()
	if err != nil {
		return nil, err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last list", ErrCorrupt, len(d.b))
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

func (d *decoder) index() (*Index, error) {
	if !d.need(5) || d.b[0] != 'W' || d.b[1] != 'P' || d.b[2] != 'I' || d.b[3] != formatVersion {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	bits := int(d.b[4])
	d.b = d.b[5:]
	dim, k, nprobe := int64(d.u32()), int64(d.u32()), int64(d.u32())
	maxErr := math.Float32frombits(d.u32())
	if d.err != nil {
		return nil, d.err
	}
	if (bits != 2 && bits != 4) || dim < 1 || dim > 1<<16 || k < 1 || nprobe < 1 {
		return nil, fmt.Errorf("%w: %d bits, dimension %d, %d centroids, nprobe %d", ErrCorrupt, bits, dim, k, nprobe)
	}
	if !d.need(4 * k * dim) {
		return nil, d.err
	}
	x := New(int(dim), d.f32s(k*dim), Options{Bits: bits, NProbe: int(nprobe)})
	x.maxErr = maxErr
	x.qz.cut = d.f32s(int64(len(x.qz.cut)))
	x.qz.val = d.f32s(int64(len(x.qz.val)))
	n := int64(d.u32())
	if !d.need(8*n + 8*((n+63)/64)) {
		return nil, d.err
	}
	x.iidOf, x.npts = make([]uint32, n), make([]uint32, n)
	for s := range x.iidOf {
		x.iidOf[s], x.npts[s] = d.u32(), d.u32()
	}
	x.live = make([]uint64, (n+63)/64)
	for i := range x.live {
		x.live[i] = binary.LittleEndian.Uint64(d.b)
		d.b = d.b[8:]
	}
	for s, iid := range x.iidOf {
		if !x.isLive(uint32(s)) {
			continue
		}
		if _, dup := x.slotOf[iid]; dup {
			return nil, fmt.Errorf("%w: item %d in two live slots", ErrCorrupt, iid)
		}
		x.slotOf[iid] = uint32(s)
	}
	if n%64 != 0 && len(x.live) > 0 && x.live[len(x.live)-1]>>(n%64) != 0 {
		return nil, fmt.Errorf("%w: live bits past the last slot", ErrCorrupt)
	}
	nb := int64(x.qz.nbytes)
	for c := range x.lists {
		m := int64(d.u32())
		if !d.need(m * (8 + nb)) {
			return nil, d.err
		}
		l := postings{slots: make([]uint32, m), points: make([]uint16, m), wts: make([]uint16, m)}
		for i := range l.slots {
			s := d.u32()
			if int64(s) >= n {
				return nil, fmt.Errorf("%w: list %d: slot %d of %d", ErrCorrupt, c, s, n)
			}
			l.slots[i] = s
			if x.isLive(s) {
				x.points++
			} else {
				x.dead++
			}
		}
		for i := range l.points {
			l.points[i] = binary.LittleEndian.Uint16(d.b)
			l.wts[i] = binary.LittleEndian.Uint16(d.b[2:])
			d.b = d.b[4:]
		}
		l.codes = append([]byte(nil), d.b[:m*nb]...)
		d.b = d.b[m*nb:]
		x.lists[c] = l
	}
	return x, d.err
}
