package simd

// NibbleBlock is the number of codes in a block of ScanNibbles.
const NibbleBlock = 64

// MaxNibbleBytes bounds ScanNibbles' bytes per code, so that a sum of
// nb·254 fits a uint16.
const MaxNibbleBytes = 256

// ScanNibbles sums lookup tables over blocks of 64 codes of nb bytes each,
// stored transposed: byte p of code t of block b at codes[(b·nb+p)·64+t].
// Each byte's low and high nibble index their own 16-entry table, lut[p·32
// + n] and lut[p·32 + 16 + n]; code t of block b sums its 2·nb lookups
// (exactly, in integers) into s and sets out[b·64 + t] = base + step·s,
// rounded after the product and after the sum as Go's
// base + float32(step*float32(s)) is, the same on every path. Every table
// entry must be at most 127, and nb at most MaxNibbleBytes; it panics
// otherwise, or if a slice is shorter than blocks need. Safe for
// concurrent use; allocates nothing. This is a "fast scan" of
// product-quantized codes: 64 codes a shuffle, against 2·nb scalar
// lookups a code.
//
// The reference loop:
//
//	for b := 0; b < blocks; b++ {
//		for t := 0; t < 64; t++ {
//			var s uint16
//			for p := 0; p < nb; p++ {
//				c := codes[(b*nb+p)*64+t]
//				s += uint16(lut[p*32+int(c&15)]) + uint16(lut[p*32+16+int(c>>4)])
//			}
//			out[b*64+t] = base + float32(step*float32(s))
//		}
//	}
func ScanNibbles(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	if blocks < 0 || nb < 0 || nb > MaxNibbleBytes {
		panic("simd: ScanNibbles with a negative or too large dimension")
	}
	if len(out) < blocks*NibbleBlock || len(codes) < blocks*nb*NibbleBlock || len(lut) < nb*32 {
		panic("simd: ScanNibbles slice shorter than its blocks")
	}
	for _, v := range lut[:nb*32] {
		if v > 127 {
			panic("simd: ScanNibbles table entry above 127")
		}
	}
	if blocks == 0 {
		return
	}
	if nb == 0 {
		for i := range out[:blocks*NibbleBlock] {
			out[i] = base + float32(step*0)
		}
		return
	}
	active.scanNibbles(out, codes, blocks, nb, lut, base, step)
}

func scanNibblesGeneric(out []float32, codes []byte, blocks, nb int, lut []byte, base, step float32) {
	var acc [NibbleBlock]uint16
	for b := 0; b < blocks; b++ {
		clear(acc[:])
		blk := codes[b*nb*NibbleBlock : (b+1)*nb*NibbleBlock]
		for p := 0; p < nb; p++ {
			lo := (*[16]byte)(lut[p*32:])
			hi := (*[16]byte)(lut[p*32+16:])
			row := (*[NibbleBlock]byte)(blk[p*NibbleBlock:])
			for t, c := range row {
				acc[t] += uint16(lo[c&15] + hi[c>>4]) // ≤ 254: no byte overflow
			}
		}
		o := out[b*NibbleBlock : (b+1)*NibbleBlock]
		for t, s := range acc {
			o[t] = base + float32(step*float32(s))
		}
	}
}

// NibblesFast reports whether ScanNibbles runs in assembly on this path:
// the generic loop is several times slower than the scalar lookups it
// replaces, so callers keep their scalar path without it.
func NibblesFast() bool { return nibblesFast(active) }
