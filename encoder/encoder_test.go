package encoder

import (
	"bytes"
	"compress/gzip"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/idx"
	"github.com/wpcdb/wpcdb/wpcsim"
)

func TestRegistry(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"patch", "text", "tokens"}) {
		t.Fatalf("Names() = %v", got)
	}
	if _, err := New("nope", Config{}); !errors.Is(err, ErrUnknown) {
		t.Fatalf("New(nope) = %v, want ErrUnknown", err)
	}
	if _, err := New("text", Config{Model: &Model{Encoder: "patch"}}); !errors.Is(err, ErrOptions) {
		t.Fatalf("text with a patch model = %v, want ErrOptions", err)
	}
	for _, n := range Names() {
		e, err := New(n, Config{})
		if err != nil || e.Name() != n {
			t.Fatalf("New(%s) = %v, %v", n, e, err)
		}
	}
}

// validate checks every cloud as a collection with normalized points would.
func validate(t *testing.T, cs ...wpcsim.Cloud) {
	t.Helper()
	for i, c := range cs {
		if err := c.Validate(wpcsim.Limits{}); err != nil {
			t.Fatalf("cloud %d invalid: %v", i, err)
		}
	}
}

// testImage is a 14×14 gray gradient with a bright square in one corner.
func testImage() *image.Gray {
	m := image.NewGray(image.Rect(0, 0, 14, 14))
	for y := 0; y < 14; y++ {
		for x := 0; x < 14; x++ {
			v := uint8(x * 10)
			if x < 7 && y < 7 {
				v = 250
			}
			m.SetGray(x, y, color.Gray{Y: v})
		}
	}
	return m
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func readAll(t *testing.T, e Encoder, path string) []Input {
	t.Helper()
	var ins []Input
	if err := e.Read(path, func(in Input) error { ins = append(ins, in); return nil }); err != nil {
		t.Fatalf("Read(%s): %v", path, err)
	}
	return ins
}

func TestPatchPNGAndJPEG(t *testing.T) {
	var pb, jb bytes.Buffer
	if err := png.Encode(&pb, testImage()); err != nil {
		t.Fatal(err)
	}
	if err := jpeg.Encode(&jb, testImage(), &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	e, err := NewPatch(PatchOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Dim() != 49+2 {
		t.Fatalf("Dim = %d, want 51", e.Dim())
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"a.png", pb.Bytes()}, {"b.jpg", jb.Bytes()}} {
		path := writeFile(t, f.name, f.data)
		ins := readAll(t, e, path)
		if len(ins) != 1 || ins[0].ID != path {
			t.Fatalf("%s: inputs %v", f.name, ins)
		}
		c, err := e.Encode(ins[0])
		if err != nil {
			t.Fatal(err)
		}
		validate(t, c)
		if c.Len() != 4 {
			t.Fatalf("%s: %d points, want 4 (2×2 patches of 7)", f.name, c.Len())
		}
		// Weight by ink mass: the bright top-left patch is heaviest.
		if c.Weights[0] < 0.95 || c.Weights[0] < c.Weights[1] {
			t.Fatalf("%s: weights %v", f.name, c.Weights)
		}
		// Position of patch 3 (bottom right): centre (10.5/14, 10.5/14).
		p := c.Point(3)
		if math.Abs(float64(p[49])-0.75) > 1e-6 || math.Abs(float64(p[50])-0.75) > 1e-6 {
			t.Fatalf("%s: position %v", f.name, p[49:])
		}
	}
	// Encoded bytes work as input too.
	c, err := e.Encode(Input{ID: "mem", Data: pb.Bytes()})
	if err != nil || c.Len() != 4 {
		t.Fatalf("bytes input: %v %v", c.Len(), err)
	}
}

func TestPatchRules(t *testing.T) {
	img := ImageFromImage(testImage(), false)
	for _, rule := range []string{"mass", "contrast", "signed", "uniform"} {
		e, err := NewPatch(PatchOptions{Weight: rule, Size: 4, Stride: 3, PosScale: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := e.Encode(Input{ID: "x", Data: img})
		if err != nil {
			t.Fatalf("%s: %v", rule, err)
		}
		validate(t, c)
		neg := slices.ContainsFunc(c.Weights, func(w float32) bool { return w < 0 })
		if neg != (rule == "signed") {
			t.Fatalf("%s: negative weights %v", rule, c.Weights)
		}
	}
	// Starts cover the edge: 14 pixels, size 4, stride 3 → 0 3 6 9 and 10.
	if got := patchStarts(14, 4, 3); !slices.Equal(got, []int{0, 3, 6, 9, 10}) {
		t.Fatalf("patchStarts = %v", got)
	}
	// A blank image has no ink: an error naming it.
	blank := &Image{W: 8, H: 8, C: 1, Pix: make([]float32, 64)}
	e, _ := NewPatch(PatchOptions{Size: 4}, nil)
	if _, err := e.Encode(Input{ID: "blank.png", Data: blank}); !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "blank.png") {
		t.Fatalf("blank image: %v", err)
	}
	if _, err := e.Encode(Input{ID: "tiny", Data: &Image{W: 2, H: 2, C: 1, Pix: make([]float32, 4)}}); err == nil || !strings.Contains(err.Error(), "smaller than one 4×4 patch") {
		t.Fatalf("tiny image: %v", err)
	}
	if _, err := NewPatch(PatchOptions{Size: -1, Weight: "ink", Proj: "svd"}, nil); err == nil ||
		!strings.Contains(err.Error(), "patch size") || !strings.Contains(err.Error(), `"ink"`) || !strings.Contains(err.Error(), `"svd"`) {
		t.Fatalf("bad options: %v", err)
	}
}

// idxFile writes n images of h×w as an IDX file, gzipped if asked; image i
// has a bright bar on row i%h, and image blank (if ≥ 0) is all zero.
func idxFile(t *testing.T, n, h, w int, gz bool, blank int) string {
	t.Helper()
	data := make([]byte, n*h*w)
	for i := 0; i < n; i++ {
		if i == blank {
			continue
		}
		for x := 0; x < w; x++ {
			data[i*h*w+(i%h)*w+x] = 200
			data[i*h*w+((i+3)%h)*w+x/2] = 90
		}
	}
	var b bytes.Buffer
	var wr = &b
	if err := idx.Write(wr, []int{n, h, w}, data); err != nil {
		t.Fatal(err)
	}
	out := b.Bytes()
	name := "images-idx3-ubyte"
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(out)
		zw.Close()
		out, name = z.Bytes(), name+".gz"
	}
	return writeFile(t, name, out)
}

func TestPatchIDX(t *testing.T) {
	e, err := NewPatch(PatchOptions{Size: 4, Proj: "random", Dim: 5, Seed: 7}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.Dim() != 7 {
		t.Fatalf("Dim = %d, want 5+2", e.Dim())
	}
	var first []wpcsim.Cloud
	for _, gz := range []bool{false, true} {
		ins := readAll(t, e, idxFile(t, 3, 8, 8, gz, -1))
		if len(ins) != 3 || ins[2].ID != "2" {
			t.Fatalf("gz=%v: %d inputs", gz, len(ins))
		}
		cs, err := e.EncodeBatch(ins)
		if err != nil {
			t.Fatal(err)
		}
		validate(t, cs...)
		if first == nil {
			first = cs
		} else if !cloudsEqual(first, cs) {
			t.Fatal("gzipped and plain IDX give different clouds")
		}
	}
	// Same seed, same clouds; another seed, other clouds.
	e2, _ := NewPatch(PatchOptions{Size: 4, Proj: "random", Dim: 5, Seed: 7}, nil)
	e3, _ := NewPatch(PatchOptions{Size: 4, Proj: "random", Dim: 5, Seed: 8}, nil)
	ins := readAll(t, e, idxFile(t, 3, 8, 8, false, -1))
	c2, _ := e2.EncodeBatch(ins)
	c3, _ := e3.EncodeBatch(ins)
	if !cloudsEqual(first, c2) || cloudsEqual(first, c3) {
		t.Fatal("random projection is not a function of its seed")
	}
	// A blank image inside an IDX file: the error names its index.
	ins = readAll(t, e, idxFile(t, 3, 8, 8, false, 1))
	if _, err := e.EncodeBatch(ins); err == nil || !strings.Contains(err.Error(), ": 1: no patch") {
		t.Fatalf("blank IDX image: %v", err)
	}
	// A label file (1-D) and a truncated file are refused, naming the file.
	var lb bytes.Buffer
	idx.Write(&lb, []int{3}, []byte{1, 2, 3})
	lp := writeFile(t, "labels-idx1-ubyte", lb.Bytes())
	if err := e.Read(lp, func(Input) error { return nil }); err == nil || !strings.Contains(err.Error(), lp) || !strings.Contains(err.Error(), "label file") {
		t.Fatalf("label file: %v", err)
	}
	full, _ := os.ReadFile(idxFile(t, 3, 8, 8, false, -1))
	tp := writeFile(t, "trunc-idx3-ubyte", full[:len(full)-5])
	if err := e.Read(tp, func(Input) error { return nil }); err == nil || !strings.Contains(err.Error(), tp) || !strings.Contains(err.Error(), "item 2") {
		t.Fatalf("truncated file: %v", err)
	}
	np := writeFile(t, "notes.txt", []byte("hello"))
	if err := e.Read(np, func(Input) error { return nil }); err == nil || !strings.Contains(err.Error(), np) || !strings.Contains(err.Error(), "not a PNG, JPEG or IDX") {
		t.Fatalf("text file: %v", err)
	}
}

func cloudsEqual(a, b []wpcsim.Cloud) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Dim != b[i].Dim || !slices.Equal(a[i].Weights, b[i].Weights) || !slices.Equal(a[i].Points, b[i].Points) {
			return false
		}
	}
	return true
}

func TestPatchPCA(t *testing.T) {
	path := idxFile(t, 20, 8, 8, true, -1)
	base, _ := NewPatch(PatchOptions{Size: 4, Dim: 3}, nil)
	f, err := base.NewFitter()
	if err != nil {
		t.Fatal(err)
	}
	ins := readAll(t, base, path)
	for _, in := range ins {
		if err := f.Add(in); err != nil {
			t.Fatal(err)
		}
	}
	m, err := f.Model()
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(t.TempDir(), "pca.json")
	if err := m.Save(mp); err != nil {
		t.Fatal(err)
	}
	m, err = LoadModel(mp)
	if err != nil {
		t.Fatal(err)
	}
	// Components are orthonormal, variances descending.
	for i, a := range m.PCA.Components {
		for j, b := range m.PCA.Components {
			var dot float64
			for k := range a {
				dot += a[k] * b[k]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(dot-want) > 1e-9 {
				t.Fatalf("<c%d, c%d> = %g", i, j, dot)
			}
		}
	}
	if !slices.IsSortedFunc(m.PCA.Variance, func(a, b float64) int { return -cmpF(a, b) }) || m.PCA.Variance[0] <= 0 {
		t.Fatalf("variances %v", m.PCA.Variance)
	}
	e, err := New("patch", Config{Patch: PatchOptions{Size: 4, Proj: "pca"}, Model: m})
	if err != nil {
		t.Fatal(err)
	}
	if e.Dim() != 3+2 {
		t.Fatalf("Dim = %d", e.Dim())
	}
	cs, err := e.EncodeBatch(ins)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, cs...)
	// A model of another patch size is refused.
	if _, err := NewPatch(PatchOptions{Size: 5, Proj: "pca"}, m); err == nil || !strings.Contains(err.Error(), "fitted on 16 values per patch") {
		t.Fatalf("mismatched model: %v", err)
	}
	if _, err := NewPatch(PatchOptions{Proj: "pca"}, nil); err == nil || !strings.Contains(err.Error(), "encode fit") {
		t.Fatalf("pca without model: %v", err)
	}
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestJacobiEigen(t *testing.T) {
	// [[2,1],[1,2]] has eigenvalues 1 and 3.
	vals, vecs := jacobiEigen([]float64{2, 1, 1, 2}, 2)
	slices.Sort(vals)
	if math.Abs(vals[0]-1) > 1e-12 || math.Abs(vals[1]-3) > 1e-12 {
		t.Fatalf("eigenvalues %v", vals)
	}
	if math.Abs(math.Abs(vecs[0])-math.Sqrt(0.5)) > 1e-12 {
		t.Fatalf("eigenvectors %v", vecs)
	}
}

func TestTokenize(t *testing.T) {
	got := Tokenize("Héllo, WORLD! naïve café—42 don't ΣΊΣΥΦΟΣ 東京")
	want := []string{"héllo", "world", "naïve", "café", "42", "don", "t", "σίσυφοσ", "東京"} // strings.ToLower has no final-sigma rule
	if !slices.Equal(got, want) {
		t.Fatalf("Tokenize = %q, want %q", got, want)
	}
}

func cos(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

func TestText(t *testing.T) {
	e, err := NewText(TextOptions{MaxPoints: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.Encode(Input{ID: "d", Data: "the cat the cat the dog bird fish"})
	if err != nil {
		t.Fatal(err)
	}
	validate(t, c)
	// tf 3, 2, 1: saturated 2.2·tf/(1.2+tf); at most 3 points, the
	// heaviest, ties by first occurrence (dog before bird and fish).
	want := []float32{2.2 * 3 / 4.2, 2.2 * 2 / 3.2, 1}
	if c.Len() != 3 || math.Abs(float64(c.Weights[0]-want[0])) > 1e-6 || math.Abs(float64(c.Weights[1]-want[1])) > 1e-6 || c.Weights[2] != 1 {
		t.Fatalf("weights %v, want %v", c.Weights, want)
	}
	if !slices.Equal(c.Point(2), e.WordVector("dog")) {
		t.Fatal("third point is not dog")
	}
	// Related spellings land near each other.
	if a, b := cos(e.WordVector("encoder"), e.WordVector("encoders")), cos(e.WordVector("encoder"), e.WordVector("banana")); a < 0.55 || b > 0.2 {
		t.Fatalf("cos(encoder, encoders) = %.2f, cos(encoder, banana) = %.2f", a, b)
	}
	// Seeded: same seed same vector, other seed other vector.
	e2, _ := NewText(TextOptions{Seed: 1}, nil)
	e3, _ := NewText(TextOptions{}, nil)
	if slices.Equal(e2.WordVector("cat"), e.WordVector("cat")) || !slices.Equal(e3.WordVector("cat"), e.WordVector("cat")) {
		t.Fatal("word vectors are not a function of the seed")
	}
	if _, err := e.Encode(Input{ID: "empty.txt", Data: " ... !!"}); err == nil || !strings.Contains(err.Error(), "empty.txt: no words") {
		t.Fatalf("empty text: %v", err)
	}
	if _, err := NewText(TextOptions{Dim: 2, K1: -1}, nil); err == nil || !strings.Contains(err.Error(), "dim 2") || !strings.Contains(err.Error(), "k1") {
		t.Fatalf("bad options: %v", err)
	}
}

func TestTextIDFAndLines(t *testing.T) {
	corpus := "the cat sat\nthe dog sat\nthe bird flew\n\nthe cat ran\n"
	path := writeFile(t, "corpus.txt", []byte(corpus))
	e, _ := NewText(TextOptions{Lines: true, MinDF: 1}, nil)
	ins := readAll(t, e, path)
	if len(ins) != 4 || ins[3].ID != path+":5" {
		t.Fatalf("inputs %v", ins)
	}
	f, _ := e.NewFitter()
	for _, in := range ins {
		f.Add(in)
	}
	m, err := f.Model()
	if err != nil {
		t.Fatal(err)
	}
	if m.IDF.Docs != 4 || m.IDF.DF["the"] != 4 || m.IDF.DF["cat"] != 2 {
		t.Fatalf("idf %+v", m.IDF)
	}
	mp := filepath.Join(t.TempDir(), "idf.json")
	m.Save(mp)
	if m, err = LoadModel(mp); err != nil {
		t.Fatal(err)
	}
	fitted, err := New("text", Config{Model: m})
	if err != nil {
		t.Fatal(err)
	}
	c, err := fitted.Encode(Input{ID: "q", Data: "the cat"})
	if err != nil {
		t.Fatal(err)
	}
	validate(t, c)
	// "the" is in every document, "cat" in half: cat weighs more.
	if !(c.Weights[1] > 3*c.Weights[0]) || c.Weights[0] <= 0 {
		t.Fatalf("weights %v", c.Weights)
	}
	bad := writeFile(t, "bad.json", []byte(`{"format":"wpcdb-encoder-model","version":9,"encoder":"text"}`))
	if _, err := LoadModel(bad); err == nil || !strings.Contains(err.Error(), "version 9") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("bad model: %v", err)
	}
}
