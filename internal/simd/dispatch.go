package simd

import "os"

// Path names, as accepted by WPCDB_SIMD and returned by Path.
const (
	PathAVX512  = "avx512"
	PathAVX2    = "avx2"
	PathGeneric = "generic"
)

// impl is one complete set of kernels: every exported function forwards to
// the active impl, so a path is switched as a whole.
type impl struct {
	name        string
	gram        func(dst, q []float32, n int, x []float32, m, d int)
	maxSim      func(dst []float32, q *MaxSimQuery, x []float32, m int, inv []float32)
	gram64      func(dst, q []float64, n int, x []float32, m, d int)
	norms64     func(dst []float64, x []float32, m, d int)
	dist64      func(dst []float32, q, qn []float64, n int, x []float32, xn []float64, m, d int, scale float64)
	exp         func(dst, src []float32)
	cosAdd      func(dst, p, b []float32, w float32, acc bool)
	rsqrt       func(dst, src []float32)
	dot         func(a, b []float32) float32
	dotI8       func(a, b []int8) int32
	panelI8     func(out []int32, q []uint8, panels []int8, groups, npanels int)
	f16ToF32    func(dst []float32, src []uint16)
	f32ToF16    func(dst []uint16, src []float32)
	scanNibbles func(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32)
}

var generic = &impl{
	name:        PathGeneric,
	gram:        gramGeneric,
	maxSim:      maxSimGeneric,
	gram64:      gram64Generic,
	norms64:     norms64Generic,
	dist64:      dist64Compose(gram64Generic),
	exp:         expGeneric,
	cosAdd:      cosAddGeneric,
	rsqrt:       rsqrtGeneric,
	dot:         dotGeneric,
	dotI8:       dotI8Generic,
	panelI8:     panelI8Generic,
	f16ToF32:    f16ToF32Generic,
	f32ToF16:    f32ToF16Generic,
	scanNibbles: scanNibblesGeneric,
}

// supported lists the paths this CPU and build can run, best first; the
// generic path is always last.
var supported = append(archImpls(), generic)

// active is the path in use, chosen once at init.
var active = choose(os.Getenv("WPCDB_SIMD"))

// choose returns the supported path named want, or the best one.
func choose(want string) *impl {
	for _, p := range supported {
		if p.name == want {
			return p
		}
	}
	return supported[0]
}

// Path reports which kernels are in use: "avx512", "avx2" or "generic".
func Path() string { return active.name }

// setPath switches to the named path for tests and benchmarks. It reports
// false, and changes nothing, if the path is not supported here. Not safe
// for concurrent use with the kernels.
func setPath(name string) bool {
	for _, p := range supported {
		if p.name == name {
			active = p
			return true
		}
	}
	return false
}
