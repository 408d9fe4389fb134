//go:build amd64 && !noasm

package simd

// maxSimKernel folds a tile of rows of X into the running maxima of some
// query lanes (see asm/gen.go's maxArch): best[l] = max(best[l],
// max_r inv[r]·Σ_k p[k·16+l]·x[r·ldx+k]), inv nil meaning 1; p's second
// vector of lanes is pstride bytes on (AVX-512) or 32 (AVX2).
type maxSimKernel func(kd int, p *float32, pstride int, x *float32, ldx int, inv *float32, best *float32)

// maxSimArch is one instruction set's MaxSim tiling.
type maxSimArch struct {
	w, maxR, maxV int
	kernels       func(r, v int) maxSimKernel
}

var (
	maxSim512Arch = maxSimArch{w: 16, maxR: 12, maxV: 2,
		kernels: func(r, v int) maxSimKernel { return maxSimKernels512[r][v-1] }}
	maxSim256Arch = maxSimArch{w: 8, maxR: 6, maxV: 2,
		kernels: func(r, v int) maxSimKernel { return maxSimKernels256[r][v-1] }}
)

func maxSim512(dst []float32, q *MaxSimQuery, x []float32, m int, inv []float32) {
	maxSimTiles(&maxSim512Arch, dst, q, x, m, inv)
}

func maxSim256(dst []float32, q *MaxSimQuery, x []float32, m int, inv []float32) {
	maxSimTiles(&maxSim256Arch, dst, q, x, m, inv)
}

// maxSimTiles runs the kernels over panels of up to maxV·w lanes (the
// last one narrowed to the vectors holding real rows), each against every
// row of X in near-equal tiles of at most maxR rows (180 rows at maxR 12
// are 15 tiles of 12, 185 are 5 of 12 and 11 of 11, never a latency-bound
// remainder of 5).
func maxSimTiles(ar *maxSimArch, dst []float32, q *MaxSimQuery, x []float32, m int, inv []float32) {
	d := q.d
	panel := ar.w * ar.maxV
	pstride := maxSimLanes * d * 4
	nt := (m + ar.maxR - 1) / ar.maxR
	for l0 := 0; l0 < q.n; l0 += panel {
		vecs := min(ar.maxV, (q.n-l0+ar.w-1)/ar.w)
		// A panel starts a 16-lane block (panel is 16 or 32 lanes).
		p := &q.packed[l0*d]
		j0 := 0
		for t := 0; t < nt; t++ {
			rows := m / nt
			if t < m%nt {
				rows++
			}
			var ip *float32
			if inv != nil {
				ip = &inv[j0]
			}
			ar.kernels(rows, vecs)(d, p, pstride, &x[j0*d], d*4, ip, &dst[l0])
			j0 += rows
		}
	}
}
