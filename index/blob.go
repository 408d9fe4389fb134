package index

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

// BlobStreamer is a Persister that also streams blobs, so that saving or
// loading a large index never holds a whole blob in memory (a graph of
// 100k vectors is hundreds of megabytes). storage implements it; the
// indexes fall back to PutBlob and GetBlob for a Persister without it.
type BlobStreamer interface {
	Persister
	// CreateBlob returns a writer of the blob name; the blob is complete
	// when the writer is closed without error.
	CreateBlob(name string) (io.WriteCloser, error)
	// OpenBlob returns a reader of the blob name and its size in bytes;
	// (nil, 0, nil) when absent. Read errors wrap ErrCorrupt when the
	// stored bytes are damaged.
	OpenBlob(name string) (io.ReadCloser, int64, error)
}

// createBlob opens a blob for writing through p.
func createBlob(p Persister, name string) (io.WriteCloser, error) {
	if s, ok := p.(BlobStreamer); ok {
		return s.CreateBlob(name)
	}
	return &bufferedBlob{p: p, name: name}, nil
}

// bufferedBlob collects a blob for a Persister that cannot stream.
type bufferedBlob struct {
	bytes.Buffer
	p    Persister
	name string
}

func (b *bufferedBlob) Close() error { return b.p.PutBlob(b.name, b.Bytes()) }

// openBlob opens a blob for reading through p; (nil, 0, nil) when absent.
func openBlob(p Persister, name string) (io.ReadCloser, int64, error) {
	if s, ok := p.(BlobStreamer); ok {
		return s.OpenBlob(name)
	}
	b, err := p.GetBlob(name)
	if err != nil || b == nil {
		return nil, 0, err
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blobWriter encodes little-endian fields into a blob through a buffer,
// keeping the CRC-32C of everything written; finish appends it. The first
// error sticks.
type blobWriter struct {
	w       *bufio.Writer
	crc     uint32
	scratch []byte
	err     error
}

func newBlobWriter(w io.Writer) *blobWriter {
	return &blobWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

func (w *blobWriter) write(p []byte) {
	if w.err != nil {
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, p)
	_, w.err = w.w.Write(p)
}

func (w *blobWriter) u8(v uint8) { w.write([]byte{v}) }
func (w *blobWriter) u16(v uint16) {
	w.scratch = binary.LittleEndian.AppendUint16(w.scratch[:0], v)
	w.write(w.scratch)
}
func (w *blobWriter) u32(v uint32) {
	w.scratch = binary.LittleEndian.AppendUint32(w.scratch[:0], v)
	w.write(w.scratch)
}
func (w *blobWriter) u64(v uint64) {
	w.scratch = binary.LittleEndian.AppendUint64(w.scratch[:0], v)
	w.write(w.scratch)
}

// f32s writes values as little-endian float32 in one piece.
func (w *blobWriter) f32s(v []float32) {
	b := w.scratch[:0]
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	w.scratch = b
	w.write(b)
}

// u32s writes values as little-endian uint32 in one piece.
func (w *blobWriter) u32s(v []uint32) {
	b := w.scratch[:0]
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, x)
	}
	w.scratch = b
	w.write(b)
}

// finish writes the CRC-32C of everything before it and flushes.
func (w *blobWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	_, w.err = w.w.Write(binary.LittleEndian.AppendUint32(nil, w.crc))
	if w.err == nil {
		w.err = w.w.Flush()
	}
	return w.err
}

// writeBlob writes the blob name through p with fn, then the checksum.
func writeBlob(p Persister, name string, fn func(w *blobWriter)) error {
	out, err := createBlob(p, name)
	if err != nil {
		return err
	}
	w := newBlobWriter(out)
	fn(w)
	if err := w.finish(); err != nil {
		return err
	}
	return out.Close()
}

// reader decodes little-endian fields from a blob body of known length,
// keeping the CRC-32C of what it read and remembering the first error: a
// short body wraps ErrCorrupt, as does a read error that wraps it.
type reader struct {
	r       io.Reader
	what    string // "hnsw", "flat": for messages
	left    int64  // body bytes not read yet
	off     int64
	crc     uint32
	scratch []byte
	err     error
}

func newReader(r io.Reader, what string, body int64) *reader {
	return &reader{r: r, what: what, left: body}
}

// take returns the next n bytes, valid until the next call.
func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || int64(n) > r.left {
		r.err = fmt.Errorf("%w: %s blob truncated at byte %d (want %d more)", ErrCorrupt, r.what, r.off, n)
		return nil
	}
	if cap(r.scratch) < n {
		r.scratch = make([]byte, n)
	}
	p := r.scratch[:n]
	if _, err := io.ReadFull(r.r, p); err != nil {
		r.err = readErr(r.what, err)
		return nil
	}
	r.crc = crc32.Update(r.crc, castagnoli, p)
	r.off += int64(n)
	r.left -= int64(n)
	return p
}

func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %s blob shorter than its recorded size", ErrCorrupt, what)
	}
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return fmt.Errorf("%w: reading the %s blob: %w", ErrCorrupt, what, err)
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

// checkTrailer reads the CRC-32C that follows the body and compares it
// with the body's.
func (r *reader) checkTrailer() error {
	if r.err != nil {
		return r.err
	}
	if r.left != 0 {
		return fmt.Errorf("%w: %s: %d bytes after the last record", ErrCorrupt, r.what, r.left)
	}
	var b [4]byte
	if _, err := io.ReadFull(r.r, b[:]); err != nil {
		return readErr(r.what, err)
	}
	if want := binary.LittleEndian.Uint32(b[:]); r.crc != want {
		return fmt.Errorf("%w: %s checksum %08x, want %08x", ErrCorrupt, r.what, r.crc, want)
	}
	return nil
}

// readBlob opens the blob name through p and decodes it with fn, which
// reads the body (everything but the trailing checksum); the checksum is
// checked after. ok is false when no such blob is saved.
func readBlob(p Persister, name string, fn func(r *reader) error) (ok bool, err error) {
	in, size, err := openBlob(p, name)
	if err != nil || in == nil {
		return false, err
	}
	defer in.Close()
	if size < 4 {
		return true, fmt.Errorf("%w: %s blob of %d bytes", ErrCorrupt, name, size)
	}
	if _, ok := p.(BlobStreamer); !ok {
		// A blob in memory is checked whole before it is parsed; a streamed
		// one page by page by its BlobStreamer, and whole at the end.
		b, _ := p.GetBlob(name)
		if got, want := crc32.Checksum(b[:len(b)-4], castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
			return true, fmt.Errorf("%w: %s checksum %08x, want %08x", ErrCorrupt, name, got, want)
		}
	}
	r := newReader(bufio.NewReaderSize(in, 64<<10), name, size-4)
	if err := fn(r); err != nil {
		return true, err
	}
	return true, r.checkTrailer()
}
