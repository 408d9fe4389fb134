//go:build amd64 && !noasm

package simd

// expAVX512 computes n/16 blocks of 16; expAVX2 n/8 blocks of 8.
//
//go:noescape
func expAVX512(dst, src *float32, n int)

//go:noescape
func expAVX2(dst, src *float32, n int)

// The wrappers call the assembly directly (not through a func value) so
// that the tail buffer stays on the stack: a call through a func value makes
// escape analysis move it to the heap, one allocation per call.

func exp512(dst, src []float32) {
	n := len(src) &^ 15
	if n > 0 {
		expAVX512(&dst[0], &src[0], n)
	}
	if t := len(src) - n; t > 0 {
		var buf [16]float32
		copy(buf[:], src[n:])
		expAVX512(&buf[0], &buf[0], 16)
		copy(dst[n:len(src)], buf[:t])
	}
}

func exp256(dst, src []float32) {
	n := len(src) &^ 7
	if n > 0 {
		expAVX2(&dst[0], &src[0], n)
	}
	if t := len(src) - n; t > 0 {
		var buf [8]float32
		copy(buf[:], src[n:])
		expAVX2(&buf[0], &buf[0], 8)
		copy(dst[n:len(src)], buf[:t])
	}
}
