//go:build amd64 && !noasm

#include "textflag.h"

// func scanNibbles512(out *float32, codes *byte, blocks int, nb int, lut *byte, base float32, step float32)
//
// Per block of 64 codes: for each byte row p, the 64 codes' low and high
// nibbles index row p's two 16-byte tables (VPSHUFB, the table broadcast
// to every 128-bit lane), the two lookups are added as bytes (each ≤ 127),
// and the byte sums are widened into 16-bit accumulators: the even codes'
// bytes (the low byte of each word) into Z0, the odd codes' into Z1,
// interleaved back into code order at the block's end.
TEXT ·scanNibbles512(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ codes+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ nb+24(FP), BX
	MOVQ lut+32(FP), R8
	MOVL $0x0F0F0F0F, AX
	VPBROADCASTD AX, Z31
	MOVL $0x00FF00FF, AX
	VPBROADCASTD AX, Z30
	VBROADCASTSS base+40(FP), Z29
	VBROADCASTSS step+44(FP), Z28

block:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	MOVQ R8, R9
	MOVQ BX, DX

row:
	VMOVDQU64 (SI), Z2
	VPSRLW $4, Z2, Z3
	VPANDD Z31, Z2, Z2
	VPANDD Z31, Z3, Z3
	VBROADCASTI32X4 (R9), Z4
	VBROADCASTI32X4 16(R9), Z5
	VPSHUFB Z2, Z4, Z2
	VPSHUFB Z3, Z5, Z3
	VPADDB Z3, Z2, Z2
	VPANDD Z30, Z2, Z3
	VPSRLW $8, Z2, Z2
	VPADDW Z3, Z0, Z0
	VPADDW Z2, Z1, Z1
	ADDQ $64, SI
	ADDQ $32, R9
	DECQ DX
	JNZ row

	// Interleave even and odd codes back into code order: per 128-bit
	// lane L, the low unpack holds codes 16L..16L+7, the high one
	// 16L+8..16L+15; two lane shuffles each put them in order.
	VPUNPCKLWD Z1, Z0, Z2
	VPUNPCKHWD Z1, Z0, Z3
	VSHUFI64X2 $0x44, Z3, Z2, Z4
	VSHUFI64X2 $0xD8, Z4, Z4, Z4
	VSHUFI64X2 $0xEE, Z3, Z2, Z5
	VSHUFI64X2 $0xD8, Z5, Z5, Z5
	// Widen to 32 bits, convert (exact: sums < 2^24), then
	// base + step·sum, rounded after the product and after the sum.
	VEXTRACTI64X4 $1, Z4, Y6
	VPMOVZXWD Y4, Z4
	VPMOVZXWD Y6, Z6
	VEXTRACTI64X4 $1, Z5, Y7
	VPMOVZXWD Y5, Z5
	VPMOVZXWD Y7, Z7
	VCVTDQ2PS Z4, Z4
	VCVTDQ2PS Z6, Z6
	VCVTDQ2PS Z5, Z5
	VCVTDQ2PS Z7, Z7
	VMULPS Z28, Z4, Z4
	VMULPS Z28, Z6, Z6
	VMULPS Z28, Z5, Z5
	VMULPS Z28, Z7, Z7
	VADDPS Z29, Z4, Z4
	VADDPS Z29, Z6, Z6
	VADDPS Z29, Z5, Z5
	VADDPS Z29, Z7, Z7
	VMOVUPS Z4, (DI)
	VMOVUPS Z6, 64(DI)
	VMOVUPS Z5, 128(DI)
	VMOVUPS Z7, 192(DI)
	ADDQ $256, DI
	DECQ CX
	JNZ block

	VZEROUPPER
	RET
