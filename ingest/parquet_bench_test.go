package ingest_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/ingest"
	"github.com/wpcdb/wpcdb/internal/npy"
)

// BenchmarkReaders reads the compact workload's first n items (4–16
// points × 64, seed 1) from padded NumPy files and from a snappy Parquet
// file of 10,000-row groups, without committing them: the readers' own
// cost an item (wall and CPU: the machine is shared). The README's
// figures come from n = 100,000:
//
//	WPCDB_READER_N=100000 go test ./ingest -run - -bench Readers -benchtime 2x
func BenchmarkReaders(b *testing.B) {
	n := envItems("WPCDB_READER_N")
	const m, d = 16, 64
	dir := b.TempDir()
	files := ingest.NPYFiles{Points: filepath.Join(dir, "P.npy"), Weights: filepath.Join(dir, "W.npy"), Lengths: filepath.Join(dir, "L.npy"), IDs: filepath.Join(dir, "ids.txt")}
	pqPath := filepath.Join(dir, "in.parquet")
	type row struct {
		ID      string      `parquet:"id"`
		Points  [][]float32 `parquet:"points,list"`
		Weights []float32   `parquet:"weights,list"`
	}
	create := func(path string) (*os.File, *bufio.Writer) {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		return f, bufio.NewWriter(f)
	}
	pf, pw := create(files.Points)
	wf, ww := create(files.Weights)
	lf, lw := create(files.Lengths)
	idf, iw := create(files.IDs)
	npy.WriteHeader(pw, "<f4", []int{n, m, d})
	npy.WriteHeader(ww, "<f4", []int{n, m})
	npy.WriteHeader(lw, "<i8", []int{n})
	qf, err := os.Create(pqPath)
	if err != nil {
		b.Fatal(err)
	}
	qw := parquet.NewGenericWriter[row](qf, parquet.MaxRowsPerRowGroup(10_000), parquet.Compression(&parquet.Snappy))
	s := bench.NewSynth(bench.CompactShape, 1)
	pad, wpad := make([]float32, m*d), make([]float32, m)
	for i := range n {
		it := s.Item(i)
		l := len(it.Cloud.Weights)
		clear(pad)
		clear(wpad)
		copy(pad, it.Cloud.Points)
		copy(wpad, it.Cloud.Weights)
		binary.Write(pw, binary.LittleEndian, pad)
		binary.Write(ww, binary.LittleEndian, wpad)
		binary.Write(lw, binary.LittleEndian, int64(l))
		fmt.Fprintln(iw, it.ID)
		r := row{ID: it.ID, Weights: it.Cloud.Weights}
		for k := range l {
			r.Points = append(r.Points, it.Cloud.Points[k*d:(k+1)*d])
		}
		if _, err := qw.Write([]row{r}); err != nil {
			b.Fatal(err)
		}
	}
	for _, w := range []*bufio.Writer{pw, ww, lw, iw} {
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	for _, f := range []*os.File{pf, wf, lf, idf} {
		f.Close()
	}
	if err := qw.Close(); err != nil {
		b.Fatal(err)
	}
	qf.Close()
	drain := func(b *testing.B, ch <-chan ingest.Batch) {
		items := 0
		for batch := range ch {
			if batch.Err != nil {
				b.Fatal(batch.Err)
			}
			items += len(batch.Items)
		}
		if items != n {
			b.Fatalf("%d items, want %d", items, n)
		}
	}
	ctx := context.Background()
	b.Run("npy", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			in, err := ingest.OpenNPY(os.Open, files, d, 1024)
			if err != nil {
				b.Fatal(err)
			}
			drain(b, in.Batches(ctx, 1000, false, nil))
			in.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/item")
	})
	b.Run("parquet", func(b *testing.B) {
		cpu0 := processCPU()
		for b.Loop() {
			in, err := ingest.OpenParquet(os.Open, pqPath, ingest.ParquetColumns{}, d, 1024)
			if err != nil {
				b.Fatal(err)
			}
			drain(b, in.Batches(ctx, 1000, false, nil))
			in.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/item")
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N*n), "cpu-ns/item")
	})
}
