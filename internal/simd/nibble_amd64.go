//go:build amd64 && !noasm

package simd

import "golang.org/x/sys/cpu"

//go:noescape
func scanNibbles512(out *float32, codes *byte, blocks int, nb int, lut *byte, base float32, step float32)

func scanNibblesAVX512(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	scanNibbles512(&out[0], &codes[0], blocks, nb, &lut[0], base, step)
}

// scanNibblesArch is the AVX-512 path's ScanNibbles: the byte shuffles
// need AVX-512BW (the AVX2 path and CPUs without BW use the generic loop).
func scanNibblesArch() func(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	if cpu.X86.HasAVX512BW {
		return scanNibblesAVX512
	}
	return scanNibblesGeneric
}

func nibblesFast(p *impl) bool { return p == avx512 && cpu.X86.HasAVX512BW }
