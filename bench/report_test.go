package bench

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEqualRecallRatios(t *testing.T) {
	exact := Measurement{Method: "exact", Recall: 1, QPS: 2}
	w := func(r, qps float64) Measurement {
		return Measurement{Method: "wpcdb", Recall: r, QPS: qps, Params: map[string]any{"q": qps}}
	}
	p := func(m string, r, qps float64) Measurement {
		return Measurement{Method: m, Recall: r, QPS: qps, Peer: true}
	}
	type want struct {
		reached bool
		qps     float64 // the chosen wpcdb run's q/s
		ratio   float64
	}
	for _, tc := range []struct {
		name string
		runs []Measurement
		want []want
	}{
		{"fastest run reaching the recall", []Measurement{exact, w(0.90, 100), w(0.97, 60), w(0.99, 40), p("hnswlib", 0.95, 30)}, []want{{true, 60, 2}}},
		{"equal recall counts", []Measurement{w(0.95, 50), w(1, 10), p("usearch", 0.95, 100)}, []want{{true, 50, 0.5}}},
		{"slower than the peer gives a ratio below 1", []Measurement{w(1, 20), p("faiss", 1, 80)}, []want{{true, 20, 0.25}}},
		{"the exact scan is not a contender", []Measurement{exact, w(0.9, 100), p("lancedb", 0.99, 5)}, []want{{false, 0, 0}}},
		{"another peer is not a contender", []Measurement{w(0.5, 100), p("a", 0.9, 5), p("b", 0.95, 500)}, []want{{false, 0, 0}, {false, 0, 0}}},
		{"one row per peer run, in order", []Measurement{p("a", 0.8, 10), w(0.85, 40), p("b", 0.85, 20)}, []want{{true, 40, 4}, {true, 40, 2}}},
		{"no peers", []Measurement{exact, w(1, 3)}, nil},
		{"float noise in recall", []Measurement{w(0.7, 30), p("a", 0.7000000000000001, 10)}, []want{{true, 30, 3}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EqualRecallRatios(tc.runs)
			if len(got) != len(tc.want) {
				t.Fatalf("%d ratios, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, g := range got {
				wt := tc.want[i]
				if g.Reached != wt.reached || g.WPCDBQPS != wt.qps || math.Abs(g.QPSRatio-wt.ratio) > 1e-12 {
					t.Errorf("ratio %d = %+v, want reached %v at %v q/s, ratio %v", i, g, wt.reached, wt.qps, wt.ratio)
				}
			}
		})
	}
}

func TestReportShowsRatios(t *testing.T) {
	dir := t.TempDir()
	r := Report{Workload: "w", Runs: []Measurement{
		{Method: "exact", Recall: 1, QPS: 2, Threads: 1},
		{Method: "wpcdb", Params: map[string]any{"candidates": 50}, Recall: 0.98, QPS: 90, Threads: 1},
		{Method: "hnswlib-phi+numpy", Params: map[string]any{"candidates": 50}, Recall: 0.97, QPS: 30, Threads: 1, Peer: true},
		{Method: "usearch-phi", Params: map[string]any{"ef": 16}, Recall: 0.99, QPS: 5000, Threads: 1, Peer: true},
	}}
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{
		"| hnswlib-phi+numpy | candidates=50 | 0.970 | 30.0 | candidates=50 | 0.980 | 90.0 | 3.00× |",
		"| usearch-phi | ef=16 | 0.990 | 5000.0 | no wpcdb run reaches this recall |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
	js, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if !strings.Contains(string(js), `"qps_ratio": 3`) || !strings.Contains(string(js), `"reached": false`) {
		t.Errorf("report.json lacks the ratios:\n%s", js)
	}
}

// TestReportSlowPeerAndNotes: a peer slower than a query a second keeps
// its q/s readable (not 0.0) in both tables, the ratio against it is
// computed, and notes are rendered.
func TestReportSlowPeerAndNotes(t *testing.T) {
	dir := t.TempDir()
	r := Report{Workload: "w", Notes: []string{"the machine was shared"}, Runs: []Measurement{
		{Method: "exact", Recall: 1, QPS: 0.25, Threads: 1},
		{Method: "wpcdb", Params: map[string]any{"candidates": 100}, Recall: 1, QPS: 20, Threads: 1},
		{Method: "lancedb-flat", Params: map[string]any{"timed_queries": 3}, Recall: 1, QPS: 0.00822, Threads: 1, Peer: true},
	}}
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{
		"## Notes\n\n- the machine was shared\n",
		"| lancedb-flat | timed_queries=3 | 1 | 1.000 | 0.00822 | 0.0329 |",
		"| lancedb-flat | timed_queries=3 | 1.000 | 0.00822 | candidates=100 | 1.000 | 20.0 | 2433.09× |",
		"| exact |  | 1 | 1.000 | 0.25 | 1.0 |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q:\n%s", want, md)
		}
	}
}
