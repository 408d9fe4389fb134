package bench

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/npy"
)

// readNPYFloats reads a float32 .npy file whole.
func readNPYFloats(t *testing.T, path string) ([]int, []float32) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.ReadFloat32(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	return r.Header.Shape, v
}

// TestExportItemsForIngest: the export holds every item's points and
// weights, one item after the other, with their lengths; an export over its
// bound is refused before anything is written.
func TestExportItemsForIngest(t *testing.T) {
	const seed, n = 3, 25
	t.Logf("seed %d", seed)
	s := NewSynth(CompactShape, seed)
	dir := t.TempDir()
	if err := ExportItemsForIngest(dir, s.Source(), n, 1<<20); err != nil {
		t.Fatal(err)
	}
	shape, pts := readNPYFloats(t, filepath.Join(dir, "ingest_points.npy"))
	_, ws := readNPYFloats(t, filepath.Join(dir, "ingest_weights.npy"))
	f, err := os.Open(filepath.Join(dir, "ingest_lengths.npy"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	lens, err := r.ReadInts(n)
	if err != nil {
		t.Fatal(err)
	}
	p := 0
	for i := range n {
		c := s.Item(i).Cloud
		if int(lens[i]) != c.Len() {
			t.Fatalf("item %d: length %d, want %d", i, lens[i], c.Len())
		}
		for j := range c.Len() {
			if ws[p+j] != c.Weights[j] {
				t.Fatalf("item %d point %d: weight %v, want %v", i, j, ws[p+j], c.Weights[j])
			}
		}
		for k, x := range c.Points {
			if pts[p*c.Dim+k] != x {
				t.Fatalf("item %d coordinate %d: %v, want %v", i, k, pts[p*c.Dim+k], x)
			}
		}
		p += c.Len()
	}
	if shape[0] != p || shape[1] != CompactShape.Dim || len(ws) != p {
		t.Fatalf("shape %v and %d weights for %d points", shape, len(ws), p)
	}

	small := t.TempDir()
	err = ExportItemsForIngest(small, s.Source(), n, 1000)
	if !errors.Is(err, errTooBig) || !strings.Contains(err.Error(), "25 items") {
		t.Fatalf("export over its bound: %v", err)
	}
	if names, _ := os.ReadDir(small); len(names) != 0 {
		t.Fatalf("a refused export wrote %v", names)
	}
}

// TestReportPeerIngest: the ingest table lists the peers' ingest with
// wpcdb's ratios to them.
func TestReportPeerIngest(t *testing.T) {
	r := Report{Workload: "compact", Ingest: &IngestReport{Items: 100, ItemsPerSec: 3000, ItemsPerStoreCPUSecond: 4000},
		PeerIngest: []PeerIngest{{Method: "lancedb-ingest-batched", Items: 100, ItemsPerSec: 2000, ItemsPerCPUSecond: 8000}}}
	md := r.Markdown()
	if !strings.Contains(md, "| lancedb-ingest-batched |") || !strings.Contains(md, "| 1.50 | 0.50 |") {
		t.Fatalf("report:\n%s", md)
	}
}
