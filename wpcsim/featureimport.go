package wpcsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/wpcdb/wpcdb/internal/npy"
)

// A feature sample on disk is a directory with two .npy files per nonlinear
// kernel term, t = 0, 1, … counting only the gaussian and imq terms in spec
// order:
//
//	W<t>.npy  float32 '<f4', C order, shape (D, d): row i is feature i's
//	          frequency vector, already scaled for its kernel (1/σ, |n|/c)
//	b<t>.npy  float32 '<f4', shape (D,) or (1, D): the phases
//
// This is what a trained model's sample looks like after
// np.save(f"W{t}.npy", W.astype("<f4")) in PyTorch/NumPy. The loader refuses
// anything that does not fit, naming the file: a missing file, another
// dtype, Fortran order, a wrong rank or shape, D differing between W<t> and
// b<t>, d differing from the collection's dimension, a NaN or ±Inf, and a
// W<k>.npy or b<k>.npy for a term the kernel does not have. The last is
// refused rather than ignored because it almost always means the sample was
// exported for another kernel spec (say, with an extra imq term), and
// silently dropping a term changes every score. Other files in the
// directory are ignored.

// sampleFile matches the file names of a sample: W<t>.npy and b<t>.npy.
var sampleFile = regexp.MustCompile(`^([Wb])([0-9]+)\.npy$`)

// LoadFeatureSample reads the random-feature sample of cfg's nonlinear
// terms for clouds of dimension dim from dir (layout above). Errors wrap
// ErrInvalidFeatureSample and name the file.
func LoadFeatureSample(dir string, cfg Config, dim int) (FeatureSample, error) {
	cfg = cfg.WithDefaults()
	if err := featureConfig(cfg); err != nil {
		return FeatureSample{}, err
	}
	if dim <= 0 {
		return FeatureSample{}, fmt.Errorf("%w: dimension must be positive, got %d", ErrInvalidConfig, dim)
	}
	nl := len(nonlinearTerms(cfg.Kernel))
	if err := checkSampleFiles(dir, nl, cfg.Kernel); err != nil {
		return FeatureSample{}, err
	}
	s := FeatureSample{Dim: dim}
	for t := 0; t < nl; t++ {
		wPath := filepath.Join(dir, "W"+strconv.Itoa(t)+".npy")
		w, wShape, err := readSampleArray(wPath, MaxFeatureD*dim)
		if err != nil {
			return FeatureSample{}, err
		}
		if len(wShape) != 2 {
			return FeatureSample{}, sampleFileErr(wPath, "shape %s: want (D, d) = (D, %d)", npy.Header{Shape: wShape}.ShapeString(), dim)
		}
		d := wShape[0]
		if wShape[1] != dim {
			return FeatureSample{}, sampleFileErr(wPath, "shape %s: d = %d does not match the collection's dimension %d", npy.Header{Shape: wShape}.ShapeString(), wShape[1], dim)
		}
		if d < 1 || d > MaxFeatureD {
			return FeatureSample{}, sampleFileErr(wPath, "shape %s: D = %d, want 1..%d", npy.Header{Shape: wShape}.ShapeString(), d, MaxFeatureD)
		}
		bPath := filepath.Join(dir, "b"+strconv.Itoa(t)+".npy")
		b, bShape, err := readSampleArray(bPath, MaxFeatureD)
		if err != nil {
			return FeatureSample{}, err
		}
		if !(len(bShape) == 1 || len(bShape) == 2 && bShape[0] == 1) {
			return FeatureSample{}, sampleFileErr(bPath, "shape %s: want (D,) or (1, D) with D = %d", npy.Header{Shape: bShape}.ShapeString(), d)
		}
		if len(b) != d {
			return FeatureSample{}, sampleFileErr(bPath, "shape %s: %d phases, but %s has D = %d rows", npy.Header{Shape: bShape}.ShapeString(), len(b), filepath.Base(wPath), d)
		}
		if i := nonFiniteAt(w); i >= 0 {
			return FeatureSample{}, sampleFileErr(wPath, "W[%d][%d] is %v", i/dim, i%dim, w[i])
		}
		if i := nonFiniteAt(b); i >= 0 {
			return FeatureSample{}, sampleFileErr(bPath, "b[%d] is %v", i, b[i])
		}
		s.W = append(s.W, w)
		s.B = append(s.B, b)
	}
	if err := s.Validate(cfg); err != nil {
		return FeatureSample{}, err
	}
	return s, nil
}

// checkSampleFiles refuses W<k>.npy / b<k>.npy files in dir for k ≥ nl (or
// spelled with a leading zero, which no exporter writes).
func checkSampleFiles(dir string, nl int, k Kernel) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidFeatureSample, err)
	}
	for _, e := range entries {
		m := sampleFile.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		t, err := strconv.Atoi(m[2])
		if err != nil || t >= nl || strconv.Itoa(t) != m[2] {
			expect := "no sample files"
			if nl > 0 {
				expect = fmt.Sprintf("files W0..W%d, b0..b%d", nl-1, nl-1)
			}
			return sampleFileErr(filepath.Join(dir, e.Name()),
				"no such term: kernel %s has %d nonlinear terms (%s); a file for another term means the sample belongs to another kernel",
				k, nl, expect)
		}
	}
	return nil
}

func sampleFileErr(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidFeatureSample, path, fmt.Sprintf(format, args...))
}

// readSampleArray reads one '<f4' C-order array of at most maxElems values.
func readSampleArray(path string, maxElems int) ([]float32, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, sampleFileErr(path, "missing")
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidFeatureSample, err)
	}
	defer f.Close()
	r, err := npy.NewReader(f)
	if err != nil {
		return nil, nil, sampleFileErr(path, "%v", err)
	}
	if r.Header.Descr != "<f4" {
		return nil, nil, sampleFileErr(path, "dtype %q, want '<f4' (little-endian float32; convert with .astype('<f4'))", r.Header.Descr)
	}
	if r.Header.Fortran {
		return nil, nil, sampleFileErr(path, "Fortran (column-major) order; save a C-ordered array (np.ascontiguousarray)")
	}
	if n, ok := r.Header.Len(); !ok || n > maxElems {
		return nil, nil, sampleFileErr(path, "shape %s is too large", r.Header.ShapeString())
	}
	v, err := r.ReadFloat32(maxElems)
	if err != nil {
		return nil, nil, sampleFileErr(path, "%v", err)
	}
	return v, r.Header.Shape, nil
}

// SaveFeatureSample writes s to dir (created if missing) as W<t>.npy of
// shape (D, d) and b<t>.npy of shape (D,), so that LoadFeatureSample reads
// it back exactly. Each file is written to a temporary name and renamed. It
// refuses a directory holding W<k>.npy or b<k>.npy files for terms s does
// not have, which would make the directory unloadable.
func SaveFeatureSample(dir string, s FeatureSample) error {
	if s.Dim <= 0 || len(s.W) != len(s.B) {
		return fmt.Errorf("%w: dimension %d with %d W and %d b", ErrInvalidFeatureSample, s.Dim, len(s.W), len(s.B))
	}
	for t := range s.W {
		if len(s.B[t]) == 0 || len(s.W[t]) != len(s.B[t])*s.Dim {
			return fmt.Errorf("%w: nonlinear term %d: W has %d values for D = %d, d = %d", ErrInvalidFeatureSample, t, len(s.W[t]), len(s.B[t]), s.Dim)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if m := sampleFile.FindStringSubmatch(e.Name()); m != nil {
			if t, err := strconv.Atoi(m[2]); err != nil || t >= len(s.W) || strconv.Itoa(t) != m[2] {
				return fmt.Errorf("%w: %s: directory holds a file for a term the sample does not have (%d nonlinear terms)",
					ErrInvalidFeatureSample, filepath.Join(dir, e.Name()), len(s.W))
			}
		}
	}
	for t := range s.W {
		d := len(s.B[t])
		if err := writeNPY(filepath.Join(dir, "W"+strconv.Itoa(t)+".npy"), []int{d, s.Dim}, s.W[t]); err != nil {
			return err
		}
		if err := writeNPY(filepath.Join(dir, "b"+strconv.Itoa(t)+".npy"), []int{d}, s.B[t]); err != nil {
			return err
		}
	}
	return nil
}

func writeNPY(path string, shape []int, data []float32) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = npy.WriteFloat32(f, shape, data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
