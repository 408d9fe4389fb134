//go:build amd64 && !noasm

package simd

// archPanelWidth is the panel width of the active assembly path: its Gram
// micro-kernel's panel width nr (0 for the generic path).
func archPanelWidth() int {
	switch active {
	case avx512:
		return arch512.nr
	case avx2Impl:
		return arch256.nr
	}
	return 0
}

// archScorePanel scores one panel with the one-row Gram micro-kernel that
// spans the whole panel; false when the active path has none.
func archScorePanel(dst, q, panel []float32) bool {
	var kern gemmKernel
	switch active {
	case avx512:
		kern = gemmKernels512[1][2] // 1 row × 3 vectors of 16
	case avx2Impl:
		kern = gemmKernels256[1][1] // 1 row × 2 vectors of 8
	default:
		return false
	}
	kern(len(q), &q[0], 4*len(q), &panel[0], &dst[0], 4*len(dst), false)
	return true
}
