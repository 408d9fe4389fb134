package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// The checks of a Parquet file's own structures before the library
// decodes them. Parquet's metadata (the footer, each page's header) is
// Thrift, whose lists and strings carry their lengths: the library
// allocates what a length claims before reading the elements, so a few
// damaged bytes could ask for gigabytes. checkThrift walks the encoded
// bytes first and refuses a length the bytes cannot hold, and bounds what
// the decoded lists may cost in memory.

// thriftBudget bounds the memory the decoded lists of one footer or page
// header may take: a struct element is counted as structCost bytes (the
// largest metadata struct, format.ColumnChunk, is 560 bytes in Go), any
// other element as 24. 256 MiB holds the footer of a file with 200k
// column chunks (e.g. 1,000 row groups of 200 columns).
const (
	thriftBudget   = 256 << 20
	structCost     = 1024
	maxThriftDepth = 64
)

var errThriftShort = errors.New("truncated metadata")

// checkThrift checks that b begins with one well-formed Thrift compact
// struct whose lengths fit in b and whose lists fit the budget, and
// returns its encoded length.
func checkThrift(b []byte) (int, error) {
	w := thriftWalker{b: b, budget: thriftBudget}
	if err := w.value(12, 0); err != nil {
		return 0, err
	}
	return w.i, nil
}

type thriftWalker struct {
	b      []byte
	i      int
	budget int64
}

func (w *thriftWalker) byte() (byte, error) {
	if w.i >= len(w.b) {
		return 0, errThriftShort
	}
	w.i++
	return w.b[w.i-1], nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.i:])
	if n == 0 {
		return 0, errThriftShort
	}
	if n < 0 {
		return 0, errors.New("corrupt metadata: a varint overflows")
	}
	w.i += n
	return v, nil
}

// length reads a length that the remaining bytes, at least minEach a
// unit, must hold.
func (w *thriftWalker) length(what string, minEach int) (int, error) {
	v, err := w.uvarint()
	if err != nil {
		return 0, err
	}
	if v > uint64(len(w.b)-w.i)/uint64(minEach) {
		return 0, fmt.Errorf("corrupt metadata: a %s of %d claimed with %d bytes left", what, v, len(w.b)-w.i)
	}
	return int(v), nil
}

func (w *thriftWalker) skip(n int) error {
	if n > len(w.b)-w.i {
		return errThriftShort
	}
	w.i += n
	return nil
}

// value skips one value of compact type t.
func (w *thriftWalker) value(t byte, depth int) error {
	if depth > maxThriftDepth {
		return errors.New("corrupt metadata: nested too deep")
	}
	switch t {
	case 1, 2: // a boolean as a field: its value is the type
		return nil
	case 3:
		return w.skip(1)
	case 4, 5, 6:
		_, err := w.uvarint()
		return err
	case 7:
		return w.skip(8)
	case 8:
		n, err := w.length("string", 1)
		if err != nil {
			return err
		}
		return w.skip(n)
	case 9, 10:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n, et := int(h>>4), h&0x0f
		if n == 15 {
			if n, err = w.length("list", 1); err != nil {
				return err
			}
		} else if n > len(w.b)-w.i {
			return errThriftShort
		}
		if err := w.spend(n, et); err != nil {
			return err
		}
		for range n {
			if et == 1 || et == 2 { // a boolean element is one byte
				if err := w.skip(1); err != nil {
					return err
				}
				continue
			}
			if err := w.value(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 11:
		n, err := w.length("map", 2)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if err := w.spend(2*n, 0); err != nil {
			return err
		}
		for range n {
			for _, et := range []byte{kv >> 4, kv & 0x0f} {
				if et == 1 || et == 2 {
					if err := w.skip(1); err != nil {
						return err
					}
				} else if err := w.value(et, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	case 12:
		for {
			h, err := w.byte()
			if err != nil {
				return err
			}
			if h == 0 {
				return nil
			}
			if h>>4 == 0 { // a field ID as a zigzag varint
				if _, err := w.uvarint(); err != nil {
					return err
				}
			}
			if err := w.value(h&0x0f, depth+1); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("corrupt metadata: type %d", t)
}

func (w *thriftWalker) spend(n int, et byte) error {
	cost := int64(24)
	if et == 12 {
		cost = structCost
	}
	w.budget -= int64(n) * cost
	if w.budget < 0 {
		return fmt.Errorf("metadata lists more than %d MiB would hold", thriftBudget>>20)
	}
	return nil
}

// checkParquetFooter checks the file's trailer and footer (checkThrift)
// before the library reads them.
func checkParquetFooter(f *os.File, size int64) error {
	if size < 12 {
		return fmt.Errorf("%d bytes is too short for a parquet file", size)
	}
	var tail [8]byte
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return err
	}
	if string(tail[4:]) != "PAR1" {
		if string(tail[4:]) == "PARE" {
			return errors.New("an encrypted parquet file, which wpcdb does not read")
		}
		return fmt.Errorf("not a parquet file (it ends with %q, not \"PAR1\")", tail[4:])
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	if n > size-12 {
		return fmt.Errorf("a footer of %d bytes claimed in a file of %d: corrupt file", n, size)
	}
	if n > MaxParquetFooter {
		return fmt.Errorf("a footer of %d bytes exceeds %d", n, MaxParquetFooter)
	}
	footer := make([]byte, n)
	if _, err := f.ReadAt(footer, size-8-n); err != nil {
		return err
	}
	used, err := checkThrift(footer)
	if err != nil {
		return fmt.Errorf("footer: %w", err)
	}
	if used != len(footer) {
		return fmt.Errorf("footer: %d bytes after the metadata: corrupt file", len(footer)-used)
	}
	return nil
}

// checkChunkPages walks the page headers of one column chunk: each must
// be well formed (checkThrift), its page inside the chunk and at most
// MaxParquetPage bytes compressed and uncompressed, with at most
// MaxParquetPageValues values (the library sizes its level arrays by the
// claim) and no more in all than the chunk's metadata says, and a snappy
// page or a zstd page's first frame must not claim to decode to more than
// its header says (the codecs allocate what the stream claims; a zstd
// page of several frames has its later frames' claims bounded by the
// codec alone, at 32 KiB a compressed byte).
func checkChunkPages(f io.ReaderAt, size int64, md *format.ColumnMetaData) error {
	start := md.DataPageOffset
	if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
		start = md.DictionaryPageOffset
	}
	if start < 4 || md.TotalCompressedSize < 0 || start > size || md.TotalCompressedSize > size-start {
		return fmt.Errorf("pages at [%d, +%d) outside the file's %d bytes: corrupt metadata", start, md.TotalCompressedSize, size)
	}
	if md.NumValues < 0 {
		return fmt.Errorf("%d values: corrupt metadata", md.NumValues)
	}
	end := start + md.TotalCompressedSize
	buf := make([]byte, 0, 4<<10)
	var values int64
	for pos := start; pos < end; {
		// A header is small; read more only when it does not fit.
		var hlen int
		for want := int64(4 << 10); ; want *= 4 {
			n := min(want, end-pos)
			if int64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			buf = buf[:n]
			if _, err := f.ReadAt(buf, pos); err != nil {
				return fmt.Errorf("page at %d: %w", pos, err)
			}
			var err error
			hlen, err = checkThrift(buf)
			if err == nil {
				break
			}
			if err != errThriftShort || n == end-pos || want >= 16<<20 {
				return fmt.Errorf("page header at %d: %w", pos, err)
			}
		}
		var h format.PageHeader
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), buf[:hlen], &h); err != nil {
			return fmt.Errorf("page header at %d: %w", pos, err)
		}
		body := int64(h.CompressedPageSize)
		if h.CompressedPageSize < 0 || h.UncompressedPageSize < 0 || body > end-pos-int64(hlen) {
			return fmt.Errorf("page at %d: %d bytes (%d uncompressed) in a column chunk with %d left: corrupt file", pos, h.CompressedPageSize, h.UncompressedPageSize, end-pos-int64(hlen))
		}
		if body > MaxParquetPage || int64(h.UncompressedPageSize) > MaxParquetPage {
			return fmt.Errorf("page at %d: %d bytes (%d uncompressed) exceeds %d", pos, h.CompressedPageSize, h.UncompressedPageSize, MaxParquetPage)
		}
		var nv int64
		switch {
		case h.DataPageHeader.Valid:
			nv = int64(h.DataPageHeader.V.NumValues)
		case h.DataPageHeaderV2.Valid:
			nv = int64(max(h.DataPageHeaderV2.V.NumValues, h.DataPageHeaderV2.V.NumRows))
		case h.DictionaryPageHeader.Valid:
			nv = int64(h.DictionaryPageHeader.V.NumValues)
		}
		if nv < 0 || nv > MaxParquetPageValues {
			return fmt.Errorf("page at %d: %d values, want 0 to %d", pos, nv, MaxParquetPageValues)
		}
		if h.Type != format.DictionaryPage {
			if values += nv; values > md.NumValues {
				return fmt.Errorf("page at %d: more values than the column chunk's %d: corrupt file", pos, md.NumValues)
			}
		}
		if (md.Codec == format.Snappy || md.Codec == format.Zstd) && body > 0 {
			skip := int64(0) // a v2 page's levels come uncompressed first
			if h.DataPageHeaderV2.Valid {
				v := h.DataPageHeaderV2.V
				skip = int64(v.RepetitionLevelsByteLength) + int64(v.DefinitionLevelsByteLength)
				if v.IsCompressed.Valid && !v.IsCompressed.V {
					skip = body
				}
			}
			if skip < 0 || skip > body {
				return fmt.Errorf("page at %d: levels of %d bytes in a page of %d: corrupt file", pos, skip, body)
			}
			if skip < body {
				var head [18]byte
				m := min(int64(len(head)), body-skip)
				if _, err := f.ReadAt(head[:m], pos+int64(hlen)+skip); err != nil {
					return fmt.Errorf("page at %d: %w", pos, err)
				}
				claim, ok := uint64(0), true
				if md.Codec == format.Snappy {
					var n int
					claim, n = binary.Uvarint(head[:m])
					ok = n > 0
				} else {
					claim, ok = zstdFrameSize(head[:m])
				}
				if !ok || claim > uint64(h.UncompressedPageSize) {
					return fmt.Errorf("page at %d: %s data claiming %d bytes in a page of %d uncompressed: corrupt file", pos, md.Codec, claim, h.UncompressedPageSize)
				}
			}
		}
		pos += int64(hlen) + body
	}
	return nil
}

// zstdFrameSize reads the content size a zstd frame header declares (0
// when it declares none), or false when b does not start a zstd frame.
func zstdFrameSize(b []byte) (uint64, bool) {
	if len(b) < 5 || binary.LittleEndian.Uint32(b) != 0xFD2FB528 {
		return 0, false
	}
	fhd := b[4]
	single := fhd&0x20 != 0
	i := 5
	if !single {
		i++ // the window descriptor
	}
	i += []int{0, 1, 2, 4}[fhd&3] // the dictionary ID
	size := []int{0, 2, 4, 8}[fhd>>6]
	if size == 0 && single {
		size = 1
	}
	if i+size > len(b) {
		return 0, false
	}
	var v uint64
	for k := size - 1; k >= 0; k-- {
		v = v<<8 | uint64(b[i+k])
	}
	if size == 2 {
		v += 256
	}
	return v, true
}
