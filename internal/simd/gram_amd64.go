//go:build amd64 && !noasm

package simd

import (
	"sync"
	"unsafe"
)

// gemmKernel computes one tile: for r < rows and c < v*w,
// C[r][c] (+)= Σ_{k<kc} A[r][k] · B[k][c], with A rows lda bytes apart
// (Q itself, unpacked), B a packed panel (nr floats per k) and C rows ldc
// bytes apart. acc adds into C instead of overwriting it.
type gemmKernel func(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)

// gemmArch is one instruction set's tiling.
type gemmArch struct {
	mr, nr, w int                                               // most rows per tile, panel width, floats per vector
	kernel    func(rows, vecs int) gemmKernel                   // the rows×vecs micro-kernel
	transpose func(dst *float32, src *float32, ldx int, kb int) // w×w blocks of w rows of X into a panel
}

var (
	arch512 = gemmArch{mr: 9, nr: 48, w: 16,
		kernel:    func(r, v int) gemmKernel { return gemmKernels512[r][v-1] },
		transpose: transpose512}
	arch256 = gemmArch{mr: 6, nr: 16, w: 8,
		kernel:    func(r, v int) gemmKernel { return gemmKernels256[r][v-1] },
		transpose: transpose256}
)

// gemmKC is the depth of one packed panel: 48 floats × 256 × 4 B = 48 KiB
// (AVX-512), about L1 on Zen 5, where every row block of Q streams past it;
// 128 and 512 measured no better at the paper's shape.
const gemmKC = 256

const (
	maxNR = 48
	maxMR = 9
	maxW  = 16
	// scratch holds one panel, one edge tile and the padded ragged rows of
	// a panel (pack), plus slack to align to 64 B.
	scratchLen = gemmKC*maxNR + maxMR*maxNR + maxW*gemmKC + 16
)

var gemmScratch = sync.Pool{New: func() any {
	s := make([]float32, scratchLen)
	return &s
}}

// align64 returns s from its first 64-byte aligned element on.
func align64(s []float32) []float32 {
	off := (64 - uintptr(unsafe.Pointer(&s[0]))%64) % 64 / 4
	return s[off:]
}

func gram512(dst, q []float32, n int, x []float32, m, d int) {
	gramPacked(&arch512, dst, q, n, x, m, d)
}

func gram256(dst, q []float32, n int, x []float32, m, d int) {
	gramPacked(&arch256, dst, q, n, x, m, d)
}

// gramPacked is the BLIS-style driver. For each panel of nr rows of X and
// each depth block of gemmKC, X is packed k-major (the transpose the
// broadcast-FMA kernel needs), then every row block of Q is multiplied
// against it straight from Q's own layout. Panels go outermost so the dst
// tiles of a panel stay in cache across depth blocks, and X is read once.
func gramPacked(ar *gemmArch, dst, q []float32, n int, x []float32, m, d int) {
	if d == 0 {
		clear(dst[:n*m])
		return
	}
	sp := gemmScratch.Get().(*[]float32)
	buf := align64(*sp)
	panel := buf[:gemmKC*ar.nr]
	tile := buf[gemmKC*maxNR : gemmKC*maxNR+maxMR*maxNR]
	pad := buf[gemmKC*maxNR+maxMR*maxNR : gemmKC*maxNR+maxMR*maxNR+maxW*gemmKC]
	// Split the rows into as few blocks as possible, of near-equal size, so
	// no block is a tiny latency-bound remainder (77 rows = 5×9 + 4×8 at
	// mr = 9, not 8×9 + 5).
	nb := (n + ar.mr - 1) / ar.mr
	for j0 := 0; j0 < m; j0 += ar.nr {
		cols := min(ar.nr, m-j0)
		vecs := (cols + ar.w - 1) / ar.w
		for k0 := 0; k0 < d; k0 += gemmKC {
			kc := min(gemmKC, d-k0)
			ar.pack(panel, pad, x, j0, cols, k0, kc, d)
			acc := k0 > 0
			i0 := 0
			for b := 0; b < nb; b++ {
				rows := n / nb
				if b < n%nb {
					rows++
				}
				kern := ar.kernel(rows, vecs)
				a := &q[i0*d+k0]
				if cols == vecs*ar.w {
					kern(kc, a, d*4, &panel[0], &dst[i0*m+j0], m*4, acc)
				} else {
					// A ragged edge panel: compute the tile aside, keep cols.
					kern(kc, a, d*4, &panel[0], &tile[0], ar.nr*4, false)
					for r := 0; r < rows; r++ {
						drow := dst[(i0+r)*m+j0 : (i0+r)*m+j0+cols]
						trow := tile[r*ar.nr : r*ar.nr+cols]
						if acc {
							for c := range drow {
								drow[c] += trow[c]
							}
						} else {
							copy(drow, trow)
						}
					}
				}
				i0 += rows
			}
		}
	}
	gemmScratch.Put(sp)
}

// pack writes rows j0..j0+cols-1, columns k0..k0+kc-1 of X (m×d) into panel
// k-major: panel[k*nr+c] = x[(j0+c)*d+k0+k], zero for c ≥ cols up to the
// last vector the kernel reads (the rest of the panel row is never read).
// pad is scratch of w×gemmKC floats.
//
// Whole groups of w rows of X and whole blocks of w columns go through the
// assembly transpose; a ragged group of rows is copied into pad, zero
// rows below it, and transposed too. Measured (BenchmarkSearchSmall,
// items of 4–16 points, d = 64): the ragged group was copied an element at
// a time and the whole 48-float panel row cleared, which made packing a
// tenth of a search, more than the Gram products themselves.
func (ar *gemmArch) pack(panel, pad, x []float32, j0, cols, k0, kc, d int) {
	nr, w := ar.nr, ar.w
	full := cols / w * w
	end := min(nr, (cols+w-1)/w*w) // the columns the kernel reads
	kb := kc / w
	done := 0 // columns written for k < kb·w
	if kb > 0 {
		for h := 0; h < full; h += w {
			ar.transpose(&panel[h], &x[(j0+h)*d+k0], d*4, kb)
		}
		done = full
		if rest := cols - full; rest > 0 {
			kw := kb * w
			for r := 0; r < rest; r++ {
				copy(pad[r*kw:(r+1)*kw], x[(j0+full+r)*d+k0:])
			}
			clear(pad[rest*kw : w*kw])
			ar.transpose(&panel[full], &pad[0], kw*4, kb)
			done = end
		}
	}
	for k := 0; k < kc; k++ {
		c0 := done
		if k >= kb*w {
			c0 = 0
		}
		if c0 >= end {
			continue
		}
		p := panel[k*nr : k*nr+end]
		for c := c0; c < cols; c++ {
			p[c] = x[(j0+c)*d+k0+k]
		}
		clear(p[max(c0, cols):])
	}
}
