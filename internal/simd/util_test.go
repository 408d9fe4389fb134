package simd

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
)

// allPaths names every path, supported here or not.
var allPaths = []string{PathAVX512, PathAVX2, PathGeneric}

// forEachPath runs f as a subtest under every path, skipping the ones this
// CPU or build lacks, and restores the active path afterwards.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := active
	defer func() { active = saved }()
	for _, name := range allPaths {
		t.Run(name, func(t *testing.T) {
			if !setPath(name) {
				t.Skipf("path %s not supported on this CPU/build", name)
			}
			f(t)
		})
	}
}

// Guard bands: every test slice is a window into a larger buffer whose
// surroundings hold a sentinel that the kernels must not touch.
const guardLen = 32

var sentinel = math.Float32frombits(0x7fa5a5a5) // a NaN no kernel makes

// guarded returns a window of n floats that starts off floats past the
// leading guard band of a fresh buffer, and the buffer itself.
func guarded(n, off int) (win, buf []float32) {
	buf = make([]float32, guardLen+off+n+guardLen)
	for i := range buf {
		buf[i] = sentinel
	}
	return buf[guardLen+off : guardLen+off+n], buf
}

// checkGuards fails t if anything in buf outside the window changed.
func checkGuards(t *testing.T, buf []float32, off, n int, what string) {
	t.Helper()
	for i, v := range buf {
		if i >= guardLen+off && i < guardLen+off+n {
			continue
		}
		if math.Float32bits(v) != math.Float32bits(sentinel) {
			t.Fatalf("%s: guard band overwritten at %d (window %d..%d): %v", what, i, guardLen+off, guardLen+off+n, v)
		}
	}
}

// fill sets s to uniform values in [lo, hi).
func fill(rng *rand.Rand, s []float32, lo, hi float64) {
	for i := range s {
		s[i] = float32(lo + (hi-lo)*rng.Float64())
	}
}

// sizes lists 0..64 and odd lengths up to 1536.
func sizes() []int {
	var ns []int
	for n := 0; n <= 64; n++ {
		ns = append(ns, n)
	}
	for _, n := range []int{65, 67, 95, 127, 129, 255, 257, 511, 513, 1023, 1025, 1533, 1535, 1536} {
		ns = append(ns, n)
	}
	return ns
}

func relErr(got float32, want float64) float64 {
	if want == 0 {
		return math.Abs(float64(got))
	}
	return math.Abs(float64(got)-want) / math.Abs(want)
}

// sameSpecial reports whether got and want are both NaN, or equal infinities,
// or both finite.
func sameSpecial(got float32, want float64) bool {
	g := float64(got)
	switch {
	case math.IsNaN(want) || math.IsNaN(g):
		return math.IsNaN(want) && math.IsNaN(g)
	case math.IsInf(want, 0) || math.IsInf(g, 0):
		return g == want
	}
	return true
}

func TestChoose(t *testing.T) {
	best := supported[0].name
	if got := choose("").name; got != best {
		t.Errorf("choose(\"\") = %s, want best %s", got, best)
	}
	if got := choose("no-such-path").name; got != best {
		t.Errorf("choose(unknown) = %s, want best %s", got, best)
	}
	for _, name := range allPaths {
		got := choose(name).name
		want := best
		for _, p := range supported {
			if p.name == name {
				want = name
			}
		}
		if got != want {
			t.Errorf("choose(%q) = %s, want %s", name, got, want)
		}
	}
	if supported[len(supported)-1] != generic {
		t.Errorf("generic must be the last supported path")
	}
}

// TestPathFromEnv checks that init honoured WPCDB_SIMD (run the suite under
// each value to cover every path's selection).
func TestPathFromEnv(t *testing.T) {
	want := choose(os.Getenv("WPCDB_SIMD")).name
	if Path() != want {
		t.Errorf("Path() = %s, want %s for WPCDB_SIMD=%q", Path(), want, os.Getenv("WPCDB_SIMD"))
	}
	t.Logf("active path %s (WPCDB_SIMD=%q, supported %v)", Path(), os.Getenv("WPCDB_SIMD"), supportedNames())
}

func supportedNames() []string {
	var ns []string
	for _, p := range supported {
		ns = append(ns, p.name)
	}
	return ns
}

// benchPaths runs f as a sub-benchmark per supported path.
func benchPaths(b *testing.B, f func(b *testing.B)) {
	saved := active
	defer func() { active = saved }()
	for _, name := range allPaths {
		if !setPath(name) {
			continue
		}
		b.Run(name, f)
	}
}
