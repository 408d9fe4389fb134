// Package npy reads and writes NumPy .npy files holding float32 arrays, the
// format of imported random-feature samples and of bulk cloud input.
//
// # Format
//
// A .npy file (NumPy NEP 1, versions 1.0, 2.0 and 3.0) is
//
//	offset  size  content
//	0       6     magic "\x93NUMPY"
//	6       1     major version (1, 2 or 3)
//	7       1     minor version (0)
//	8       2|4   header length H, little-endian (uint16 in 1.x, uint32 after)
//	10|12   H     header: a Python dict literal, ASCII (UTF-8 in 3.x),
//	              padded with spaces and ending in "\n", e.g.
//	              {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
//	...           data: the elements, C (row-major) order unless
//	              fortran_order, with no trailing bytes
//
// The reader is strict: it parses the dict exactly (the three keys, once
// each, nothing else), bounds the header size, and checks that the data has
// exactly the length the shape says. The writer emits version 1.0 with the
// header padded so the data starts at a multiple of 64 bytes, as NumPy does.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// ErrFormat is wrapped by every error about a file that is not a
// well-formed .npy file.
var ErrFormat = errors.New("npy: malformed file")

// Magic starts every .npy file.
const Magic = "\x93NUMPY"

// maxHeader bounds the header length the reader accepts.
const maxHeader = 1 << 20

// Header is the metadata of a .npy file.
type Header struct {
	Descr   string // dtype string, such as "<f4" (little-endian float32)
	Fortran bool   // data in column-major order
	Shape   []int  // dimensions; empty for a scalar
}

// Len returns the number of elements, and false if it overflows int.
func (h Header) Len() (int, bool) {
	n := 1
	for _, d := range h.Shape {
		if d < 0 || d > 0 && n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// ShapeString formats the shape as NumPy prints it: "(3, 4)", "(5,)", "()".
func (h Header) ShapeString() string { return shapeString(h.Shape) }

func shapeString(shape []int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i, d := range shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		b.WriteByte(',')
	}
	b.WriteByte(')')
	return b.String()
}

// Reader reads one .npy file: the header on NewReader, the data on demand.
// It is not safe for concurrent use.
type Reader struct {
	r      *bufio.Reader
	Header Header
	// DataOffset is the byte offset of the data in the file.
	DataOffset int64
}

// ElemSize returns the bytes per element of the header's dtype, or 0 for
// a dtype this package does not read.
func (h Header) ElemSize() int {
	if n, ok := floatSize(h.Descr); ok {
		return n
	}
	if t, ok := intSizes[h.Descr]; ok {
		return t.size
	}
	return 0
}

// CheckFileSize checks, before anything sized by the shape is allocated,
// that a file of fileSize bytes holds exactly the data the header
// describes: a header claiming a shape of (2^63-1, 2^63-1, 3) in a small
// file is refused here instead of overflowing a multiplication later.
func (r *Reader) CheckFileSize(fileSize int64) error {
	n, ok := r.Header.Len()
	size := r.Header.ElemSize()
	if size == 0 {
		return fmt.Errorf("%w: unsupported dtype %s", ErrFormat, quoteShort(r.Header.Descr))
	}
	if !ok || int64(n) > (math.MaxInt64-r.DataOffset)/int64(size) {
		return fmt.Errorf("%w: shape %s overflows", ErrFormat, r.Header.ShapeString())
	}
	if want := r.DataOffset + int64(n)*int64(size); want != fileSize {
		return fmt.Errorf("%w: shape %s of %s needs %d bytes of data, the file has %d", ErrFormat, r.Header.ShapeString(), quoteShort(r.Header.Descr), want-r.DataOffset, fileSize-r.DataOffset)
	}
	return nil
}

// NewReader reads and parses the header of the .npy file r.
func NewReader(r io.Reader) (*Reader, error) {
	br := bufio.NewReader(r)
	var pre [8]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return nil, fmt.Errorf("%w: reading magic: %v", ErrFormat, err)
	}
	if string(pre[:6]) != Magic {
		return nil, fmt.Errorf("%w: not a .npy file (bad magic %q)", ErrFormat, pre[:6])
	}
	major, minor := pre[6], pre[7]
	var hlen int
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("%w: reading header length: %v", ErrFormat, err)
		}
		hlen = int(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, fmt.Errorf("%w: reading header length: %v", ErrFormat, err)
		}
		hlen = int(binary.LittleEndian.Uint32(b[:]))
	default:
		return nil, fmt.Errorf("%w: unsupported version %d.%d", ErrFormat, major, minor)
	}
	if hlen > maxHeader {
		return nil, fmt.Errorf("%w: header of %d bytes exceeds %d", ErrFormat, hlen, maxHeader)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: reading %d-byte header: %v", ErrFormat, hlen, err)
	}
	h, err := parseHeader(string(hdr))
	if err != nil {
		return nil, err
	}
	off := int64(10 + hlen)
	if major != 1 {
		off += 2
	}
	return &Reader{r: br, Header: h, DataOffset: off}, nil
}

// ReadFloat32 reads the data as little-endian float32 ('<f4') in file
// order, refusing another dtype, more than maxElems elements (0: no limit),
// a short file and trailing bytes. It does not reorder Fortran-order data:
// check Header.Fortran first.
func (r *Reader) ReadFloat32(maxElems int) ([]float32, error) {
	if r.Header.Descr != "<f4" {
		return nil, fmt.Errorf("%w: dtype %s, want '<f4' (little-endian float32)", ErrFormat, quoteShort(r.Header.Descr))
	}
	n, ok := r.Header.Len()
	if !ok || maxElems > 0 && n > maxElems {
		return nil, fmt.Errorf("%w: shape %s is too large", ErrFormat, r.Header.ShapeString())
	}
	out := make([]float32, n)
	var buf [4096]byte
	for i := 0; i < n; {
		k := min(n-i, len(buf)/4)
		if got, err := io.ReadFull(r.r, buf[:4*k]); err != nil {
			return nil, fmt.Errorf("%w: data ends after %d of %d elements", ErrFormat, i+got/4, n)
		}
		for j := 0; j < k; j++ {
			out[i+j] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*j:]))
		}
		i += k
	}
	if _, err := r.r.ReadByte(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing bytes after %d elements of shape %s", ErrFormat, n, r.Header.ShapeString())
	}
	return out, nil
}

// WriteFloat32 writes data as a version 1.0 .npy file of dtype '<f4', C
// order, with the given shape; len(data) must equal the product of shape.
func WriteFloat32(w io.Writer, shape []int, data []float32) error {
	h := Header{Descr: "<f4", Shape: shape}
	if n, ok := h.Len(); !ok || n != len(data) {
		return fmt.Errorf("npy: %d values do not fill shape %s", len(data), shapeString(shape))
	}
	bw := bufio.NewWriter(w)
	if err := WriteHeader(bw, "<f4", shape); err != nil {
		return err
	}
	var b [4]byte
	for _, v := range data {
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
		bw.Write(b[:])
	}
	return bw.Flush()
}

// WriteHeader writes the version 1.0 header of a C-order array of dtype
// descr (such as '<f4', '<f2', '<i8') and the given shape; the caller writes
// the little-endian data after it.
func WriteHeader(w io.Writer, descr string, shape []int) error {
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shapeString(shape))
	// Pad with spaces so that magic+version+length+header is a multiple of
	// 64, the header ending in "\n".
	total := len(Magic) + 2 + 2 + len(dict) + 1
	pad := (64 - total%64) % 64
	if len(dict)+pad+1 > math.MaxUint16 {
		return fmt.Errorf("npy: header too long for version 1.0")
	}
	var b bytes.Buffer
	b.WriteString(Magic)
	b.Write([]byte{1, 0})
	var l [2]byte
	binary.LittleEndian.PutUint16(l[:], uint16(len(dict)+pad+1))
	b.Write(l[:])
	b.WriteString(dict)
	b.WriteString(strings.Repeat(" ", pad))
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// parseHeader parses the header dict strictly.
func parseHeader(s string) (Header, error) {
	p := &dictParser{s: strings.TrimRight(s, " \t\n\x00")}
	var h Header
	seen := map[string]bool{}
	fail := func(msg string) (Header, error) {
		return Header{}, fmt.Errorf("%w: header %s: %s", ErrFormat, quoteShort(s), msg)
	}
	if !p.eat('{') {
		return fail("does not start with '{'")
	}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		key, ok := p.str()
		if !ok {
			return fail("expected a quoted key")
		}
		if seen[key] {
			return fail("duplicate key " + quoteShort(key))
		}
		seen[key] = true
		p.space()
		if !p.eat(':') {
			return fail("expected ':' after key " + quoteShort(key))
		}
		p.space()
		switch key {
		case "descr":
			v, ok := p.str()
			if !ok {
				return fail("descr is not a string (structured dtypes are not supported)")
			}
			h.Descr = v
		case "fortran_order":
			switch {
			case p.word("True"):
				h.Fortran = true
			case p.word("False"):
				h.Fortran = false
			default:
				return fail("fortran_order is not True or False")
			}
		case "shape":
			shape, ok := p.tuple()
			if !ok {
				return fail("shape is not a tuple of at most 64 non-negative integers")
			}
			h.Shape = shape
		default:
			return fail("unknown key " + quoteShort(key))
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if !p.eat('}') {
			return fail("expected ',' or '}'")
		}
		break
	}
	if p.space(); p.i != len(p.s) {
		return fail("text after the dict")
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return fail("missing key " + k)
		}
	}
	return h, nil
}

type dictParser struct {
	s string
	i int
}

func (p *dictParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *dictParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *dictParser) word(w string) bool {
	if strings.HasPrefix(p.s[p.i:], w) {
		p.i += len(w)
		return true
	}
	return false
}

// str parses a Python string literal in single or double quotes without
// escapes (dtype strings and the three keys need none).
func (p *dictParser) str() (string, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '\'' && p.s[p.i] != '"' {
		return "", false
	}
	q := p.s[p.i]
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", false
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.ContainsRune(v, '\\') {
		return "", false
	}
	p.i += end + 2
	return v, true
}

// maxDims bounds a shape's length, as NumPy does (NPY_MAXDIMS is 64 in
// NumPy 2): error messages print the shape, and a header of a million
// dimensions would make them megabytes long.
const maxDims = 64

// quoteShort quotes s for an error message, cut to its first 64 bytes with
// its length when longer: a 1 MiB header must not come back whole in an
// error.
func quoteShort(s string) string {
	const keep = 64
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s… (%d bytes)", strconv.Quote(strings.ToValidUTF8(s[:keep], "")), len(s))
}

// tuple parses "()", "(5,)", "(3, 4)" or "(3, 4,)", of at most maxDims
// dimensions.
func (p *dictParser) tuple() ([]int, bool) {
	if !p.eat('(') {
		return nil, false
	}
	shape := []int{}
	for {
		p.space()
		if p.eat(')') {
			return shape, true
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		v, err := strconv.Atoi(p.s[start:p.i])
		if err != nil {
			return nil, false
		}
		if len(shape) == maxDims {
			return nil, false
		}
		shape = append(shape, v)
		p.space()
		if p.eat(',') {
			continue
		}
		if p.eat(')') {
			// Python writes a one-element tuple "(5,)"; "(5)" is just 5.
			return shape, len(shape) != 1
		}
		return nil, false
	}
}
