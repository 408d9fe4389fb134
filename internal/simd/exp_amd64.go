//go:build amd64 && !noasm

package simd

// expAVX512 computes n/16 blocks of 16; expAVX2 n/8 blocks of 8.
//
//go:noescape
func expAVX512(dst, src *float32, n int)

//go:noescape
func expAVX2(dst, src *float32, n int)

func exp512(dst, src []float32) { expBlocks(dst, src, 16, expAVX512) }
func exp256(dst, src []float32) { expBlocks(dst, src, 8, expAVX2) }

// expBlocks runs kern over whole blocks of w and over a padded copy of the
// tail, so every element goes through the same instructions.
func expBlocks(dst, src []float32, w int, kern func(dst, src *float32, n int)) {
	n := len(src) &^ (w - 1)
	if n > 0 {
		kern(&dst[0], &src[0], n)
	}
	if t := len(src) - n; t > 0 {
		var buf [16]float32
		copy(buf[:], src[n:])
		kern(&buf[0], &buf[0], w)
		copy(dst[n:len(src)], buf[:t])
	}
}
