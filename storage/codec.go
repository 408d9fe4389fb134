package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unsafe"

	"github.com/wpcdb/wpcdb/collconfig"
	"github.com/wpcdb/wpcdb/internal/simd"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// Item records: the quantized points, their encoding and decoding.

// Quantize returns the cloud as it will read back from storage under
// encoding e: f32 unchanged, f16 and bf16 rounded to nearest even. A value
// that overflows the encoding is refused, naming the field. Compute φ and
// g(X,X) from the quantized cloud so that they match what is stored.
func Quantize(e collconfig.Encoding, c wpcsim.Cloud) (wpcsim.Cloud, error) {
	q, _, err := QuantizeBits(e, c)
	return q, err
}

// QuantizeBits is Quantize that also returns the points' f16 or bf16 bits
// (nil for f32). An ItemWrite carries them as Half, so that a write stores
// them without encoding the points a second time.
func QuantizeBits(e collconfig.Encoding, c wpcsim.Cloud) (wpcsim.Cloud, []uint16, error) {
	if e == collconfig.EncodingF32 {
		return c, nil, nil
	}
	out := wpcsim.Cloud{Dim: c.Dim, Weights: c.Weights, Points: make([]float32, len(c.Points))}
	half := make([]uint16, len(c.Points))
	if e == collconfig.EncodingF16 {
		simd.F32ToF16(half, c.Points)
		simd.F16ToF32(out.Points, half)
	} else {
		simd.F32ToBF16(half, c.Points)
		simd.BF16ToF32(out.Points, half)
	}
	for i, x := range c.Points {
		if y := out.Points[i]; math.IsInf(float64(y), 0) && !math.IsInf(float64(x), 0) {
			return wpcsim.Cloud{}, nil, wpcsim.CloudError("points["+strconv.Itoa(i/c.Dim)+"]["+strconv.Itoa(i%c.Dim)+"]",
				"value %g overflows the collection's %s encoding", x, e)
		}
	}
	return out, half, nil
}

// recordLen is the length of appendRecord's encoding.
func recordLen(e collconfig.Encoding, id string, c wpcsim.Cloud) int {
	m := c.Len()
	return 1 + uvarintLen(uint64(len(id))) + len(id) + uvarintLen(uint64(m)) + 4*m + len(c.Points)*e.Size() + 16
}

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// readUvarint is binary.Uvarint that also refuses (w ≤ 0) an encoding
// longer than appendRecord writes (0x80 0x00 for 0): a record decodes
// only from the bytes its encoding gives, so a damaged one is never
// read as another record (FuzzDecodeRecord found 20 bytes that
// re-encoded to 19).
func readUvarint(b []byte) (v uint64, w int) {
	v, w = binary.Uvarint(b)
	if w > 0 && w != uvarintLen(v) {
		return 0, -1
	}
	return v, w
}

// appendRecord encodes an item record (see the package doc). half, when it
// holds c's points in encoding e (f16 or bf16, from QuantizeBits), is
// stored as is; otherwise the points are encoded here.
func appendRecord(dst []byte, e collconfig.Encoding, id string, c wpcsim.Cloud, half []uint16, self wpcsim.Self) []byte {
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	dst = binary.AppendUvarint(dst, uint64(c.Len()))
	dst = appendFloats(dst, c.Weights)
	switch e {
	case collconfig.EncodingF32:
		dst = appendFloats(dst, c.Points)
	case collconfig.EncodingF16, collconfig.EncodingBF16:
		if len(half) != len(c.Points) {
			half = make([]uint16, len(c.Points))
			if e == collconfig.EncodingF16 {
				simd.F32ToF16(half, c.Points)
			} else {
				simd.F32ToBF16(half, c.Points)
			}
		}
		if littleEndian && len(half) > 0 {
			dst = append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&half[0])), 2*len(half))...)
		} else {
			for _, h := range half {
				dst = binary.LittleEndian.AppendUint16(dst, h)
			}
		}
	}
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(self.G))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(self.Mass))
}

// CloudBuf holds reusable buffers for decoding item records; a cloud read
// with it aliases the buffers until the next read with the same CloudBuf.
// The zero value is ready to use. Not safe for concurrent use.
type CloudBuf struct {
	weights, points []float32
	half            []uint16
}

// decodeRecord decodes an item record into a fresh cloud.
func decodeRecord(b []byte, e collconfig.Encoding, dim int) (Record, error) {
	return decodeRecordInto(b, e, dim, nil)
}

// decodeRecordID reads an item record's version and ID and returns the
// ID and the rest of the record.
func decodeRecordID(b []byte) (id string, rest []byte, err error) {
	if len(b) == 0 || b[0] != recordVersion {
		return "", nil, fmt.Errorf("%w: item record: unknown record version", ErrCorrupt)
	}
	b = b[1:]
	l, w := readUvarint(b)
	if w <= 0 || uint64(len(b)-w) < l {
		return "", nil, fmt.Errorf("%w: item record: id", ErrCorrupt)
	}
	return string(b[w : w+int(l)]), b[w+int(l):], nil
}

// decodeRecordInto decodes an item record, into buf's storage when buf is
// not nil (the rerank path reads many records and allocates none).
func decodeRecordInto(b []byte, e collconfig.Encoding, dim int, buf *CloudBuf) (Record, error) {
	rec, _, err := decodeRecordHalf(b, e, dim, buf)
	return rec, err
}

// decodeRecordHalf is decodeRecordInto that also returns, for a half
// encoding (f16, bf16), the stored points as half floats: b's own bytes
// (valid while b is) or a copy in buf.
func decodeRecordHalf(b []byte, e collconfig.Encoding, dim int, buf *CloudBuf) (Record, []uint16, error) {
	bad := func(what string) error { return fmt.Errorf("%w: item record: %s", ErrCorrupt, what) }
	id, b, err := decodeRecordID(b)
	if err != nil {
		return Record{}, nil, err
	}
	m, w := readUvarint(b)
	if w <= 0 {
		return Record{}, nil, bad("point count")
	}
	b = b[w:]
	// Check m against the bytes there are before multiplying: a damaged
	// count must not overflow into a small "need" or a huge allocation.
	if per := uint64(4 + dim*e.Size()); len(b) < 16 || m > uint64(len(b)-16)/per {
		return Record{}, nil, bad(fmt.Sprintf("%d bytes cannot hold %d points of dimension %d", len(b), m, dim))
	}
	need := m*4 + m*uint64(dim)*uint64(e.Size()) + 16
	if uint64(len(b)) != need {
		return Record{}, nil, bad(fmt.Sprintf("%d bytes for %d points of dimension %d, want %d", len(b), m, dim, need))
	}
	if buf == nil {
		buf = &CloudBuf{}
	}
	n := int(m) * dim
	buf.weights = slices.Grow(buf.weights[:0], int(m))[:m]
	buf.points = slices.Grow(buf.points[:0], n)[:n]
	c := wpcsim.Cloud{Dim: dim, Weights: buf.weights, Points: buf.points}
	for i := range c.Weights {
		c.Weights[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	b = b[4*m:]
	var half []uint16
	switch e {
	case collconfig.EncodingF32:
		for i := range c.Points {
			c.Points[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case collconfig.EncodingF16, collconfig.EncodingBF16:
		half = halfView(b[:2*n], buf)
		if e == collconfig.EncodingF16 {
			simd.F16ToF32(c.Points, half)
		} else {
			simd.BF16ToF32(c.Points, half)
		}
	}
	b = b[len(c.Points)*e.Size():]
	self := wpcsim.Self{
		G:    math.Float64frombits(binary.LittleEndian.Uint64(b)),
		Mass: math.Float64frombits(binary.LittleEndian.Uint64(b[8:])),
	}
	return Record{ID: id, Cloud: c, Self: self}, half, nil
}

// halfView returns src's little-endian uint16s: the bytes themselves when
// the machine is little-endian and src is 2-byte aligned (the common case),
// otherwise a copy in buf.
func halfView(src []byte, buf *CloudBuf) []uint16 {
	n := len(src) / 2
	if n > 0 && littleEndian && uintptr(unsafe.Pointer(&src[0]))%2 == 0 {
		return unsafe.Slice((*uint16)(unsafe.Pointer(&src[0])), n)
	}
	buf.half = slices.Grow(buf.half[:0], n)[:n]
	for i := range buf.half {
		buf.half[i] = binary.LittleEndian.Uint16(src[2*i:])
	}
	return buf.half
}

var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// appendFloats appends v as float32 LE: its memory itself on a
// little-endian machine.
func appendFloats(dst []byte, v []float32) []byte {
	if littleEndian && len(v) > 0 {
		return append(dst, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))...)
	}
	for _, x := range v {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(x))
	}
	return dst
}

func decodeFloats(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: float vector of %d bytes", ErrCorrupt, len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}
