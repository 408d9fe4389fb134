//go:build amd64 && !noasm

package simd

import "golang.org/x/sys/cpu"

//go:noescape
func scanNibbles512(out *float32, codes *byte, blocks int, nb int, lut *byte, base float32, step float32)

//go:noescape
func scanNibbles256(out *float32, codes *byte, blocks int, nb int, lut *byte, base float32, step float32)

func scanNibblesAVX512(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	scanNibbles512(&out[0], &codes[0], blocks, nb, &lut[0], base, step)
}

func scanNibblesAVX2(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	scanNibbles256(&out[0], &codes[0], blocks, nb, &lut[0], base, step)
}

// scanNibblesArch is the AVX-512 path's ScanNibbles: the 512-bit byte
// shuffles need AVX-512BW; a CPU without BW runs the AVX2 kernel.
func scanNibblesArch() func(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	if cpu.X86.HasAVX512BW {
		return scanNibblesAVX512
	}
	return scanNibblesAVX2
}

// nibblesFast: both assembly paths have a kernel.
func nibblesFast(p *impl) bool { return p == avx512 || p == avx2Impl }
