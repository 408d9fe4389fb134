package simd

import "math"

// F16ToF32 widens IEEE 754 binary16 values to float32: dst[i] = float32 of
// src[i] for i < len(src). dst must be at least as long as src. The result
// is exact; a signalling NaN comes back quiet (payload kept), as F16C does.
// Safe for concurrent use.
//
// The reference loop:
//
//	for i, h := range src {
//		dst[i] = math.Float32frombits(f16ToF32Bits(h))
//	}
func F16ToF32(dst []float32, src []uint16) {
	if len(dst) < len(src) {
		panic("simd: F16ToF32 dst shorter than src")
	}
	active.f16ToF32(dst[:len(src)], src)
}

func f16ToF32Generic(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(f16ToF32Bits(h))
	}
}

// f16ToF32Bits widens one binary16 to binary32 bits.
func f16ToF32Bits(h uint16) uint32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f && man == 0:
		return sign | 0x7f800000
	case exp == 0x1f:
		return sign | 0x7fc00000 | man<<13 // quiet NaN, payload kept
	case exp != 0:
		return sign | (exp+127-15)<<23 | man<<13
	case man == 0:
		return sign
	}
	// A subnormal man·2^-24: normalize.
	e := uint32(127 - 14)
	for man&0x400 == 0 {
		man <<= 1
		e--
	}
	return sign | e<<23 | (man&0x3ff)<<13
}

// F32ToF16 narrows float32 values to IEEE 754 binary16, rounding to nearest
// even: dst[i] = binary16 of src[i] for i < len(src). Values too large
// become ±Inf, values too small become subnormals or ±0, NaN stays NaN
// (quiet, with the top payload bits). dst must be at least as long as src.
// F16C (VCVTPS2PH) on the assembly paths. Safe for concurrent use.
//
// The reference loop:
//
//	for i, f := range src {
//		dst[i] = f32ToF16Bits(math.Float32bits(f))
//	}
func F32ToF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic("simd: F32ToF16 dst shorter than src")
	}
	active.f32ToF16(dst[:len(src)], src)
}

func f32ToF16Generic(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = f32ToF16Bits(math.Float32bits(f))
	}
}

// f32ToF16Bits narrows one binary32 to binary16 bits, rounding to nearest
// even.
func f32ToF16Bits(f uint32) uint16 {
	sign := uint16(f>>16) & 0x8000
	exp := int(f>>23) & 0xff
	man := f & 0x7fffff
	if exp == 0xff {
		if man == 0 {
			return sign | 0x7c00
		}
		return sign | 0x7e00 | uint16(man>>13)
	}
	e := exp - 127 + 15 // biased binary16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal (or zero) in binary16: the value in units of 2^-24 is
		// m >> (14-e), m the 24-bit significand.
		if e < -10 {
			return sign // below half the smallest subnormal
		}
		m := man | 0x800000
		shift := uint(14 - e)
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && h&1 == 1 {
			h++ // may carry into the smallest normal: still correct
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || rem == 0x1000 && h&1 == 1 {
		h++ // may carry into the exponent, up to Inf: still correct
	}
	return sign | uint16(h)
}

// BF16ToF32 widens bfloat16 values (the top half of a float32) to float32:
// dst[i] = math.Float32frombits(uint32(src[i]) << 16). Exact. dst must be at
// least as long as src. Pure Go on every path. Safe for concurrent use.
func BF16ToF32(dst []float32, src []uint16) {
	if len(dst) < len(src) {
		panic("simd: BF16ToF32 dst shorter than src")
	}
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = math.Float32frombits(uint32(h) << 16)
	}
}

// F32ToBF16 narrows float32 values to bfloat16, rounding to nearest even;
// NaN stays NaN (made quiet), values beyond the largest bfloat16 become
// ±Inf. dst must be at least as long as src. Pure Go on every path. Safe for
// concurrent use.
//
// The reference loop:
//
//	for i, f := range src {
//		dst[i] = f32ToBF16Bits(math.Float32bits(f))
//	}
func F32ToBF16(dst []uint16, src []float32) {
	if len(dst) < len(src) {
		panic("simd: F32ToBF16 dst shorter than src")
	}
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = f32ToBF16Bits(math.Float32bits(f))
	}
}

func f32ToBF16Bits(f uint32) uint16 {
	if f&0x7fffffff > 0x7f800000 {
		return uint16(f>>16) | 0x40 // NaN: truncation could make it Inf
	}
	return uint16((f + 0x7fff + (f>>16)&1) >> 16)
}
