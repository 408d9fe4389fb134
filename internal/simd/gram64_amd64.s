//go:build amd64 && !noasm

#include "textflag.h"

// func gram64x4AVX2(dst *float64, a *float64, x0, x1, x2, x3 *float32, n4, rem int, m32 *int32, m64 *int64)
// One float64 row against four float32 rows: four accumulators (one per
// item row) share each load of a; the products are exact in float64 (the
// FMA rounds only the sum).
TEXT ·gram64x4AVX2(SB), NOSPLIT, $0-80
	MOVQ dst+0(FP), DI
	MOVQ a+8(FP), SI
	MOVQ x0+16(FP), R8
	MOVQ x1+24(FP), R9
	MOVQ x2+32(FP), R10
	MOVQ x3+40(FP), R11
	MOVQ n4+48(FP), CX
	MOVQ rem+56(FP), DX
	MOVQ m32+64(FP), BX
	MOVQ m64+72(FP), R12
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	TESTQ CX, CX
	JZ    tail

loop:
	VMOVUPD     (SI), Y4
	VCVTPS2PD   (R8), Y5
	VFMADD231PD Y5, Y4, Y0
	VCVTPS2PD   (R9), Y6
	VFMADD231PD Y6, Y4, Y1
	VCVTPS2PD   (R10), Y7
	VFMADD231PD Y7, Y4, Y2
	VCVTPS2PD   (R11), Y8
	VFMADD231PD Y8, Y4, Y3
	ADDQ        $32, SI
	ADDQ        $16, R8
	ADDQ        $16, R9
	ADDQ        $16, R10
	ADDQ        $16, R11
	DECQ        CX
	JNZ         loop

tail:
	TESTQ DX, DX
	JZ    reduce
	VMOVDQU     (R12), Y9
	VMOVDQU     (BX), X10
	VMASKMOVPD  (SI), Y9, Y4
	VMASKMOVPS  (R8), X10, X5
	VCVTPS2PD   X5, Y5
	VFMADD231PD Y5, Y4, Y0
	VMASKMOVPS  (R9), X10, X6
	VCVTPS2PD   X6, Y6
	VFMADD231PD Y6, Y4, Y1
	VMASKMOVPS  (R10), X10, X7
	VCVTPS2PD   X7, Y7
	VFMADD231PD Y7, Y4, Y2
	VMASKMOVPS  (R11), X10, X8
	VCVTPS2PD   X8, Y8
	VFMADD231PD Y8, Y4, Y3

reduce:
	// Y4 = [s0₀+s0₁, s1₀+s1₁, s0₂+s0₃, s1₂+s1₃], Y5 the same for s2, s3.
	VHADDPD    Y1, Y0, Y4
	VHADDPD    Y3, Y2, Y5
	VPERM2F128 $0x20, Y5, Y4, Y6
	VPERM2F128 $0x31, Y5, Y4, Y7
	VADDPD     Y7, Y6, Y6
	VMOVUPD    Y6, (DI)
	VZEROUPPER
	RET
