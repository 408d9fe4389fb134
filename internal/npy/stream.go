package npy

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/wpcdb/wpcdb/internal/simd"
)

// Streaming reads, for arrays too large to hold at once (a million clouds
// of points): the caller checks Header.Shape, then reads the data in
// row-sized pieces with ReadFloats or ReadInts, and finally calls Done.

// floatSize returns the element size of a float dtype ReadFloats accepts.
func floatSize(descr string) (int, bool) {
	switch descr {
	case "<f4":
		return 4, true
	case "<f2":
		return 2, true
	}
	return 0, false
}

// CheckFloat reports whether the array's dtype is little-endian float32 or
// float16 in C order.
func (r *Reader) CheckFloat() error {
	if _, ok := floatSize(r.Header.Descr); !ok {
		return fmt.Errorf("%w: dtype %s, want '<f4' (float32) or '<f2' (float16)", ErrFormat, quoteShort(r.Header.Descr))
	}
	if r.Header.Fortran {
		return fmt.Errorf("%w: Fortran order; save the array in C order", ErrFormat)
	}
	return nil
}

// ReadFloats fills dst with the next len(dst) elements (float32 or float16,
// see CheckFloat), widening float16 exactly.
func (r *Reader) ReadFloats(dst []float32) error {
	size, ok := floatSize(r.Header.Descr)
	if !ok {
		return r.CheckFloat()
	}
	buf := make([]byte, size*len(dst))
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return fmt.Errorf("%w: data ends early: %v", ErrFormat, err)
	}
	if size == 4 {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
		}
		return nil
	}
	half := make([]uint16, len(dst))
	for i := range half {
		half[i] = binary.LittleEndian.Uint16(buf[2*i:])
	}
	simd.F16ToF32(dst, half)
	return nil
}

var intSizes = map[string]struct {
	size   int
	signed bool
}{
	"<i8": {8, true}, "<i4": {4, true}, "<i2": {2, true}, "|i1": {1, true},
	"<u8": {8, false}, "<u4": {4, false}, "<u2": {2, false}, "|u1": {1, false},
}

// ReadInts reads n integers of any little-endian integer dtype.
func (r *Reader) ReadInts(n int) ([]int64, error) {
	t, ok := intSizes[r.Header.Descr]
	if !ok {
		return nil, fmt.Errorf("%w: dtype %s, want a little-endian integer such as '<i8'", ErrFormat, quoteShort(r.Header.Descr))
	}
	buf := make([]byte, t.size*n)
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return nil, fmt.Errorf("%w: data ends early: %v", ErrFormat, err)
	}
	out := make([]int64, n)
	for i := range out {
		b := buf[t.size*i:]
		var u uint64
		switch t.size {
		case 8:
			u = binary.LittleEndian.Uint64(b)
		case 4:
			u = uint64(binary.LittleEndian.Uint32(b))
			if t.signed {
				u = uint64(int64(int32(u)))
			}
		case 2:
			u = uint64(binary.LittleEndian.Uint16(b))
			if t.signed {
				u = uint64(int64(int16(u)))
			}
		case 1:
			u = uint64(b[0])
			if t.signed {
				u = uint64(int64(int8(u)))
			}
		}
		if !t.signed && u > math.MaxInt64 {
			return nil, fmt.Errorf("%w: value %d at %d overflows int64", ErrFormat, u, i)
		}
		out[i] = int64(u)
	}
	return out, nil
}

// Done checks that every element has been read and nothing follows.
func (r *Reader) Done() error {
	if _, err := r.r.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: trailing bytes after shape %s", ErrFormat, r.Header.ShapeString())
	}
	return nil
}
