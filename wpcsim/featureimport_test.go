package wpcsim_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wpcdb/wpcdb/internal/npy"
	"github.com/wpcdb/wpcdb/internal/wpctest"
	"github.com/wpcdb/wpcdb/wpcsim"
)

// A sample round-trips through SaveFeatureSample and LoadFeatureSample, and
// the loaded map computes the same φ.
func TestFeatureSampleRoundTrip(t *testing.T) {
	cfg := wpcsim.Config{Kernel: mustKernel(t, "0.5*imq(0.5)+linear+gaussian(0.7)")}
	f := mustFeatureMap(t, cfg, 10, wpcsim.FeatureOptions{D: 33, Seed: 4})
	dir := t.TempDir()
	if err := wpcsim.SaveFeatureSample(dir, f.Sample()); err != nil {
		t.Fatal(err)
	}
	s, err := wpcsim.LoadFeatureSample(dir, cfg, 10)
	if err != nil {
		t.Fatal(err)
	}
	orig := f.Sample()
	for i := range orig.W {
		if !slices.Equal(s.W[i], orig.W[i]) || !slices.Equal(s.B[i], orig.B[i]) {
			t.Errorf("term %d: loaded sample differs from the saved one", i)
		}
	}
	g, err := wpcsim.NewFeatureMapFromSample(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	c := featCloud(wpctest.RandomCloud(wpctest.NewRand(2), 13, 10, wpctest.Shape{}))
	a, _ := f.Map(c, nil)
	b, _ := g.Map(c, nil)
	if !slices.Equal(a, b) {
		t.Error("φ from the loaded sample differs")
	}
	// Saving again over the same directory is fine.
	if err := wpcsim.SaveFeatureSample(dir, orig); err != nil {
		t.Errorf("saving over an existing sample: %v", err)
	}
}

// npyFile writes a .npy file with a literal header dict and raw data.
func npyFile(t *testing.T, path, dict string, data []byte) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString(npy.Magic + "\x01\x00")
	hdr := dict + "\n"
	b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(hdr))))
	b.WriteString(hdr)
	b.Write(data)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeF32(t *testing.T, path string, shape []int, v []float32) {
	t.Helper()
	var b bytes.Buffer
	if err := npy.WriteFloat32(&b, shape, v); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFeatureSampleErrors(t *testing.T) {
	const d, D = 3, 4
	twoTerms := wpcsim.Config{Kernel: mustKernel(t, "linear+gaussian(0.5)+imq(1)")}
	ones := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 0.25
		}
		return v
	}
	// valid writes a loadable sample for twoTerms.
	valid := func(t *testing.T, dir string) {
		for _, i := range []string{"0", "1"} {
			writeF32(t, filepath.Join(dir, "W"+i+".npy"), []int{D, d}, ones(D*d))
			writeF32(t, filepath.Join(dir, "b"+i+".npy"), []int{D}, ones(D))
		}
	}
	withNaN := ones(D * d)
	withNaN[5] = float32(math.NaN())
	withInf := ones(D)
	withInf[2] = float32(math.Inf(-1))
	cases := []struct {
		name   string
		cfg    wpcsim.Config
		dim    int
		modify func(t *testing.T, dir string)
		file   string // the error must name this file
		want   string
	}{
		{"missing W", twoTerms, d, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "W1.npy")) }, "W1.npy", "missing"},
		{"missing b", twoTerms, d, func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "b0.npy")) }, "b0.npy", "missing"},
		{"f8", twoTerms, d, func(t *testing.T, dir string) {
			npyFile(t, filepath.Join(dir, "W0.npy"), "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }", make([]byte, 8*D*d))
		}, "W0.npy", `dtype "<f8"`},
		{"big endian", twoTerms, d, func(t *testing.T, dir string) {
			npyFile(t, filepath.Join(dir, "b1.npy"), "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", make([]byte, 4*D))
		}, "b1.npy", `dtype ">f4"`},
		{"fortran", twoTerms, d, func(t *testing.T, dir string) {
			npyFile(t, filepath.Join(dir, "W0.npy"), "{'descr': '<f4', 'fortran_order': True, 'shape': (4, 3), }", make([]byte, 4*D*d))
		}, "W0.npy", "Fortran"},
		{"W rank 1", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W0.npy"), []int{D * d}, ones(D*d)) }, "W0.npy", "want (D, d)"},
		{"W rank 3", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W0.npy"), []int{1, D, d}, ones(D*d)) }, "W0.npy", "want (D, d)"},
		{"d mismatch", twoTerms, d + 1, func(t *testing.T, dir string) {}, "W0.npy", "does not match the collection's dimension 4"},
		{"W transposed", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W1.npy"), []int{d, D}, ones(D*d)) }, "W1.npy", "d = 4 does not match"},
		{"empty W", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W0.npy"), []int{0, d}, nil) }, "W0.npy", "D = 0"},
		{"D mismatch", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "b1.npy"), []int{D + 1}, ones(D+1)) }, "b1.npy", "5 phases, but W1.npy has D = 4"},
		{"b (2, D)", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "b0.npy"), []int{2, D}, ones(2*D)) }, "b0.npy", "want (D,) or (1, D)"},
		{"b (D, 1)", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "b0.npy"), []int{D, 1}, ones(D)) }, "b0.npy", "want (D,) or (1, D)"},
		{"NaN", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W1.npy"), []int{D, d}, withNaN) }, "W1.npy", "W[1][2] is NaN"},
		{"Inf", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "b0.npy"), []int{D}, withInf) }, "b0.npy", "b[2] is -Inf"},
		{"truncated", twoTerms, d, func(t *testing.T, dir string) {
			npyFile(t, filepath.Join(dir, "W1.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", make([]byte, 4*D*d-1))
		}, "W1.npy", "data ends"},
		{"not npy", twoTerms, d, func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "b1.npy"), []byte("hello"), 0o644) }, "b1.npy", "malformed"},
		{"extra W2", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W2.npy"), []int{D, d}, ones(D*d)) }, "W2.npy", "kernel linear+gaussian(0.5)+imq(1) has 2 nonlinear terms"},
		{"extra b7", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "b7.npy"), []int{D}, ones(D)) }, "b7.npy", "no such term"},
		{"leading zero", twoTerms, d, func(t *testing.T, dir string) { writeF32(t, filepath.Join(dir, "W01.npy"), []int{D, d}, ones(D*d)) }, "W01.npy", "no such term"},
		{"linear only", wpcsim.Config{Kernel: mustKernel(t, "linear")}, d, func(t *testing.T, dir string) {}, "W0.npy", "has 0 nonlinear terms (no sample files)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			valid(t, dir)
			tc.modify(t, dir)
			_, err := wpcsim.LoadFeatureSample(dir, tc.cfg, tc.dim)
			if !errors.Is(err, wpcsim.ErrInvalidFeatureSample) || !strings.Contains(err.Error(), filepath.Join(dir, tc.file)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant ErrInvalidFeatureSample naming %s and saying %q", err, tc.file, tc.want)
			}
		})
	}

	// The valid directory loads; (1, D) phases and unrelated files are fine.
	dir := t.TempDir()
	valid(t, dir)
	writeF32(t, filepath.Join(dir, "b1.npy"), []int{1, D}, ones(D))
	os.WriteFile(filepath.Join(dir, "README"), []byte("trained sample"), 0o644)
	s, err := wpcsim.LoadFeatureSample(dir, twoTerms, d)
	if err != nil || len(s.W) != 2 || len(s.B[1]) != D {
		t.Errorf("valid sample: %v", err)
	}
	if _, err := wpcsim.LoadFeatureSample(filepath.Join(dir, "nope"), twoTerms, d); !errors.Is(err, wpcsim.ErrInvalidFeatureSample) {
		t.Errorf("missing directory: error %v", err)
	}
	if _, err := wpcsim.LoadFeatureSample(dir, wpcsim.Config{Kernel: mustKernel(t, "maxsim")}, d); !errors.Is(err, wpcsim.ErrInvalidConfig) {
		t.Errorf("maxsim: error %v", err)
	}
}

func TestFeatureSampleValidate(t *testing.T) {
	cfg := wpcsim.Config{Kernel: mustKernel(t, "linear+gaussian(0.5)")}
	good := wpcsim.FeatureSample{Dim: 2, W: [][]float32{{1, 2, 3, 4}}, B: [][]float32{{0, 1}}}
	if _, err := wpcsim.NewFeatureMapFromSample(cfg, good); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		s    wpcsim.FeatureSample
		want string
	}{
		{wpcsim.FeatureSample{Dim: 2}, "1 nonlinear terms, sample has 0 W"},
		{wpcsim.FeatureSample{Dim: 0, W: good.W, B: good.B}, "dimension must be positive"},
		{wpcsim.FeatureSample{Dim: 2, W: [][]float32{{1, 2, 3}}, B: good.B}, "W has 3 values"},
		{wpcsim.FeatureSample{Dim: 2, W: [][]float32{{}}, B: [][]float32{{}}}, "D = 0"},
		{wpcsim.FeatureSample{Dim: 2, W: [][]float32{{1, 2, float32(math.Inf(1)), 4}}, B: good.B}, "W[1][0] is +Inf"},
	}
	for _, tc := range cases {
		_, err := wpcsim.NewFeatureMapFromSample(cfg, tc.s)
		if !errors.Is(err, wpcsim.ErrInvalidFeatureSample) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sample %+v: error %v, want one saying %q", tc.s, err, tc.want)
		}
	}
	// The map owns a copy: changing the caller's sample changes nothing.
	f, _ := wpcsim.NewFeatureMapFromSample(cfg, good)
	good.W[0][0] = 99
	if f.Sample().W[0][0] != 1 {
		t.Error("NewFeatureMapFromSample shares the caller's W")
	}
	// Save refuses to leave a directory it could not load back.
	dir := t.TempDir()
	writeF32(t, filepath.Join(dir, "W3.npy"), []int{2, 2}, []float32{1, 2, 3, 4})
	if err := wpcsim.SaveFeatureSample(dir, good); !errors.Is(err, wpcsim.ErrInvalidFeatureSample) || !strings.Contains(err.Error(), "W3.npy") {
		t.Errorf("saving next to a stale W3.npy: error %v", err)
	}
}
