// Package idx reads IDX files, the format of MNIST and its family
// (Fashion-MNIST, KMNIST, EMNIST), plain or gzip-compressed.
//
// # Format
//
// An IDX file is big-endian:
//
//	offset  size   content
//	0       2      zero
//	2       1      element type: 0x08 uint8 (the only one read here), 0x09
//	               int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
//	3       1      number of dimensions n (1 for labels, 3 for images)
//	4       4·n    the dimensions, uint32 each
//	4+4n    ...    the elements, row-major, with nothing after them
//
// A file starting with the gzip magic 1f 8b is decompressed first.
package idx

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrFormat is wrapped by every error about a file that is not a
// well-formed IDX file.
var ErrFormat = errors.New("idx: malformed file")

// maxDims and maxItemBytes bound what a header may claim.
const (
	maxDims      = 8
	maxItemBytes = 1 << 28
)

// Reader streams the items of one IDX file of uint8 elements: an item is
// one slice along the first dimension (an image, or a label). It is not
// safe for concurrent use.
type Reader struct {
	// Dims are the dimensions from the header; Dims[0] is the item count.
	Dims []int
	r    *bufio.Reader
	gz   *gzip.Reader
	next int
}

// NewReader parses the header of r, decompressing it if it is gzipped.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	rd := &Reader{r: br}
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %v", ErrFormat, err)
		}
		rd.gz, rd.r = gz, bufio.NewReaderSize(gz, 1<<16)
	}
	var h [4]byte
	if _, err := io.ReadFull(rd.r, h[:]); err != nil {
		return nil, fmt.Errorf("%w: reading header: %v", ErrFormat, err)
	}
	if h[0] != 0 || h[1] != 0 {
		return nil, fmt.Errorf("%w: bad magic % x (want 00 00 type ndims)", ErrFormat, h[:])
	}
	if h[2] != 0x08 {
		return nil, fmt.Errorf("%w: element type 0x%02x is not supported (only 0x08, unsigned bytes)", ErrFormat, h[2])
	}
	n := int(h[3])
	if n == 0 || n > maxDims {
		return nil, fmt.Errorf("%w: %d dimensions (want 1 to %d)", ErrFormat, n, maxDims)
	}
	b := make([]byte, 4*n)
	if _, err := io.ReadFull(rd.r, b); err != nil {
		return nil, fmt.Errorf("%w: reading dimensions: %v", ErrFormat, err)
	}
	size := 1
	for i := 0; i < n; i++ {
		d := int(binary.BigEndian.Uint32(b[4*i:]))
		rd.Dims = append(rd.Dims, d)
		if i > 0 {
			if d == 0 || size > maxItemBytes/d {
				return nil, fmt.Errorf("%w: item shape %v is empty or too large", ErrFormat, rd.Dims[1:])
			}
			size *= d
		}
	}
	return rd, nil
}

// Len is the number of items, Dims[0].
func (r *Reader) Len() int { return r.Dims[0] }

// ItemSize is the number of elements in one item (1 for a label file).
func (r *Reader) ItemSize() int {
	n := 1
	for _, d := range r.Dims[1:] {
		n *= d
	}
	return n
}

// Next reads the next item into dst (len ItemSize, or allocated when
// shorter) and returns it, or io.EOF after the last item. After the last
// item it checks that nothing follows.
func (r *Reader) Next(dst []byte) ([]byte, error) {
	if r.next == r.Len() {
		if _, err := r.r.ReadByte(); err != io.EOF {
			return nil, fmt.Errorf("%w: data continues after %d items", ErrFormat, r.Len())
		}
		return nil, io.EOF
	}
	n := r.ItemSize()
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	if _, err := io.ReadFull(r.r, dst); err != nil {
		return nil, fmt.Errorf("%w: item %d of %d: %v", ErrFormat, r.next, r.Len(), err)
	}
	r.next++
	return dst, nil
}

// ReadAll reads the remaining items into one slice, row-major.
func (r *Reader) ReadAll() ([]byte, error) {
	n := r.ItemSize() * (r.Len() - r.next)
	out := make([]byte, n)
	if _, err := io.ReadFull(r.r, out); err != nil {
		return nil, fmt.Errorf("%w: %d items of %d bytes: %v", ErrFormat, r.Len()-r.next, r.ItemSize(), err)
	}
	r.next = r.Len()
	if _, err := r.Next(nil); err != io.EOF {
		return nil, err
	}
	return out, nil
}

// ReadFile reads a whole IDX file: its dimensions and its elements.
func ReadFile(path string) (dims []int, data []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r, err := NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err = r.ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return r.Dims, data, nil
}

// Write writes data as an uncompressed IDX file of unsigned bytes with the
// given dimensions (tests and fixtures use it).
func Write(w io.Writer, dims []int, data []byte) error {
	n := 1
	for _, d := range dims {
		n *= d
	}
	if len(dims) == 0 || len(dims) > maxDims || n != len(data) {
		return fmt.Errorf("idx: %d bytes do not fill dimensions %v", len(data), dims)
	}
	h := []byte{0, 0, 0x08, byte(len(dims))}
	for _, d := range dims {
		h = binary.BigEndian.AppendUint32(h, uint32(d))
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
