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

// func scanNibbles256(out *float32, codes *byte, blocks int, nb int, lut *byte, base float32, step float32)
//
// scanNibbles512 on AVX2: a block's 64 codes are two 32-byte halves, each
// shuffled per 128-bit lane against row p's tables (broadcast to both
// lanes), the even and odd codes' byte sums widened into 16-bit
// accumulators (Y0, Y1 for codes 0–31; Y2, Y3 for 32–63).
TEXT ·scanNibbles256(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DI
	MOVQ codes+8(FP), SI
	MOVQ blocks+16(FP), CX
	MOVQ nb+24(FP), BX
	MOVQ lut+32(FP), R8
	MOVL $0x0F0F0F0F, AX
	MOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x00FF00FF, AX
	MOVD AX, X14
	VPBROADCASTD X14, Y14
	VBROADCASTSS base+40(FP), Y13
	VBROADCASTSS step+44(FP), Y12

block256:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	MOVQ R8, R9
	MOVQ BX, DX

row256:
	VBROADCASTI128 (R9), Y4
	VBROADCASTI128 16(R9), Y5
	VMOVDQU (SI), Y6
	VMOVDQU 32(SI), Y7
	VPSRLW $4, Y6, Y8
	VPSRLW $4, Y7, Y9
	VPAND Y15, Y6, Y6
	VPAND Y15, Y8, Y8
	VPAND Y15, Y7, Y7
	VPAND Y15, Y9, Y9
	VPSHUFB Y6, Y4, Y6
	VPSHUFB Y8, Y5, Y8
	VPSHUFB Y7, Y4, Y7
	VPSHUFB Y9, Y5, Y9
	VPADDB Y8, Y6, Y6
	VPADDB Y9, Y7, Y7
	VPAND Y14, Y6, Y8
	VPSRLW $8, Y6, Y6
	VPAND Y14, Y7, Y9
	VPSRLW $8, Y7, Y7
	VPADDW Y8, Y0, Y0
	VPADDW Y6, Y1, Y1
	VPADDW Y9, Y2, Y2
	VPADDW Y7, Y3, Y3
	ADDQ $64, SI
	ADDQ $32, R9
	DECQ DX
	JNZ row256

	// Per half: the low unpack holds codes 16L..16L+7 of lane L, the high
	// one 16L+8..16L+15; two lane permutes put 0–15 and 16–31 in order.
	VPUNPCKLWD Y1, Y0, Y4
	VPUNPCKHWD Y1, Y0, Y5
	VPERM2I128 $0x20, Y5, Y4, Y0
	VPERM2I128 $0x31, Y5, Y4, Y1
	VPUNPCKLWD Y3, Y2, Y4
	VPUNPCKHWD Y3, Y2, Y5
	VPERM2I128 $0x20, Y5, Y4, Y2
	VPERM2I128 $0x31, Y5, Y4, Y3

	// Widen, convert (exact), base + step·sum rounded as the Go loop is.
	VEXTRACTI128 $1, Y0, X4
	VPMOVZXWD X0, Y0
	VPMOVZXWD X4, Y4
	VEXTRACTI128 $1, Y1, X5
	VPMOVZXWD X1, Y1
	VPMOVZXWD X5, Y5
	VEXTRACTI128 $1, Y2, X6
	VPMOVZXWD X2, Y2
	VPMOVZXWD X6, Y6
	VEXTRACTI128 $1, Y3, X7
	VPMOVZXWD X3, Y3
	VPMOVZXWD X7, Y7
	VCVTDQ2PS Y0, Y0
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y1, Y1
	VCVTDQ2PS Y5, Y5
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y6, Y6
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y7, Y7
	VMULPS Y12, Y0, Y0
	VMULPS Y12, Y4, Y4
	VMULPS Y12, Y1, Y1
	VMULPS Y12, Y5, Y5
	VMULPS Y12, Y2, Y2
	VMULPS Y12, Y6, Y6
	VMULPS Y12, Y3, Y3
	VMULPS Y12, Y7, Y7
	VADDPS Y13, Y0, Y0
	VADDPS Y13, Y4, Y4
	VADDPS Y13, Y1, Y1
	VADDPS Y13, Y5, Y5
	VADDPS Y13, Y2, Y2
	VADDPS Y13, Y6, Y6
	VADDPS Y13, Y3, Y3
	VADDPS Y13, Y7, Y7
	VMOVUPS Y0, (DI)
	VMOVUPS Y4, 32(DI)
	VMOVUPS Y1, 64(DI)
	VMOVUPS Y5, 96(DI)
	VMOVUPS Y2, 128(DI)
	VMOVUPS Y6, 160(DI)
	VMOVUPS Y3, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ $256, DI
	DECQ CX
	JNZ block256

	VZEROUPPER
	RET
