package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/bench"
	"github.com/wpcdb/wpcdb/internal/raceflag"
)

// readReport parses DIR/report.json and checks the shape every consumer
// relies on: each run has a method, params, and numbers for threads,
// recall_at_k, qps and p99_ms, and exactly one run is "exact".
func readReport(t *testing.T, dir string) map[string]any {
	t.Helper()
	js, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(js, &rep); err != nil {
		t.Fatal(err)
	}
	runs, ok := rep["runs"].([]any)
	if !ok || len(runs) < 2 {
		t.Fatalf("runs: %v", rep["runs"])
	}
	exact := 0
	for _, r := range runs {
		run := r.(map[string]any)
		if _, ok := run["method"].(string); !ok {
			t.Errorf("run without a method: %v", run)
		}
		if _, ok := run["params"].(map[string]any); !ok {
			t.Errorf("run without params: %v", run)
		}
		for _, k := range []string{"threads", "recall_at_k", "qps", "p99_ms"} {
			if v, ok := run[k].(float64); !ok || v < 0 || (k != "recall_at_k" && v == 0) {
				t.Errorf("run %v: %s = %v, want a positive number", run["method"], k, run[k])
			}
		}
		if rec := run["recall_at_k"].(float64); rec > 1 {
			t.Errorf("recall %v > 1", rec)
		}
		if run["method"] == "exact" {
			exact++
		}
	}
	if exact != 1 {
		t.Errorf("%d exact runs", exact)
	}
	for _, f := range []string{"report.md", "recall_qps.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	return rep
}

// runsByDepth maps "exact" and "wpcdb/<candidates>" to runs.
func runsByDepth(rep map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, r := range rep["runs"].([]any) {
		run := r.(map[string]any)
		key := run["method"].(string)
		if c, ok := run["params"].(map[string]any)["candidates"]; ok {
			key += "/" + fmt.Sprint(c)
		}
		out[key] = run
	}
	return out
}

func TestBenchFileWorkload(t *testing.T) {
	dir := t.TempDir()
	items, queries := filepath.Join(dir, "items.jsonl"), filepath.Join(dir, "queries.jsonl")
	writeJSONL(t, items, 1, 60, 5, 8)
	writeJSONL(t, queries, 2, 4, 5, 8) // with ids, which a query ignores
	cache := filepath.Join(dir, "cache")
	out := filepath.Join(dir, "out")
	args := []string{"bench", "--workload", "file", "--input", items, "--query-input", queries, "--score", "cosine", "--truth-cache", cache, "--peers=false", "--out", out}

	stdout, stderr, code := runCLI(t, "", args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "ingested 60 items") || !strings.Contains(stderr, "ground truth computed") || !strings.Contains(stderr, "cached in "+cache) {
		t.Fatalf("first run:\nstdout %s\nstderr %s", stdout, stderr)
	}
	rep := readReport(t, out)
	cfg := rep["config"].(map[string]any)
	if rep["workload"] != "file" || cfg["dim"] != 8.0 || cfg["n"] != 60.0 || cfg["queries"] != 4.0 || cfg["score"] != "cosine" || cfg["k"] != 10.0 {
		t.Fatalf("config %v", cfg)
	}
	truth := cfg["truth"].(map[string]any)
	if truth["cached"] != false || !strings.HasPrefix(truth["file"].(string), cache) || truth["threads"].(float64) < 1 {
		t.Fatalf("truth %v", truth)
	}
	runs := runsByDepth(rep)
	exact := runs["exact"]
	if exact["params"].(map[string]any)["timed_queries"] != 4.0 || exact["recall_at_k"] != 1.0 || exact["threads"] != 1.0 {
		t.Fatalf("exact run %v", exact)
	}
	// The default depth (100) exceeds the 60 items: the first stage passes
	// every item and the answer is exact.
	if r := runs["wpcdb/default"]; r == nil || r["recall_at_k"] != 1.0 {
		t.Fatalf("runs %v", runs)
	}
	if _, ok := rep["skipped"].(map[string]any)["python-pipelines"]; !ok {
		t.Errorf("skipped: %v", rep["skipped"])
	}

	// Again: the truth comes from the cache, and the report says so.
	_, stderr, code = runCLI(t, "", args...)
	if code != 0 || !strings.Contains(stderr, "ground truth from the cache") {
		t.Fatalf("second run: %d %s", code, stderr)
	}
	rep = readReport(t, out)
	if c := rep["config"].(map[string]any)["truth"].(map[string]any); c["cached"] != true {
		t.Fatalf("truth %v", c)
	}
	// Another k is another key.
	_, stderr, code = runCLI(t, "", append(args, "--k", "3")...)
	if code != 0 || !strings.Contains(stderr, "ground truth computed") {
		t.Fatalf("k=3: %d %s", code, stderr)
	}
	// No cache.
	_, stderr, code = runCLI(t, "", append(args, "--truth-cache", "none", "--queries", "2")...)
	if code != 0 || !strings.Contains(stderr, "not cached") || readReport(t, out)["config"].(map[string]any)["queries"] != 2.0 {
		t.Fatalf("no cache: %d %s", code, stderr)
	}
}

func TestBenchFileWorkloadErrors(t *testing.T) {
	dir := t.TempDir()
	items, queries := filepath.Join(dir, "items.jsonl"), filepath.Join(dir, "queries.jsonl")
	writeJSONL(t, items, 1, 5, 3, 4)
	writeJSONL(t, queries, 2, 2, 3, 4)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		return p
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--input", items}, 2, "needs --input items.jsonl and --query-input queries.jsonl"},
		{[]string{"--input", filepath.Join(dir, "missing.jsonl"), "--query-input", queries}, 1, "missing.jsonl: no such file or directory"},
		{[]string{"--input", items, "--query-input", write("empty.jsonl", "")}, 1, "empty.jsonl: no queries"},
		{[]string{"--input", write("bad.jsonl", `{"id": "x", "points": [[1, 2, 3, 4]]}`+"\n"+`{"id": "y", "points": [[1, 2, 3, 4]], "weights": [1, 2]}`), "--query-input", queries}, 1, "bad.jsonl line 2: weights: 2 weights for 1 points"},
		{[]string{"--input", items, "--query-input", write("q.jsonl", `{"points": [[1, 2, 3]]}`)}, 1, "q.jsonl line 1: points: dimension 3 does not match the required 4"},
		{[]string{"--input", items, "--query-input", queries, "--kernel", "cubic"}, 1, "cubic"},
	} {
		args := append([]string{"bench", "--workload", "file", "--truth-cache", "none", "--peers=false", "--out", filepath.Join(dir, "out")}, tc.args...)
		stdout, stderr, code := runCLI(t, "", args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) || stdout != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d and %q", tc.args, code, stderr, stdout, tc.code, tc.want)
		}
	}
}

func TestBenchFMNISTWorkload(t *testing.T) {
	if _, err := os.Stat(filepath.Join(bench.FashionMNISTDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	if raceflag.Enabled && testing.Short() {
		// Decoding 70,000 images twice takes ~30 s under the race
		// detector; the truth, search and report paths are covered by
		// TestBenchFileWorkload, the images by bench.TestFMNISTWorkload.
		t.Skip("slow under -race -short")
	}
	dir := t.TempDir()
	for _, repr := range []string{"pixels", "patches"} {
		out := filepath.Join(dir, repr)
		_, stderr, code := runCLI(t, "", "bench", "--workload", "fmnist", "--fmnist-repr", repr, "--n", "150", "--queries", "3", "--truth-cache", filepath.Join(dir, "cache"), "--peers=false", "--out", out)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", repr, code, stderr)
		}
		rep := readReport(t, out)
		cfg := rep["config"].(map[string]any)
		wantKernel, wantDim := "linear", 784.0
		if repr == "patches" {
			wantKernel, wantDim = "gaussian(4)", 51.0
		}
		if rep["workload"] != "fmnist" || cfg["repr"] != repr || cfg["n"] != 150.0 || cfg["queries"] != 3.0 || cfg["kernel"] != wantKernel || cfg["dim"] != wantDim {
			t.Errorf("%s: config %v", repr, cfg)
		}
		if in := rep["ingest"].(map[string]any); in["items"] != 150.0 {
			t.Errorf("%s: ingest %v", repr, in)
		}
		// Depth 400 reranks all 150 items: exact.
		if r := runsByDepth(rep)["wpcdb/400"]; r == nil || r["recall_at_k"] != 1.0 {
			t.Errorf("%s: runs %v", repr, rep["runs"])
		}
	}
	// The two representations have different truths (different keys).
	entries, _ := os.ReadDir(filepath.Join(dir, "cache"))
	if len(entries) != 2 {
		t.Errorf("%d cache files, want 2", len(entries))
	}
}
