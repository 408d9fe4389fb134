package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFMNISTWorkload(t *testing.T) {
	if _, err := os.Stat(filepath.Join(FashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
	}
	for _, repr := range []string{FMNISTPixels, FMNISTPatches} {
		w, err := NewFMNISTWorkload("", repr, 40)
		if err != nil {
			t.Fatal(err)
		}
		dim, maxPts := w.Shape()
		sim := w.Similarity()
		switch repr {
		case FMNISTPixels:
			if dim != 784 || maxPts != 1 || sim.Kernel.String() != "linear" || sim.RawPoints {
				t.Errorf("pixels: dim %d, %d points, %+v", dim, maxPts, sim)
			}
		case FMNISTPatches:
			// The demo's setting: 4×4 patches of 7×7 pixels plus a position.
			if dim != 51 || maxPts != 16 || sim.Kernel.String() != "gaussian(4)" || !sim.RawPoints || sim.Score.String() != "cosine" {
				t.Errorf("patches: dim %d, %d points, %+v", dim, maxPts, sim)
			}
		}
		if w.N != 40 {
			t.Errorf("%s: N %d", repr, w.N)
		}
		most := 0
		for i := 0; i < w.N; i++ {
			it, err := w.Item(i)
			if err != nil {
				t.Fatal(err)
			}
			if it.Cloud.Dim != dim || it.Cloud.Len() > maxPts || it.Attrs["label"] != float64(w.Train.Labels[i]) {
				t.Fatalf("%s item %d: %s dim %d, %d points, attrs %v", repr, i, it.ID, it.Cloud.Dim, it.Cloud.Len(), it.Attrs)
			}
			most = max(most, it.Cloud.Len())
		}
		if most != maxPts {
			t.Errorf("%s: no item has the %d points Shape promises (most: %d)", repr, maxPts, most)
		}
		qs, err := w.Queries(3)
		if err != nil || len(qs) != 3 || qs[0].Dim != dim {
			t.Fatalf("%s queries: %v %d", repr, err, len(qs))
		}
		if a, b := w.DataSHA256(3), w.DataSHA256(4); a == b || len(a) != 64 {
			t.Errorf("data hash ignores the queries: %s %s", a, b)
		}
	}
	if _, err := NewFMNISTWorkload("", "jpeg", 10); err == nil || !strings.Contains(err.Error(), "pixels or patches") {
		t.Errorf("unknown repr: %v", err)
	}
}

func TestReadFileWorkload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	items := write("items.jsonl", `{"id": "a", "points": [[1, 0], [0, 1]], "weights": [2, -1]}
{"id": "b", "points": [[1, 1]], "attrs": {"color": "red"}}

{"id": "c", "points": [[0.5, 2]]}
`)
	queries := write("queries.jsonl", `{"id": "ignored", "points": [[1, 0]]}
{"points": [[0, 1], [1, 1], [2, 2]]}
`)
	w, err := ReadFileWorkload(items, queries, FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dim, maxPts := w.Shape()
	if len(w.Items) != 3 || len(w.Queries) != 2 || dim != 2 || maxPts != 3 || w.Items[1].Attrs["color"] != "red" || len(w.ItemsSHA256) != 64 {
		t.Fatalf("workload %+v", w)
	}
	capped, err := ReadFileWorkload(items, queries, FileOptions{MaxItems: 2, MaxQueries: 1})
	if err != nil || len(capped.Items) != 2 || len(capped.Queries) != 1 || capped.ItemsSHA256 != w.ItemsSHA256 {
		t.Fatalf("capped: %v %+v", err, capped)
	}
	for _, tc := range []struct{ items, queries, want string }{
		{filepath.Join(dir, "nope.jsonl"), queries, "nope.jsonl: no such file"},
		{items, write("empty.jsonl", "\n\n"), "empty.jsonl: no queries"},
		{write("i2.jsonl", `{"id": "a", "points": [[1, 0]]}`+"\n"+`{"id": "b", "points": [[1, 0, 3]]}`), queries, "i2.jsonl line 2: points: dimension 3 does not match the required 2"},
		{write("i3.jsonl", `{"id": "a", "points": [[1, 0]]}`+"\n\n"+`{"points": [[1, 0]]}`), queries, "i3.jsonl line 3: id: missing"},
		{write("i4.jsonl", `{"id": "a", "points": [[1, 0]]}`+"\n"+`{"id": "a", "points": [[0, 1]]}`), queries, `i4.jsonl line 2: id: "a" is also on line 1`},
		{items, write("q2.jsonl", `{"points": [[1, 0]], "weights": [1, 2]}`), "q2.jsonl line 1: weights: 2 weights for 1 points"},
		{items, write("q3.jsonl", `{"points": [[1, 0]]}`+"\n"+`{"points": [[0, 0]]}`), "q3.jsonl line 2: points[0]"},
		{items, write("q4.jsonl", `{"points": [[1, 0]], "wieghts": [1]}`), `q4.jsonl line 1: cloudjson: malformed cloud: json: unknown field "wieghts"`},
	} {
		_, err := ReadFileWorkload(tc.items, tc.queries, FileOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
}
