package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// stripCRC rewrites a Parquet file without its page checksums (as
// pyarrow writes by default), so that damaged page bytes reach the
// decoders instead of failing the checksum.
func stripCRC(t *testing.T, b []byte) []byte {
	return rewritePages(t, b, nil)
}

// rewritePages rewrites a Parquet file's pages without checksums, each
// page header and body passed through edit if set.
func rewritePages(t *testing.T, b []byte, edit func(h *format.PageHeader, body []byte) []byte) []byte {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)), parquet.SkipPageIndex(true))
	if err != nil {
		t.Fatal(err)
	}
	md := *f.Metadata()
	out := []byte("PAR1")
	proto := new(thrift.CompactProtocol)
	for g := range md.RowGroups {
		rg := &md.RowGroups[g]
		rg.FileOffset = int64(len(out))
		for c := range rg.Columns {
			cc := &rg.Columns[c]
			m := &cc.MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			newStart := int64(len(out))
			m.DictionaryPageOffset, m.DataPageOffset = 0, 0
			for pos := start; pos < start+m.TotalCompressedSize; {
				hlen, err := checkThrift(b[pos:])
				if err != nil {
					t.Fatal(err)
				}
				var h format.PageHeader
				if err := thrift.Unmarshal(proto, b[pos:pos+int64(hlen)], &h); err != nil {
					t.Fatal(err)
				}
				h.CRC = 0
				body := pos + int64(hlen)
				data := b[body : body+int64(h.CompressedPageSize)]
				pos = body + int64(h.CompressedPageSize)
				if edit != nil {
					data = edit(&h, bytes.Clone(data))
				}
				hb, err := thrift.Marshal(proto, &h)
				if err != nil {
					t.Fatal(err)
				}
				if h.Type == format.DictionaryPage {
					m.DictionaryPageOffset = int64(len(out))
				} else if m.DataPageOffset == 0 {
					m.DataPageOffset = int64(len(out))
				}
				out = append(out, hb...)
				out = append(out, data...)
			}
			m.TotalCompressedSize = int64(len(out)) - newStart
			cc.FileOffset = newStart
			cc.OffsetIndexOffset, cc.OffsetIndexLength, cc.ColumnIndexOffset, cc.ColumnIndexLength = 0, 0, 0, 0
		}
	}
	footer, err := thrift.Marshal(proto, &md)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "PAR1"...)
}

type crcRow struct {
	ID      string      `parquet:"id"`
	Points  [][]float32 `parquet:"points,list"`
	Weights []float32   `parquet:"weights,list,optional"`
	Color   *string     `parquet:"color,optional"`
	Tags    []string    `parquet:"tags,list"`
	N       int64       `parquet:"n"`
}

// TestParquetCorruptPages: damaged page bytes without checksums, in each
// codec and page version, are errors or other values, never a panic (the
// decoders' panics are turned into errors by safely) nor an allocation
// beyond the page limits (checkChunkPages).
func TestParquetCorruptPages(t *testing.T) {
	const seed = 11
	rng := rand.New(rand.NewPCG(seed, 3))
	rows := make([]crcRow, 60)
	for i := range rows {
		c := []string{"red", "blue", "green"}[i%3]
		r := crcRow{ID: string(rune('a'+i%26)) + string(rune('a'+i/26)), Color: &c, Tags: []string{c, "x"}, N: int64(i)}
		for range 1 + rng.IntN(4) {
			r.Points = append(r.Points, []float32{float32(rng.NormFloat64()), float32(rng.NormFloat64())})
			r.Weights = append(r.Weights, 1+rng.Float32())
		}
		rows[i] = r
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "x.parquet")
	counts := map[string]int{}
	for _, opt := range []struct {
		name string
		opts []parquet.WriterOption
	}{
		{"plain v2", []parquet.WriterOption{parquet.Compression(&parquet.Uncompressed)}},
		{"snappy v1", []parquet.WriterOption{parquet.Compression(&parquet.Snappy), parquet.DataPageVersion(1)}},
		{"zstd v2", []parquet.WriterOption{parquet.Compression(&parquet.Zstd)}},
		{"gzip v1", []parquet.WriterOption{parquet.Compression(&parquet.Gzip), parquet.DataPageVersion(1)}},
	} {
		var b bytes.Buffer
		w := parquet.NewGenericWriter[crcRow](&b, append(opt.opts, parquet.MaxRowsPerRowGroup(25), parquet.PageBufferSize(512))...)
		if _, err := w.Write(rows); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		clean := stripCRC(t, b.Bytes())
		// The rewritten file reads back whole.
		os.WriteFile(path, clean, 0o644)
		if n, err := readAll(path); err != nil || n != len(rows) {
			t.Fatalf("%s: the file without checksums: %d rows, %v", opt.name, n, err)
		}
		for range 80 {
			d := bytes.Clone(clean)
			// Damage the pages, not the footer (tested elsewhere).
			for range 1 + rng.IntN(3) {
				d[4+rng.IntN(len(d)-200)] ^= byte(1 + rng.IntN(255))
			}
			os.WriteFile(path, d, 0o644)
			_, err := readAll(path)
			switch {
			case err == nil:
				counts["read"]++
			case bytes.Contains([]byte(err.Error()), []byte("corrupt parquet data")):
				counts["decoder panic turned into an error"]++
			default:
				counts["error"]++
			}
		}
	}
	t.Logf("seed %d: %v", seed, counts)
	if counts["error"]+counts["decoder panic turned into an error"] == 0 {
		t.Error("no damaged file refused")
	}
}

// readAll reads every row of path into items (with SkipInvalid), and
// returns how many rows became items or were skipped.
func readAll(path string) (int, error) {
	in, err := OpenParquet(os.Open, path, ParquetColumns{}, 2, 16)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	n := 0
	for b := range in.Batches(context.Background(), 7, true, nil) {
		if b.Err != nil {
			return n, b.Err
		}
		n += len(b.Items) + len(b.Skipped)
	}
	return n, nil
}

// TestParquetClaims: lengths and sizes in a file's metadata that claim
// more than the bytes hold or than the limits allow are refused when the
// file is opened, before the library allocates what they claim.
func TestParquetClaims(t *testing.T) {
	// A footer list of 2^31-1 structs in 7 bytes.
	if _, err := checkThrift([]byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("list of 2147483647 claimed")) {
		t.Errorf("huge list: %v", err)
	}
	// A string of 1 GiB in 8 bytes.
	if _, err := checkThrift([]byte{0x18, 0x80, 0x80, 0x80, 0x80, 0x04, 0, 0}); err == nil || !bytes.Contains([]byte(err.Error()), []byte("string of 1073741824 claimed")) {
		t.Errorf("huge string: %v", err)
	}
	// Lists fitting their bytes but too many to decode (1-byte structs).
	many := append([]byte{0x19, 0xfc}, binary.AppendUvarint(nil, 300_000)...)
	many = append(many, make([]byte, 300_001)...)
	if _, err := checkThrift(many); err == nil || !bytes.Contains([]byte(err.Error()), []byte("MiB would hold")) {
		t.Errorf("too many structs: %v", err)
	}
	var b bytes.Buffer
	w := parquet.NewGenericWriter[crcRow](&b, parquet.Compression(&parquet.Snappy))
	w.Write([]crcRow{{ID: "a", Points: [][]float32{{1, 2}}, N: 1}, {ID: "b", Points: [][]float32{{3, 4}}, N: 2}})
	w.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "x.parquet")
	for _, tc := range []struct {
		name string
		edit func(h *format.PageHeader, body []byte) []byte
		want string
	}{
		{"values", func(h *format.PageHeader, body []byte) []byte {
			if h.DataPageHeaderV2.Valid {
				h.DataPageHeaderV2.V.NumValues = 1 << 30
			}
			return body
		}, "values, want 0 to"},
		{"snappy", func(h *format.PageHeader, body []byte) []byte {
			v := h.DataPageHeaderV2.V
			lv := int(v.RepetitionLevelsByteLength + v.DefinitionLevelsByteLength)
			out := append(body[:lv:lv], binary.AppendUvarint(nil, 1<<31)...)
			_, n := binary.Uvarint(body[lv:])
			out = append(out, body[lv+n:]...)
			h.CompressedPageSize = int32(len(out))
			return out
		}, "SNAPPY data claiming 2147483648 bytes"},
		{"page size", func(h *format.PageHeader, body []byte) []byte {
			h.UncompressedPageSize = MaxParquetPage + 1
			return body
		}, "exceeds"},
		{"beyond chunk", func(h *format.PageHeader, body []byte) []byte {
			h.CompressedPageSize += 1000
			return body
		}, "in a column chunk with"},
	} {
		os.WriteFile(path, rewritePages(t, b.Bytes(), tc.edit), 0o644)
		_, err := OpenParquet(os.Open, path, ParquetColumns{}, 2, 16)
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
