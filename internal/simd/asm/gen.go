//go:build ignore

// Command gen writes the register-blocked GEMM micro-kernels and the panel
// transposes of package simd as Plan 9 assembly, plus their Go declarations.
// The kernels are unrolled per row count and vector count, which is tedious
// and error-prone by hand and trivial to print.
//
// Run from internal/simd with `go generate` (see gram.go); the output is
// checked in, so a normal build needs neither this program nor any tool.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"os"
	"path/filepath"
)

// arch describes one instruction set's micro-kernel shape.
type arch struct {
	name   string // suffix of the generated names: "512" or "256"
	reg    string // vector register prefix: "Z" or "Y"
	w      int    // floats per vector
	maxR   int    // most rows of Q per tile (MR)
	maxV   int    // vectors per tile row (NR = maxV*w)
	zero   string // instruction that zeroes a register with itself
	bcast0 int    // first broadcast register (two are used, alternating)
	b0     int    // first register holding a row of the packed X panel
}

var archs = []arch{
	// 9 rows × 3 zmm: 27 accumulators + 3 B + 2 broadcast = 32 registers.
	// Fewer loads per FMA than 14 × 2 (11 per 27 FMAs, not 16 per 28):
	// a few percent faster on Zen 5, most at the 200-item batch. Folding the
	// broadcast into the FMA ({1to16}) measured ~10% slower there.
	{name: "512", reg: "Z", w: 16, maxR: 9, maxV: 3, zero: "VPXORD", bcast0: 30, b0: 27},
	// 6 rows × 2 ymm: 12 accumulators + 2 B + 2 broadcast = 16 registers
	// (the classic Haswell 6×16 sgemm tile).
	{name: "256", reg: "Y", w: 8, maxR: 6, maxV: 2, zero: "VXORPS", bcast0: 14, b0: 12},
}

type writer struct{ bytes.Buffer }

func (w *writer) p(format string, args ...any) { fmt.Fprintf(&w.Buffer, format+"\n", args...) }

// kernelTable declares the tile kernels name(r, v) for r ≤ maxR rows and
// v ≤ maxV vectors with the signature sig, then the table varName of type
// typ indexed [r][v-1], documented by doc.
func (w *writer) kernelTable(name func(r, v int) string, maxR, maxV int, sig, doc, varName, typ string) {
	for r := 1; r <= maxR; r++ {
		for v := 1; v <= maxV; v++ {
			w.p("//go:noescape")
			w.p("func %s%s", name(r, v), sig)
			w.p("")
		}
	}
	w.p("// %s", doc)
	w.p("var %s = [%d][%d]%s{", varName, maxR+1, maxV, typ)
	for r := 1; r <= maxR; r++ {
		w.p("\t%d: {", r)
		for v := 1; v <= maxV; v++ {
			w.p("\t\t%s,", name(r, v))
		}
		w.p("\t},")
	}
	w.p("}")
	w.p("")
}

// rowAddr returns the memory operand of row r of Q at byte displacement off.
// Rows are reached from three base registers five rows apart, with BX = lda
// and CX = 3*lda as index registers (OpenBLAS's trick, so Q needs no packing).
func rowAddr(r, off int) string {
	bases := []string{"SI", "R8", "R9"}
	base := bases[r/5]
	idx := []string{"", "(BX*1)", "(BX*2)", "(CX*1)", "(BX*4)"}[r%5]
	d := ""
	if off != 0 {
		d = fmt.Sprint(off)
	}
	return fmt.Sprintf("%s(%s)%s", d, base, idx)
}

// tileRegs is the register layout of a tile kernel: the rows×vecs
// accumulators from register 0 (row-major), the vecs B vectors from b0
// and two broadcast registers from bcast0, used alternately.
type tileRegs struct {
	reg, zero  string // register prefix; the instruction zeroing a register with itself
	b0, bcast0 int
}

// fmaLoop writes the loop the gemm and maxsim tile kernels share, after
// their arguments are loaded (SI the first row, BX the row stride, DX the
// k steps, DI the B vectors): the other rows' pointers (CX = 3·BX, R8 row
// 5, R9 row 10), the accumulators zeroed, then for each k step, unrolled
// by 4, acc(r, v) += row r's element · B vector v (loadB(u, v) is its
// memory operand at unrolled step u), DI advancing bStep bytes a step. It
// jumps to done when no step is left.
func fmaLoop(w *writer, g tileRegs, rows, vecs int, loadB func(u, v int) string, bStep int, done string) {
	reg := func(i int) string { return fmt.Sprintf("%s%d", g.reg, i) }
	acc := func(r, v int) string { return reg(r*vecs + v) }
	w.p("\tLEAQ (BX)(BX*2), CX")
	if rows > 5 {
		w.p("\tLEAQ (SI)(BX*4), R8")
		w.p("\tADDQ BX, R8")
	}
	if rows > 10 {
		w.p("\tLEAQ (R8)(BX*4), R9")
		w.p("\tADDQ BX, R9")
	}
	for r := 0; r < rows; r++ {
		for v := 0; v < vecs; v++ {
			w.p("\t%s %s, %s, %s", g.zero, acc(r, v), acc(r, v), acc(r, v))
		}
	}
	step := func(u int) {
		for v := 0; v < vecs; v++ {
			w.p("\tVMOVUPS %s, %s", loadB(u, v), reg(g.b0+v))
		}
		for r := 0; r < rows; r++ {
			bc := reg(g.bcast0 + r%2)
			w.p("\tVBROADCASTSS %s, %s", rowAddr(r, u*4), bc)
			for v := 0; v < vecs; v++ {
				w.p("\tVFMADD231PS %s, %s, %s", reg(g.b0+v), bc, acc(r, v))
			}
		}
	}
	advance := func(k int) {
		w.p("\tADDQ $%d, SI", 4*k)
		if rows > 5 {
			w.p("\tADDQ $%d, R8", 4*k)
		}
		if rows > 10 {
			w.p("\tADDQ $%d, R9", 4*k)
		}
		w.p("\tADDQ $%d, DI", bStep*k)
	}
	const unroll = 4
	w.p("\tCMPQ DX, $%d", unroll)
	w.p("\tJL tail")
	w.p("loop:")
	for u := 0; u < unroll; u++ {
		step(u)
	}
	advance(unroll)
	w.p("\tSUBQ $%d, DX", unroll)
	w.p("\tCMPQ DX, $%d", unroll)
	w.p("\tJGE loop")
	w.p("tail:")
	w.p("\tTESTQ DX, DX")
	w.p("\tJZ %s", done)
	w.p("tail1:")
	step(0)
	advance(1)
	w.p("\tDECQ DX")
	w.p("\tJNZ tail1")
}

func (a arch) kernelName(r, v int) string { return fmt.Sprintf("gemm%sR%dV%d", a.name, r, v) }

func (a arch) kernel(w *writer, rows, vecs int) {
	nrBytes := a.w * a.maxV * 4 // bytes per k step of the packed panel
	reg := func(i int) string { return fmt.Sprintf("%s%d", a.reg, i) }
	acc := func(r, v int) string { return reg(r*vecs + v) }
	name := a.kernelName(rows, vecs)
	w.p("// func %s(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)", name)
	w.p("TEXT ·%s(SB), NOSPLIT, $0-49", name)
	w.p("\tMOVQ kc+0(FP), DX")
	w.p("\tMOVQ a+8(FP), SI")
	w.p("\tMOVQ lda+16(FP), BX")
	w.p("\tMOVQ b+24(FP), DI")
	fmaLoop(w, tileRegs{a.reg, a.zero, a.b0, a.bcast0}, rows, vecs, func(u, v int) string {
		return fmt.Sprintf("%d(DI)", u*nrBytes+v*a.w*4)
	}, nrBytes, "store")
	w.p("store:")
	w.p("\tMOVQ c+32(FP), R10")
	w.p("\tMOVQ ldc+40(FP), R11")
	w.p("\tMOVBLZX acc+48(FP), AX")
	w.p("\tTESTQ AX, AX")
	w.p("\tJZ overwrite")
	for r := 0; r < rows; r++ {
		for v := 0; v < vecs; v++ {
			w.p("\tVADDPS %d(R10), %s, %s", v*a.w*4, acc(r, v), acc(r, v))
			w.p("\tVMOVUPS %s, %d(R10)", acc(r, v), v*a.w*4)
		}
		if r+1 < rows {
			w.p("\tADDQ R11, R10")
		}
	}
	w.p("\tVZEROUPPER")
	w.p("\tRET")
	w.p("overwrite:")
	for r := 0; r < rows; r++ {
		for v := 0; v < vecs; v++ {
			w.p("\tVMOVUPS %s, %d(R10)", acc(r, v), v*a.w*4)
		}
		if r+1 < rows {
			w.p("\tADDQ R11, R10")
		}
	}
	w.p("\tVZEROUPPER")
	w.p("\tRET")
	w.p("")
}

// maxArch describes one instruction set's fused MaxSim kernel shape: a
// tile of rows of X against vecs vectors of packed query lanes (blocks of
// 16 lanes, k-major, 64 bytes a k step), each entry's inner product
// summed by FMA in k order, scaled by its row's inv and folded into the
// running maxima.
type maxArch struct {
	name   string
	reg    string
	w      int // floats per vector
	maxR   int // most rows of X per tile
	maxV   int // most vectors of lanes per tile
	zero   string
	b0     int // first register holding a vector of query lanes
	bcast0 int // first broadcast register (two, alternating)
	// vecAddr is the memory operand of vector v of the lanes at k step u.
	vecAddr func(u, v int) string
}

var maxArchs = []maxArch{
	// 12 rows × 2 zmm (32 query lanes, ColBERT's query length): 24
	// accumulators + 2 lanes + 2 broadcasts = 28 registers; 14 loads per
	// 24 FMAs. The second vector is the next 16-lane block, pstride
	// (R12) bytes on.
	{name: "512", reg: "Z", w: 16, maxR: 12, maxV: 2, zero: "VPXORD", b0: 24, bcast0: 26,
		vecAddr: func(u, v int) string {
			if v == 0 {
				return fmt.Sprintf("%d(DI)", 64*u)
			}
			return fmt.Sprintf("%d(DI)(R12*1)", 64*u)
		}},
	// 6 rows × 2 ymm (one 16-lane block): 12 accumulators + 2 + 2 = 16.
	{name: "256", reg: "Y", w: 8, maxR: 6, maxV: 2, zero: "VXORPS", b0: 12, bcast0: 14,
		vecAddr: func(u, v int) string { return fmt.Sprintf("%d(DI)", 64*u+32*v) }},
}

func (a maxArch) kernelName(r, v int) string { return fmt.Sprintf("maxsim%sR%dV%d", a.name, r, v) }

// kernel writes maxsim{name}R{rows}V{vecs}: best[l] = max(best[l],
// max_r inv[r]·Σ_k p[k][l]·x[r][k]) for the tile's lanes l, inv nil
// meaning 1.
func (a maxArch) kernel(w *writer, rows, vecs int) {
	reg := func(i int) string { return fmt.Sprintf("%s%d", a.reg, i) }
	acc := func(r, v int) string { return reg(r*vecs + v) }
	name := a.kernelName(rows, vecs)
	w.p("// func %s(kd int, p *float32, pstride int, x *float32, ldx int, inv *float32, best *float32)", name)
	w.p("TEXT ·%s(SB), NOSPLIT, $0-56", name)
	w.p("\tMOVQ kd+0(FP), DX")
	w.p("\tMOVQ p+8(FP), DI")
	w.p("\tMOVQ pstride+16(FP), R12")
	w.p("\tMOVQ x+24(FP), SI")
	w.p("\tMOVQ ldx+32(FP), BX")
	fmaLoop(w, tileRegs{a.reg, a.zero, a.b0, a.bcast0}, rows, vecs, a.vecAddr, 64, "scale")
	// Scale each row by its inv (skipped when inv is nil), then fold the
	// rows into the first row's registers and those into best.
	w.p("scale:")
	w.p("\tMOVQ inv+40(FP), AX")
	w.p("\tTESTQ AX, AX")
	w.p("\tJZ fold")
	for r := 0; r < rows; r++ {
		bc := reg(a.bcast0 + r%2)
		w.p("\tVBROADCASTSS %d(AX), %s", 4*r, bc)
		for v := 0; v < vecs; v++ {
			w.p("\tVMULPS %s, %s, %s", bc, acc(r, v), acc(r, v))
		}
	}
	w.p("fold:")
	// A pairwise tree over the rows: log2(rows) dependent maxima.
	for span := 1; span < rows; span *= 2 {
		for r := 0; r+span < rows; r += 2 * span {
			for v := 0; v < vecs; v++ {
				w.p("\tVMAXPS %s, %s, %s", acc(r+span, v), acc(r, v), acc(r, v))
			}
		}
	}
	w.p("\tMOVQ best+48(FP), AX")
	for v := 0; v < vecs; v++ {
		w.p("\tVMAXPS %d(AX), %s, %s", v*a.w*4, acc(0, v), acc(0, v))
		w.p("\tVMOVUPS %s, %d(AX)", acc(0, v), v*a.w*4)
	}
	w.p("\tVZEROUPPER")
	w.p("\tRET")
	w.p("")
}

// transpose512 writes transpose16x16x512: kb blocks of 16 rows × 16 floats
// of X (row stride ldx bytes) into k-major rows of a packed panel whose rows
// are 128 bytes apart (a 32-float panel; the caller packs each 16-row half).
func transpose512(w *writer, nr int) {
	transposeEntry(w, "transpose512")
	w.p("\tLEAQ (R8)(BX*4), R9")
	w.p("\tADDQ BX, R9")
	w.p("\tLEAQ (R9)(BX*4), R10")
	w.p("\tADDQ BX, R10")
	w.p("\tTESTQ DX, DX")
	w.p("\tJZ done")
	w.p("loop:")
	z := func(i int) string { return fmt.Sprintf("Z%d", i) }
	for r := 0; r < 16; r++ {
		addr, ahead := "(R10)", fmt.Sprintf("%d(R10)", prefetchAhead)
		if r < 15 {
			addr, ahead = rowAddr(r, 0), rowAddr(r, prefetchAhead)
		}
		w.p("\tVMOVUPS %s, %s", addr, z(r))
		if prefetchAhead > 0 {
			w.p("\tPREFETCHT0 %s", ahead)
		}
	}
	// Stage 1: interleave row pairs within 128-bit lanes.
	for p := 0; p < 8; p++ {
		w.p("\tVUNPCKLPS %s, %s, %s", z(2*p+1), z(2*p), z(16+2*p))
		w.p("\tVUNPCKHPS %s, %s, %s", z(2*p+1), z(2*p), z(16+2*p+1))
	}
	// Stage 2: b[4g+c] lane L = rows 4g..4g+3 at column 4L+c.
	for g := 0; g < 4; g++ {
		a := 16 + 4*g
		w.p("\tVUNPCKLPD %s, %s, %s", z(a+2), z(a), z(4*g+0))
		w.p("\tVUNPCKHPD %s, %s, %s", z(a+2), z(a), z(4*g+1))
		w.p("\tVUNPCKLPD %s, %s, %s", z(a+3), z(a+1), z(4*g+2))
		w.p("\tVUNPCKHPD %s, %s, %s", z(a+3), z(a+1), z(4*g+3))
	}
	// Stages 3 and 4: a 4×4 transpose of 128-bit lanes for each c.
	for c := 0; c < 4; c++ {
		p, q, r, s := 16+4*c, 17+4*c, 18+4*c, 19+4*c
		w.p("\tVSHUFF32X4 $0x44, %s, %s, %s", z(4+c), z(c), z(p))
		w.p("\tVSHUFF32X4 $0xEE, %s, %s, %s", z(4+c), z(c), z(q))
		w.p("\tVSHUFF32X4 $0x44, %s, %s, %s", z(12+c), z(8+c), z(r))
		w.p("\tVSHUFF32X4 $0xEE, %s, %s, %s", z(12+c), z(8+c), z(s))
	}
	for c := 0; c < 4; c++ {
		p, q, r, s := 16+4*c, 17+4*c, 18+4*c, 19+4*c
		w.p("\tVSHUFF32X4 $0x88, %s, %s, %s", z(r), z(p), z(c))
		w.p("\tVSHUFF32X4 $0xDD, %s, %s, %s", z(r), z(p), z(4+c))
		w.p("\tVSHUFF32X4 $0x88, %s, %s, %s", z(s), z(q), z(8+c))
		w.p("\tVSHUFF32X4 $0xDD, %s, %s, %s", z(s), z(q), z(12+c))
	}
	for j := 0; j < 16; j++ {
		w.p("\tVMOVUPS %s, %d(DI)", z(j), j*nr*4)
	}
	w.p("\tADDQ $64, SI")
	w.p("\tADDQ $64, R8")
	w.p("\tADDQ $64, R9")
	w.p("\tADDQ $64, R10")
	w.p("\tADDQ $%d, DI", 16*nr*4)
	transposeExit(w)
}

// transpose256 is transpose512's AVX2 twin: 8×8 blocks into a 16-float
// panel (rows 64 bytes apart).
func transpose256(w *writer) {
	transposeEntry(w, "transpose256")
	w.p("\tTESTQ DX, DX")
	w.p("\tJZ done")
	w.p("loop:")
	y := func(i int) string { return fmt.Sprintf("Y%d", i) }
	for r := 0; r < 8; r++ {
		w.p("\tVMOVUPS %s, %s", rowAddr(r, 0), y(r))
	}
	for p := 0; p < 4; p++ {
		w.p("\tVUNPCKLPS %s, %s, %s", y(2*p+1), y(2*p), y(8+2*p))
		w.p("\tVUNPCKHPS %s, %s, %s", y(2*p+1), y(2*p), y(8+2*p+1))
	}
	for g := 0; g < 2; g++ {
		a := 8 + 4*g
		w.p("\tVSHUFPS $0x44, %s, %s, %s", y(a+2), y(a), y(4*g+0))
		w.p("\tVSHUFPS $0xEE, %s, %s, %s", y(a+2), y(a), y(4*g+1))
		w.p("\tVSHUFPS $0x44, %s, %s, %s", y(a+3), y(a+1), y(4*g+2))
		w.p("\tVSHUFPS $0xEE, %s, %s, %s", y(a+3), y(a+1), y(4*g+3))
	}
	for c := 0; c < 4; c++ {
		w.p("\tVPERM2F128 $0x20, %s, %s, %s", y(4+c), y(c), y(8+c))
		w.p("\tVPERM2F128 $0x31, %s, %s, %s", y(4+c), y(c), y(12+c))
	}
	for j := 0; j < 8; j++ {
		w.p("\tVMOVUPS %s, %d(DI)", y(8+j), j*64)
	}
	w.p("\tADDQ $32, SI")
	w.p("\tADDQ $32, R8")
	w.p("\tADDQ $512, DI")
	transposeExit(w)
}

// transposeEntry writes a transpose's header and loads its arguments:
// DI = dst, SI = src (row 0 of X), BX = ldx, DX = kb, CX = 3·ldx and
// R8 = row 5 of X (SI + 5·ldx).
func transposeEntry(w *writer, name string) {
	w.p("// func %s(dst *float32, src *float32, ldx int, kb int)", name)
	w.p("TEXT ·%s(SB), NOSPLIT, $0-32", name)
	w.p("\tMOVQ dst+0(FP), DI")
	w.p("\tMOVQ src+8(FP), SI")
	w.p("\tMOVQ ldx+16(FP), BX")
	w.p("\tMOVQ kb+24(FP), DX")
	w.p("\tLEAQ (BX)(BX*2), CX")
	w.p("\tLEAQ (SI)(BX*4), R8")
	w.p("\tADDQ BX, R8")
}

// transposeExit closes a transpose's loop over the kb blocks and returns.
func transposeExit(w *writer) {
	w.p("\tDECQ DX")
	w.p("\tJNZ loop")
	w.p("done:")
	w.p("\tVZEROUPPER")
	w.p("\tRET")
	w.p("")
}

// prefetchAhead is how far ahead in each row of X the transpose asks for
// data: X streams from memory once per call (80 MB for 200 stacked items),
// in 32 interleaved row streams the hardware prefetcher does not follow.
var prefetchAhead = 256

const header = "// Code generated by asm/gen.go. DO NOT EDIT.\n\n"

func main() {
	out := flag.String("out", ".", "directory to write zgemm_amd64.{s,go} into")
	flag.Parse()

	var s writer
	s.WriteString(header)
	s.p("//go:build amd64 && !noasm")
	s.p("")
	s.p("#include \"textflag.h\"")
	s.p("")
	for _, a := range archs {
		for r := 1; r <= a.maxR; r++ {
			for v := 1; v <= a.maxV; v++ {
				a.kernel(&s, r, v)
			}
		}
	}
	transpose512(&s, archs[0].maxV*archs[0].w)
	transpose256(&s)
	for _, a := range maxArchs {
		for r := 1; r <= a.maxR; r++ {
			for v := 1; v <= a.maxV; v++ {
				a.kernel(&s, r, v)
			}
		}
	}

	var g writer
	g.WriteString(header)
	g.p("//go:build amd64 && !noasm")
	g.p("")
	g.p("package simd")
	g.p("")
	for _, a := range archs {
		g.kernelTable(a.kernelName, a.maxR, a.maxV, "(kc int, a *float32, lda int, b *float32, c *float32, ldc int, acc bool)",
			fmt.Sprintf("gemmKernels%s[r][v-1] computes an r-row tile, v vectors of %d floats wide.", a.name, a.w),
			"gemmKernels"+a.name, "gemmKernel")
	}
	g.p("//go:noescape")
	g.p("func transpose512(dst *float32, src *float32, ldx int, kb int)")
	g.p("")
	g.p("//go:noescape")
	g.p("func transpose256(dst *float32, src *float32, ldx int, kb int)")
	g.p("")
	for _, a := range maxArchs {
		g.kernelTable(a.kernelName, a.maxR, a.maxV, "(kd int, p *float32, pstride int, x *float32, ldx int, inv *float32, best *float32)",
			fmt.Sprintf("maxSimKernels%s[r][v-1] folds an r-row tile into v vectors of %d lanes.", a.name, a.w),
			"maxSimKernels"+a.name, "maxSimKernel")
	}
	src, err := format.Source(g.Bytes())
	if err != nil {
		log.Fatalf("gofmt generated Go: %v\n%s", err, g.Bytes())
	}
	if err := os.WriteFile(filepath.Join(*out, "zgemm_amd64.s"), s.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*out, "zgemm_amd64.go"), src, 0o644); err != nil {
		log.Fatal(err)
	}
}
