//go:build amd64 && !noasm

package simd

// f16ToF32AVX512 converts n halves, n a multiple of 16 (f16ToF32AVX2: of 8).
//
//go:noescape
func f16ToF32AVX512(dst *float32, src *uint16, n int)

//go:noescape
func f16ToF32AVX2(dst *float32, src *uint16, n int)

func f16ToF32512(dst []float32, src []uint16) { f16Blocks(dst, src, 16, f16ToF32AVX512) }
func f16ToF32256(dst []float32, src []uint16) { f16Blocks(dst, src, 8, f16ToF32AVX2) }

// f16Blocks converts whole blocks with kern and the tail in Go (the
// conversion is exact, so both agree bit for bit).
func f16Blocks(dst []float32, src []uint16, w int, kern func(dst *float32, src *uint16, n int)) {
	n := len(src) &^ (w - 1)
	if n > 0 {
		kern(&dst[0], &src[0], n)
	}
	f16ToF32Generic(dst[n:len(src)], src[n:])
}

// f32ToF16AVX512 narrows n floats, n a multiple of 16 (f32ToF16AVX2: of 8),
// rounding to nearest even (F16C's VCVTPS2PH).
//
//go:noescape
func f32ToF16AVX512(dst *uint16, src *float32, n int)

//go:noescape
func f32ToF16AVX2(dst *uint16, src *float32, n int)

// The tails go through the Go twin, which rounds identically.

func f32ToF16512(dst []uint16, src []float32) {
	n := len(src) &^ 15
	if n > 0 {
		f32ToF16AVX512(&dst[0], &src[0], n)
	}
	f32ToF16Generic(dst[n:len(src)], src[n:])
}

func f32ToF16256(dst []uint16, src []float32) {
	n := len(src) &^ 7
	if n > 0 {
		f32ToF16AVX2(&dst[0], &src[0], n)
	}
	f32ToF16Generic(dst[n:len(src)], src[n:])
}
