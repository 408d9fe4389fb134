package main

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/cloudjson"
	"github.com/wpcdb/wpcdb/internal/idx"
	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// decodeLines decodes JSONL output and validates every cloud.
func decodeLines(t *testing.T, out string) []cloudjson.Record {
	t.Helper()
	var recs []cloudjson.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(line, `"weights":`) {
			t.Fatalf("line without weights: %s", line)
		}
		r, err := cloudjson.Decode([]byte(line))
		if err != nil {
			t.Fatalf("decode %q: %v", line, err)
		}
		if err := r.Cloud.Validate(wpcsim.Limits{}); err != nil {
			t.Fatalf("cloud %q invalid: %v", r.ID, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func writeNPYFloats(t *testing.T, path string, shape []int, data []float32) {
	t.Helper()
	var b bytes.Buffer
	if err := npy.WriteFloat32(&b, shape, data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEncodePatchCLI(t *testing.T) {
	dir := t.TempDir()
	m := image.NewGray(image.Rect(0, 0, 12, 12))
	for i := 0; i < 12; i++ {
		m.SetGray(i, i, color.Gray{Y: 255})
	}
	var pb bytes.Buffer
	png.Encode(&pb, m)
	pngPath := filepath.Join(dir, "diag.png")
	os.WriteFile(pngPath, pb.Bytes(), 0o644)
	data := make([]byte, 3*8*8)
	for i := range data {
		data[i] = byte(i * 7)
	}
	var ib bytes.Buffer
	idx.Write(&ib, []int{3, 8, 8}, data)
	idxPath := filepath.Join(dir, "imgs-idx3-ubyte")
	os.WriteFile(idxPath, ib.Bytes(), 0o644)

	out, errOut, code := runCLI(t, "", "encode", "--encoder", "patch", "--patch-size", "4", "--pos-scale", "2", pngPath, idxPath)
	if code != 0 {
		t.Fatalf("encode: %d %s", code, errOut)
	}
	recs := decodeLines(t, out)
	if len(recs) != 4 || recs[0].ID != pngPath || recs[3].ID != "2" || recs[0].Cloud.Dim != 18 {
		t.Fatalf("records: %d, first %q dim %d", len(recs), recs[0].ID, recs[0].Cloud.Dim)
	}
	// Only the 3 diagonal patches of the 3×3 grid have ink.
	if recs[0].Cloud.Len() != 3 {
		t.Fatalf("diagonal image: %d points", recs[0].Cloud.Len())
	}
	// PCA: fit, then encode with the model.
	model := filepath.Join(dir, "pca.json")
	if out, errOut, code := runCLI(t, "", "encode", "fit", "--encoder", "patch", "--patch-size", "4", "--dim", "3", "--out", model, idxPath); code != 0 || !strings.Contains(out, "fitted patch model on 3 inputs") {
		t.Fatalf("fit: %d %s %s", code, out, errOut)
	}
	out, errOut, code = runCLI(t, "", "encode", "--encoder", "patch", "--proj", "pca", "--model", model, idxPath)
	if code != 0 {
		t.Fatalf("encode pca: %d %s", code, errOut)
	}
	if recs := decodeLines(t, out); len(recs) != 3 || recs[0].Cloud.Dim != 5 {
		t.Fatalf("pca records %d dim %d", len(recs), recs[0].Cloud.Dim)
	}
	// Ingest into a fresh collection (created with the encoder's dimension).
	data2 := filepath.Join(dir, "db")
	out, errOut, code = runCLI(t, "", "--data", data2, "encode", "--encoder", "patch", "--patch-size", "4", idxPath, "--ingest", "imgs")
	if code != 0 || !strings.Contains(out, "ingested 3 items") || !strings.Contains(errOut, `created collection "imgs" (dim 18`) {
		t.Fatalf("ingest: %d %q %q", code, out, errOut)
	}
	embedded, errOut, code := runCLI(t, "", "--data", data2, "get", "imgs", "1")
	if code != 0 || !strings.Contains(embedded, "1") {
		t.Fatalf("get: %d %s %s", code, embedded, errOut)
	}
	// With --addr the same clouds go to the server, which stores the same.
	addr := startServer(t, nil)
	out, errOut, code = runCLI(t, "", "--addr", addr, "encode", "--encoder", "patch", "--patch-size", "4", idxPath, "--ingest", "imgs")
	if code != 0 || !strings.Contains(out, "ingested 3 items") || !strings.Contains(errOut, `created collection "imgs" (dim 18`) {
		t.Fatalf("ingest --addr: %d %q %q", code, out, errOut)
	}
	if remote, errOut, code := runCLI(t, "", "--addr", addr, "get", "imgs", "1"); code != 0 || remote != embedded {
		t.Fatalf("get --addr: %d %q %s, embedded %q", code, remote, errOut, embedded)
	}
}

func TestEncodeTextCLI(t *testing.T) {
	dir := t.TempDir()
	corpus := filepath.Join(dir, "corpus.txt")
	os.WriteFile(corpus, []byte("the quick brown fox\nthe lazy dog\n\nthe fox and the dog\n"), 0o644)
	model := filepath.Join(dir, "idf.json")
	if _, errOut, code := runCLI(t, "", "encode", "fit", "--encoder", "text", "--lines", "--min-df", "1", "--out", model, corpus); code != 0 {
		t.Fatalf("fit: %s", errOut)
	}
	out, errOut, code := runCLI(t, "", "encode", "--encoder", "text", "--lines", "--model", model, "--dim", "32", "--max-points", "3", corpus)
	if code != 0 {
		t.Fatalf("encode: %s", errOut)
	}
	recs := decodeLines(t, out)
	if len(recs) != 3 || recs[2].ID != corpus+":4" || recs[0].Cloud.Dim != 32 || recs[0].Cloud.Len() != 3 {
		t.Fatalf("records %+v", recs)
	}
	// Deterministic: the same command prints the same bytes.
	again, _, _ := runCLI(t, "", "encode", "--encoder", "text", "--lines", "--model", model, "--dim", "32", "--max-points", "3", corpus)
	if again != out {
		t.Fatal("text encoding is not deterministic")
	}
}

func TestEncodeTokensCLI(t *testing.T) {
	dir := t.TempDir()
	const n, T, din, d = 4, 6, 5, 3
	feat := make([]float32, n*T*din)
	for i := range feat {
		feat[i] = float32(math.Sin(float64(i)*1.7)) + 0.1
	}
	fp := filepath.Join(dir, "feats.npy")
	writeNPYFloats(t, fp, []int{n, T, din}, feat)
	lp := filepath.Join(dir, "len.npy")
	var lb bytes.Buffer
	hdr := "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	lb.WriteString(npy.Magic + "\x01\x00")
	binary.Write(&lb, binary.LittleEndian, uint16(len(hdr)+1))
	lb.WriteString(hdr + "\n")
	for _, l := range []int64{6, 5, 4, 3} {
		binary.Write(&lb, binary.LittleEndian, l)
	}
	os.WriteFile(lp, lb.Bytes(), 0o644)
	proj := make([]float32, din*d)
	for i := range proj {
		proj[i] = float32(i%4) - 1.5
	}
	pp, wp := filepath.Join(dir, "proj.npy"), filepath.Join(dir, "w.npy")
	writeNPYFloats(t, pp, []int{din, d}, proj)
	writeNPYFloats(t, wp, []int{din}, []float32{30, -20, 10, 5, -40})

	out, errOut, code := runCLI(t, "", "encode", "--encoder", "tokens", "--lengths", lp, "--head-proj", pp, "--head-weight", wp, "--max-points", "2", "--compress-report", fp)
	if code != 0 {
		t.Fatalf("encode: %s", errOut)
	}
	recs := decodeLines(t, out)
	if len(recs) != n || recs[0].Cloud.Dim != d {
		t.Fatalf("%d records of dim %d", len(recs), recs[0].Cloud.Dim)
	}
	for _, r := range recs {
		if r.Cloud.Len() > 2 {
			t.Fatalf("%s: %d points after compression to 2", r.ID, r.Cloud.Len())
		}
	}
	if !strings.Contains(errOut, "compression to ≤ 2 points") || !strings.Contains(errOut, "top-10 overlap") {
		t.Fatalf("no compression report: %q", errOut)
	}
	// Without a head: the features as points, weight 1.
	out, errOut, code = runCLI(t, "", "encode", "--encoder", "tokens", fp)
	if recs := decodeLines(t, out); code != 0 || len(recs) != n || recs[0].Cloud.Len() != T || recs[0].Cloud.Weights[0] != 1 {
		t.Fatalf("no head: %d %s", code, errOut)
	}
}

func TestEncodeErrorsCLI(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.png")
	txt := filepath.Join(dir, "notes.txt")
	os.WriteFile(txt, []byte("hello"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"encode", txt}, 2, "--encoder is required"},
		{[]string{"encode", "--encoder", "patch"}, 2, "at least one INPUT"},
		{[]string{"encode", "--encoder", "pixels", txt}, 1, `unknown encoder "pixels"`},
		{[]string{"encode", "--encoder", "patch", missing}, 1, missing},
		{[]string{"encode", "--encoder", "patch", txt}, 1, txt + ": not a PNG, JPEG or IDX file"},
		{[]string{"encode", "--encoder", "patch", "--weight", "ink", txt}, 1, `weight rule "ink"`},
		{[]string{"encode", "--encoder", "text", "--lines", txt, filepath.Join(dir, "x.txt")}, 1, "x.txt"},
		{[]string{"encode", "--encoder", "tokens", txt}, 1, txt},
		{[]string{"encode", "fit", "--encoder", "tokens", "--out", filepath.Join(dir, "m.json"), txt}, 2, "nothing to fit"},
		{[]string{"encode", "--encoder", "patch", "--proj", "pca", txt}, 1, "needs a model"},
	} {
		out, errOut, code := runCLI(t, "", c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: code %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
		if code != 0 && c.args[1] != "--encoder" && out != "" && !strings.Contains(strings.Join(c.args, " "), "--lines") {
			t.Errorf("%v: printed %q on failure", c.args, out)
		}
	}
}
