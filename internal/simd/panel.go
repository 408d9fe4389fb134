package simd

// Panels: vectors stored for a scan against one query. A panel holds
// PanelWidth() vectors of dimension d packed k-major, panel[k*W+c] being
// coordinate k of the panel's vector c: the layout the Gram micro-kernels
// read their packed operand in, so one kernel call scores a whole panel
// with broadcast FMAs and no horizontal sums (an index scan of small
// vectors is otherwise dominated by per-vector call and reduction costs).

// genericPanelWidth is the panel width of the pure-Go path.
const genericPanelWidth = 16

// PanelWidth is the number of vectors in a panel on the active path (48 on
// AVX-512, 16 on AVX2 and in pure Go). A layout made for one width must be
// scored with ScorePanel only while PanelWidth returns that width (paths
// change only in tests); ScorePanelGeneric serves any width.
func PanelWidth() int {
	if w := archPanelWidth(); w > 0 {
		return w
	}
	return genericPanelWidth
}

// ScorePanel sets dst[c] = <q, x_c> for the vectors of one panel, W =
// len(dst) = PanelWidth(), len(panel) = W·len(q). Safe for concurrent use;
// allocates nothing.
//
// The reference loop:
//
//	for c := range dst {
//		var s float32
//		for k := range q {
//			s += q[k] * panel[k*W+c]
//		}
//		dst[c] = s
//	}
func ScorePanel(dst, q, panel []float32) {
	w := len(dst)
	if len(panel) < w*len(q) {
		panic("simd: ScorePanel panel shorter than its vectors")
	}
	if len(q) == 0 {
		clear(dst)
		return
	}
	if w != PanelWidth() || !archScorePanel(dst, q, panel) {
		ScorePanelGeneric(dst, q, panel)
	}
}

// ScorePanelGeneric is ScorePanel's pure-Go path, for a panel of any width
// len(dst).
func ScorePanelGeneric(dst, q, panel []float32) {
	w := len(dst)
	clear(dst)
	for k, qk := range q {
		row := panel[k*w : k*w+w]
		for c, x := range row {
			dst[c] += qk * x
		}
	}
}
