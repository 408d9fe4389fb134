package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// TestMain lets a test re-execute this binary as the wpcdb command:
// WPCDB_CLI_ARGS holds the arguments as a JSON array.
func TestMain(m *testing.M) {
	if js := os.Getenv("WPCDB_CLI_ARGS"); js != "" {
		var args []string
		if err := json.Unmarshal([]byte(js), &args); err != nil {
			panic(err)
		}
		os.Exit(run(context.Background(), args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// writeJSONL writes n learned-looking clouds with IDs and attributes and
// returns the records.
func writeJSONL(t *testing.T, path string, seed uint64, n, m, d int) []cloudjson.Record {
	t.Helper()
	rng := wpctest.NewRand(seed)
	var recs []cloudjson.Record
	var buf []byte
	for i := 0; i < n; i++ {
		c := wpctest.RandomCloud(rng, 1+rng.IntN(m), d, wpctest.Shape{})
		r := cloudjson.Record{ID: fmt.Sprintf("item-%d", i), Cloud: wpcsim.Cloud{Dim: d, Weights: c.Weights, Points: c.Points},
			Attrs: map[string]any{"color": []string{"red", "blue"}[i%2], "n": float64(i)}}
		recs = append(recs, r)
		buf = append(cloudjson.AppendJSON(buf, r), '\n')
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestCollectionIngestGetDelete(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "items.jsonl")
	recs := writeJSONL(t, in, 8, 120, 6, 12)
	if _, stderr, code := runCLI(t, "", "--data", data, "collection", "create", "c", "--dim", "12", "--score", "mmd", "--max-points", "6"); code != 0 {
		t.Fatal(stderr)
	}
	stdout, stderr, code := runCLI(t, "", "ingest", "c", "--input", in, "--batch", "50", "--data", data)
	if code != 0 || !strings.HasPrefix(stdout, "ingested 120 items in ") || !strings.Contains(stdout, "items/s)") {
		t.Fatalf("ingest: %d %q %q", code, stdout, stderr)
	}
	// Re-ingesting is idempotent.
	if _, stderr, code := runCLI(t, "", "--data", data, "ingest", "c", "--input", in); code != 0 {
		t.Fatal(stderr)
	}
	stdout, _, _ = runCLI(t, "", "--data", data, "--json", "collection", "describe", "c")
	var desc map[string]any
	if err := json.Unmarshal([]byte(stdout), &desc); err != nil || desc["count"] != 120.0 || desc["score"] != "mmd" || desc["max_points"] != 6.0 || desc["kernel"] != wpcsim.DefaultKernelSpec {
		t.Fatalf("describe: %v %s", err, stdout)
	}
	// get prints the stored cloud, bit-exact, with or without --json.
	for _, args := range [][]string{{"get", "c", "item-7"}, {"--json", "get", "c", "item-7"}} {
		stdout, stderr, code := runCLI(t, "", append([]string{"--data", data}, args...)...)
		if code != 0 {
			t.Fatal(stderr)
		}
		got, err := cloudjson.Decode([]byte(stdout))
		if err != nil || got.ID != "item-7" || !sameFloats(got.Cloud.Points, recs[7].Cloud.Points) || !sameFloats(got.Cloud.Weights, recs[7].Cloud.Weights) || got.Attrs["n"] != 7.0 {
			t.Fatalf("get: %v %s", err, stdout)
		}
	}
	stdout, _, code = runCLI(t, "", "--data", data, "delete", "c", "item-7", "item-8", "nope")
	if code != 0 || stdout != "deleted 2 of 3\n" {
		t.Errorf("delete: %q", stdout)
	}
	stdout, stderr, code = runCLI(t, "", "--data", data, "get", "c", "item-7")
	if code == 0 || stdout != "" || !strings.Contains(stderr, "not found") {
		t.Errorf("get deleted: %d %q %q", code, stdout, stderr)
	}
	stdout, _, _ = runCLI(t, "", "--data", data, "collection", "list")
	if !strings.Contains(stdout, "c     118") && !strings.Contains(stdout, "118") {
		t.Errorf("list: %q", stdout)
	}
	if _, stderr, code := runCLI(t, "", "--data", data, "collection", "drop", "c"); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := runCLI(t, "", "--data", data, "collection", "describe", "c"); code == 0 || !strings.Contains(stderr, "collection not found") {
		t.Errorf("describe dropped: %q", stderr)
	}
}

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestIngestErrors(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	runCLI(t, "", "--data", data, "collection", "create", "c", "--dim", "2")
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
		return p
	}
	good := func(id string) string { return `{"id":"` + id + `","points":[[1,2]]}` }
	for _, tc := range []struct {
		name    string
		file    string
		extra   []string
		code    int
		stdout  string
		stderr  string
		present []string
		absent  []string
	}{
		{"bad value stops", write("a.jsonl", good("a1"), good("a2"), `{"id":"a3","points":[[1,"x"]]}`, good("a4")), []string{"--batch", "1"},
			1, "", `line 3: cloudjson: malformed cloud: points[0][1]: must be a number; ingest stopped: 2 items committed before this batch`, []string{"a1", "a2"}, []string{"a3", "a4"}},
		{"refused batch writes nothing", write("b.jsonl", good("b1"), good("b2"), `{"id":"b3","points":[[0,0]]}`, good("b4")), []string{"--batch", "2"},
			1, "", `line 3 (id "b3"): points[0]: zero vector cannot be normalized (point normalization is on); batch refused, ingest stopped: 2 items committed before it`, []string{"b1", "b2"}, []string{"b3", "b4"}},
		{"missing id", write("c.jsonl", `{"points":[[1,2]]}`), nil, 1, "", "line 1: id: missing", nil, nil},
		{"skip invalid", write("d.jsonl", good("d1"), `{"id":"d2","points":[[0,0]]}`, `not json`, "", good("d3"), `{"id":"d4","points":[[1]]}`), []string{"--skip-invalid", "--batch", "2"},
			0, "ingested 2 items", "skipped line 3", []string{"d1", "d3"}, []string{"d2", "d4"}},
		{"last one wins", write("e.jsonl", `{"id":"e","points":[[1,2]],"attrs":{"v":1}}`, `{"id":"e","points":[[3,4]],"attrs":{"v":2}}`), nil, 0, "ingested 2 items", "", []string{"e"}, nil},
	} {
		args := append([]string{"--data", data, "ingest", "c", "--input", tc.file}, tc.extra...)
		stdout, stderr, code := runCLI(t, "", args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) || tc.code != 0 && stdout != "" {
			t.Errorf("%s: exit %d\nstdout %q\nstderr %q\nwant %d, %q, %q", tc.name, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
		for _, id := range tc.present {
			if _, stderr, code := runCLI(t, "", "--data", data, "get", "c", id); code != 0 {
				t.Errorf("%s: %s missing: %s", tc.name, id, stderr)
			}
		}
		for _, id := range tc.absent {
			if _, _, code := runCLI(t, "", "--data", data, "get", "c", id); code == 0 {
				t.Errorf("%s: %s should not be stored", tc.name, id)
			}
		}
	}
	stdout, _, _ := runCLI(t, "", "--data", data, "get", "c", "e")
	if !strings.Contains(stdout, `"points":[[3,4]]`) || !strings.Contains(stdout, `"v":2`) {
		t.Errorf("last one did not win: %s", stdout)
	}
	for _, args := range [][]string{
		{"ingest", "c"},
		{"ingest", "nope", "--input", "x"},
		{"collection", "create", "x"},
		{"collection", "create", "x", "--dim", "3", "--encoding", "f8"},
		{"collection", "create", "c", "--dim", "3"},
		{"--addr", "127.0.0.1:1", "collection", "list"},
	} {
		if stdout, stderr, code := runCLI(t, "", append([]string{"--data", data}, args...)...); code == 0 || stdout != "" || !strings.HasPrefix(stderr, "wpcdb: ") {
			t.Errorf("%v: exit %d %q %q", args, code, stdout, stderr)
		}
	}
}

// TestIngestKilledAndRerun: an ingest killed with SIGKILL at a random
// moment and run again completes with every item present and identical.
func TestIngestKilledAndRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	const seed = 99
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "items.jsonl")
	recs := writeJSONL(t, in, seed, 3000, 8, 32)
	runCLI(t, "", "--data", data, "collection", "create", "c", "--dim", "32", "--encoding", "f16")
	for round := 0; round < 3; round++ {
		args, _ := json.Marshal([]string{"--data", data, "ingest", "c", "--input", in, "--batch", "100"})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "WPCDB_CLI_ARGS="+string(args))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	stdout, stderr, code := runCLI(t, "", "--data", data, "ingest", "c", "--input", in, "--batch", "100")
	if code != 0 || !strings.HasPrefix(stdout, "ingested 3000 items") {
		t.Fatalf("re-run: %d %q %q", code, stdout, stderr)
	}
	stdout, _, _ = runCLI(t, "", "--data", data, "--json", "collection", "describe", "c")
	if !strings.Contains(stdout, `"count":3000`) {
		t.Fatalf("describe after re-run: %s", stdout)
	}
	for _, i := range []int{0, 1, 1499, 2999} {
		stdout, _, _ := runCLI(t, "", "--data", data, "get", "c", recs[i].ID)
		got, err := cloudjson.Decode([]byte(stdout))
		if err != nil || !sameFloats(got.Cloud.Weights, recs[i].Cloud.Weights) || len(got.Cloud.Points) != len(recs[i].Cloud.Points) {
			t.Errorf("item %d after kill and re-run: %v", i, err)
		}
	}
}

func TestCollectionCreateImportedSample(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	k, _ := wpcsim.ParseKernel("linear+gaussian(0.5)")
	fm, err := wpcsim.NewFeatureMap(wpcsim.Config{Kernel: k}, 6, wpcsim.FeatureOptions{D: 48, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	sampleDir := filepath.Join(dir, "sample")
	os.MkdirAll(sampleDir, 0o755)
	if err := wpcsim.SaveFeatureSample(sampleDir, fm.Sample()); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "", "--data", data, "--json", "collection", "create", "c", "--dim", "6", "--kernel", "linear+gaussian(0.5)", "--rff-import", sampleDir)
	if code != 0 || !strings.Contains(stdout, `"rff_imported":true`) || !strings.Contains(stdout, `"rff_dim":48`) {
		t.Fatalf("create: %d %s %s", code, stdout, stderr)
	}
	// A sample for another kernel, or another dimension, is refused naming the file.
	_, stderr, code = runCLI(t, "", "--data", data, "collection", "create", "d", "--dim", "7", "--kernel", "linear+gaussian(0.5)", "--rff-import", sampleDir)
	if code == 0 || !strings.Contains(stderr, "W0.npy") {
		t.Errorf("wrong dimension: %d %s", code, stderr)
	}
	_, stderr, code = runCLI(t, "", "--data", data, "collection", "create", "d", "--dim", "6", "--kernel", "linear", "--rff-import", sampleDir)
	if code == 0 || stderr == "" {
		t.Errorf("sample for another kernel accepted")
	}
}

// writeNPY writes a .npy file of the given dtype from raw little-endian data.
func writeNPY(t *testing.T, path, descr string, shape []int, data []byte) {
	t.Helper()
	dims := ""
	for i, d := range shape {
		if i > 0 {
			dims += ", "
		}
		dims += fmt.Sprint(d)
	}
	if len(shape) == 1 {
		dims += ","
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims)
	for (10+len(dict)+1)%64 != 0 {
		dict += " "
	}
	dict += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(dict)), byte(len(dict)>>8))
	b = append(append(b, dict...), data...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIngestNPY(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	runCLI(t, "", "--data", data, "collection", "create", "c", "--dim", "3")
	const n, m, d = 4, 3, 3
	rng := wpctest.NewRand(4)
	var pts, ws, ls []byte
	var want [][]float32
	lengths := []int64{3, 1, 2, 3}
	for i := 0; i < n; i++ {
		var row []float32
		for k := 0; k < m*d; k++ {
			v := float32(rng.NormFloat64())
			pts = binary.LittleEndian.AppendUint32(pts, math.Float32bits(v))
			row = append(row, v)
		}
		want = append(want, row[:lengths[i]*d])
		for k := 0; k < m; k++ {
			ws = binary.LittleEndian.AppendUint32(ws, math.Float32bits(float32(k+1)))
		}
		ls = binary.LittleEndian.AppendUint64(ls, uint64(lengths[i]))
	}
	p, w, l := filepath.Join(dir, "P.npy"), filepath.Join(dir, "W.npy"), filepath.Join(dir, "L.npy")
	writeNPY(t, p, "<f4", []int{n, m, d}, pts)
	writeNPY(t, w, "<f4", []int{n, m}, ws)
	writeNPY(t, l, "<i8", []int{n}, ls)
	ids := filepath.Join(dir, "ids.txt")
	os.WriteFile(ids, []byte("a\nb\nc\nd\n"), 0o644)
	attrs := filepath.Join(dir, "attrs.jsonl")
	os.WriteFile(attrs, []byte(`{"k":1}`+"\n"+`{"k":2}`+"\n{}\n"+`{"s":"x"}`+"\n"), 0o644)
	stdout, stderr, code := runCLI(t, "", "--data", data, "ingest", "c", "--points", p, "--weights", w, "--lengths", l, "--ids", ids, "--attrs", attrs)
	if code != 0 || !strings.HasPrefix(stdout, "ingested 4 items") {
		t.Fatalf("%d %q %q", code, stdout, stderr)
	}
	for i, id := range []string{"a", "b", "c", "d"} {
		stdout, _, _ := runCLI(t, "", "--data", data, "get", "c", id)
		got, err := cloudjson.Decode([]byte(stdout))
		if err != nil || !sameFloats(got.Cloud.Points, want[i]) || got.Cloud.Weights[0] != 1 || len(got.Cloud.Weights) != int(lengths[i]) {
			t.Errorf("%s: %v %s", id, err, stdout)
		}
	}
	// Default IDs are row numbers; bad inputs are refused before writing.
	if _, stderr, code := runCLI(t, "", "--data", data, "ingest", "c", "--points", p); code != 0 {
		t.Fatal(stderr)
	}
	if stdout, _, _ := runCLI(t, "", "--data", data, "--json", "collection", "describe", "c"); !strings.Contains(stdout, `"count":8`) {
		t.Errorf("after default-ID ingest: %s", stdout)
	}
	badL := filepath.Join(dir, "bad.npy")
	writeNPY(t, badL, "<i8", []int{n}, binary.LittleEndian.AppendUint64(ls[:24:24], 0))
	// Headers whose shapes overflow, and more points per item than the
	// collection allows, are refused before anything is allocated.
	huge1, huge2, wide := filepath.Join(dir, "huge1.npy"), filepath.Join(dir, "huge2.npy"), filepath.Join(dir, "wide.npy")
	writeNPY(t, huge1, "<f4", []int{math.MaxInt64, math.MaxInt64, d}, pts)
	writeNPY(t, huge2, "<f4", []int{1, 1 << 62, d}, pts)
	writeNPY(t, wide, "<f4", []int{1, 2000, d}, make([]byte, 4*2000*d))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--points", w}, "want (N, M, d)"},
		{[]string{"--points", p, "--weights", l}, "dtype \"<i8\", want '<f4'"},
		{[]string{"--points", p, "--weights", p}, "want (4, 3) to match the points"},
		{[]string{"--points", p, "--lengths", badL}, "row 3: length 0, want 1..3"},
		{[]string{"--points", huge1}, "overflows"},
		{[]string{"--points", huge2}, "overflows"},
		{[]string{"--points", wide}, "M = 2000 points per item exceeds the collection's maximum of 1024"},
		{[]string{"--points", p, "--weights", huge2}, "overflows"},
		{[]string{"--points", p, "--ids", attrs + "x"}, "no such file"},
		{[]string{"--input", "x.jsonl", "--points", p}, "give one of --input"},
		{[]string{"--input", "x.jsonl", "--parquet", p}, "give one of --input"},
		{[]string{"--input", "x.jsonl", "--ids", ids}, "go with --points"},
	} {
		_, stderr, code := runCLI(t, "", append([]string{"--data", data, "ingest", "c"}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: %d %q", tc.args, code, stderr)
		}
	}
}

func TestSearchAndRerankCLI(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	in := filepath.Join(dir, "items.jsonl")
	recs := writeJSONL(t, in, 21, 400, 5, 8)
	runCLI(t, "", "--data", data, "collection", "create", "c", "--dim", "8", "--score", "mmd")
	if _, stderr, code := runCLI(t, "", "--data", data, "ingest", "c", "--input", in); code != 0 {
		t.Fatal(stderr)
	}
	q := string(cloudjson.AppendJSON(nil, cloudjson.Record{Cloud: recs[5].Cloud}))
	var out struct {
		Hits []struct {
			ID       string   `json:"id"`
			Score    float64  `json:"score"`
			Distance *float64 `json:"distance"`
		} `json:"hits"`
		Stats map[string]any `json:"stats"`
	}
	for _, extra := range [][]string{nil, {"--exact"}} {
		stdout, stderr, code := runCLI(t, q, append([]string{"--data", data, "--json", "search", "c", "--query", "-", "-k", "5"}, extra...)...)
		if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil {
			t.Fatalf("search %v: %d %q %q", extra, code, stdout, stderr)
		}
		// mmd: the query itself is at distance ~0, first; score = -distance.
		if len(out.Hits) != 5 || out.Hits[0].ID != "item-5" || out.Hits[0].Distance == nil || *out.Hits[0].Distance > 1e-3 || out.Hits[1].Score != -*out.Hits[1].Distance {
			t.Errorf("search %v: %s", extra, stdout)
		}
		for i := 1; i < len(out.Hits); i++ {
			if *out.Hits[i].Distance < *out.Hits[i-1].Distance {
				t.Errorf("search %v: hits not sorted by distance: %s", extra, stdout)
			}
		}
	}
	// A filter: only red items (even indices) come back.
	stdout, stderr, code := runCLI(t, q, "--data", data, "--json", "search", "c", "--query", "-", "-k", "7", "--filter", `color = "red" AND n >= 100`)
	if code != 0 || json.Unmarshal([]byte(stdout), &out) != nil || len(out.Hits) != 7 {
		t.Fatalf("filtered search: %d %q %q", code, stdout, stderr)
	}
	for _, h := range out.Hits {
		var i int
		fmt.Sscanf(h.ID, "item-%d", &i)
		if i%2 != 0 || i < 100 {
			t.Errorf("hit %s does not match the filter", h.ID)
		}
	}
	if _, stderr, code := runCLI(t, q, "--data", data, "search", "c", "--query", "-", "--filter", `color = `); code == 0 || !strings.Contains(stderr, "invalid filter") {
		t.Errorf("bad filter: %d %q", code, stderr)
	}
	stdout, _, code = runCLI(t, q, "--data", data, "rerank", "c", "--query", "-", "item-9", "ghost", "item-5")
	if code != 0 || !strings.Contains(stdout, "1     item-5") || !strings.Contains(stdout, `not found: "ghost"`) {
		t.Errorf("rerank: %q", stdout)
	}
	for _, args := range [][]string{
		{"search", "c"},
		{"search", "c", "--query", "-", "-k", "-1"},
		{"search", "nope", "--query", "-"},
		{"get", "c", "item-1", "ghost"},
	} {
		if stdout, stderr, code := runCLI(t, q, append([]string{"--data", data}, args...)...); code == 0 || stdout != "" || stderr == "" {
			t.Errorf("%v: %d %q %q", args, code, stdout, stderr)
		}
	}
}
