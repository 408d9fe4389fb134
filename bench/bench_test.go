package bench

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestSynthIsDeterministicAndLearnedLooking(t *testing.T) {
	a, b := NewSynth(CompactShape, 3), NewSynth(CompactShape, 3)
	if !reflect.DeepEqual(a.Item(17), b.Item(17)) || !reflect.DeepEqual(a.Query(2, 5), b.Query(2, 5)) {
		t.Fatal("same seed and index must give the same cloud")
	}
	if reflect.DeepEqual(a.Item(17).Cloud, a.Item(18).Cloud) {
		t.Fatal("different items are equal")
	}
	var neg, total int
	var maxW float32
	for i := 0; i < 500; i++ {
		it := a.Item(i)
		if err := it.Cloud.Validate(wpcsim.Limits{Dim: 64, MaxPoints: 16}); err != nil {
			t.Fatal(err)
		}
		for _, w := range it.Cloud.Weights {
			total++
			if w < 0 {
				neg++
			}
			maxW = max(maxW, max(w, -w))
		}
	}
	if f := float64(neg) / float64(total); f < 0.33 || f > 0.5 || maxW < 5 || maxW > 10 {
		t.Errorf("weights do not look learned: %.2f negative, max |w| %v", f, maxW)
	}
}

func TestIngestSmall(t *testing.T) {
	rep, err := Ingest(context.Background(), IngestConfig{
		Dir: filepath.Join(t.TempDir(), "d"), Synth: NewSynth(CompactShape, 1), N: 250, Batch: 100,
		Collection: wpcdb.CollectionConfig{Dim: 64},
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Items != 250 || rep.Points < 250*4 || rep.BytesOnDisk <= 0 || rep.ItemsPerSec <= 0 || rep.Threads < 1 {
		t.Errorf("report: %+v", rep)
	}
}

func TestReportWritesThreeFiles(t *testing.T) {
	dir := t.TempDir()
	r := Report{Workload: "w", Config: map[string]any{"n": 1}, Machine: map[string]any{"cpus": 2},
		Runs: []Measurement{{Method: "exact", Params: map[string]any{"k": 10}, Threads: 1, Recall: 1, QPS: 2, P99Ms: 500},
			{Method: "wpcdb", Params: map[string]any{"candidates": 100}, Threads: 1, Recall: 0.97, QPS: 90, P99Ms: 12}},
		Skipped: map[string]string{"hnswlib": "python3-hnswlib is not installed"}}
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	js, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	var back map[string]any
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	runs := back["runs"].([]any)
	for _, run := range runs {
		m := run.(map[string]any)
		for _, k := range []string{"method", "params", "threads", "recall_at_k", "qps", "p99_ms"} {
			if m[k] == nil {
				t.Errorf("run lacks %s: %v", k, m)
			}
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if !strings.Contains(string(md), "| wpcdb | candidates=100 | 1 | 0.970 | 90.0 | 45.0 |") || !strings.Contains(string(md), "hnswlib: python3-hnswlib is not installed") {
		t.Errorf("report.md:\n%s", md)
	}
	if png, err := os.ReadFile(filepath.Join(dir, "recall_qps.png")); err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("recall_qps.png: %v, %d bytes", err, len(png))
	}
}
