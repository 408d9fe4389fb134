//go:build amd64 && !noasm

package simd

//go:noescape
func rsqrtAVX512(dst, src *float32, n int)

//go:noescape
func rsqrtAVX2(dst, src *float32, n int)

// Direct calls keep the tail buffer on the stack (see exp512).

func rsqrt512(dst, src []float32) {
	n := len(src) &^ 15
	if n > 0 {
		rsqrtAVX512(&dst[0], &src[0], n)
	}
	if t := len(src) - n; t > 0 {
		var buf [16]float32
		copy(buf[:], src[n:])
		rsqrtAVX512(&buf[0], &buf[0], 16)
		copy(dst[n:len(src)], buf[:t])
	}
}

func rsqrt256(dst, src []float32) {
	n := len(src) &^ 7
	if n > 0 {
		rsqrtAVX2(&dst[0], &src[0], n)
	}
	if t := len(src) - n; t > 0 {
		var buf [8]float32
		copy(buf[:], src[n:])
		rsqrtAVX2(&buf[0], &buf[0], 8)
		copy(dst[n:len(src)], buf[:t])
	}
}
