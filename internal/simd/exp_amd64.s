//go:build amd64 && !noasm

#include "textflag.h"

// Constants of expf (see exp.go), one float32 each.
DATA expc<>+0(SB)/4, $0x42b17217  // expHi
DATA expc<>+4(SB)/4, $0xc2aeac4f  // expLo
DATA expc<>+8(SB)/4, $0x3fb8aa3b  // log2 e
DATA expc<>+12(SB)/4, $0x3f318000 // C1
DATA expc<>+16(SB)/4, $0xb95e8083 // C2
DATA expc<>+20(SB)/4, $0x39506967 // P0
DATA expc<>+24(SB)/4, $0x3ab743ce // P1
DATA expc<>+28(SB)/4, $0x3c088908 // P2
DATA expc<>+32(SB)/4, $0x3d2aa9c1 // P3
DATA expc<>+36(SB)/4, $0x3e2aaaaa // P4
DATA expc<>+40(SB)/4, $0x3f000000 // P5
DATA expc<>+44(SB)/4, $0x3f800000 // 1
DATA expc<>+48(SB)/4, $0x7f800000 // +Inf
DATA expc<>+52(SB)/4, $0x0000007f // exponent bias
GLOBL expc<>(SB), RODATA|NOPTR, $56

// func expAVX512(dst, src *float32, n int)
// Z16.. hold the constants; per block: Z0 = x, Z1 = clamped x, Z2 = n,
// Z3 = r, Z4 = polynomial and result, Z5 = r².
TEXT ·expAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	SHRQ $4, DX
	JZ   done
	VBROADCASTSS expc<>+0(SB), Z16
	VBROADCASTSS expc<>+4(SB), Z17
	VBROADCASTSS expc<>+8(SB), Z18
	VBROADCASTSS expc<>+12(SB), Z19
	VBROADCASTSS expc<>+16(SB), Z20
	VBROADCASTSS expc<>+20(SB), Z21
	VBROADCASTSS expc<>+24(SB), Z22
	VBROADCASTSS expc<>+28(SB), Z23
	VBROADCASTSS expc<>+32(SB), Z24
	VBROADCASTSS expc<>+36(SB), Z25
	VBROADCASTSS expc<>+40(SB), Z26
	VBROADCASTSS expc<>+44(SB), Z27
	VBROADCASTSS expc<>+48(SB), Z28

loop:
	VMOVUPS (SI), Z0
	// Clamp; operand order keeps a NaN x (vmaxps returns its 2nd source).
	VMAXPS  Z0, Z17, Z1
	VMINPS  Z1, Z16, Z1
	VMULPS  Z18, Z1, Z2
	VRNDSCALEPS $0, Z2, Z2            // n = round to nearest even
	VMOVAPS Z1, Z3
	VFNMADD231PS Z19, Z2, Z3          // r = x - n*C1
	VFNMADD231PS Z20, Z2, Z3          // r -= n*C2
	VMOVAPS Z21, Z4
	VFMADD213PS Z22, Z3, Z4           // p = p*r + P1
	VFMADD213PS Z23, Z3, Z4
	VFMADD213PS Z24, Z3, Z4
	VFMADD213PS Z25, Z3, Z4
	VFMADD213PS Z26, Z3, Z4
	VMULPS  Z3, Z3, Z5
	VFMADD213PS Z3, Z5, Z4            // p*r² + r
	VADDPS  Z27, Z4, Z4               // + 1
	VSCALEFPS Z2, Z4, Z4              // · 2^n
	VCMPPS  $1, Z17, Z0, K1           // x < lo (false for NaN)
	VCMPPS  $0x1e, Z16, Z0, K2        // x > hi (false for NaN)
	VPXORD  Z4, Z4, K1, Z4            // → +0
	VMOVAPS Z28, K2, Z4               // → +Inf
	VMOVUPS Z4, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    DX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func expAVX2(dst, src *float32, n int)
// Y8.. hold constants; 2^n is applied as 2^(n>>1) · 2^(n-(n>>1)) so that
// n = 128 does not overflow the exponent field.
TEXT ·expAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	SHRQ $3, DX
	JZ   done
	VBROADCASTSS expc<>+0(SB), Y8
	VBROADCASTSS expc<>+4(SB), Y9
	VBROADCASTSS expc<>+8(SB), Y10
	VBROADCASTSS expc<>+12(SB), Y11
	VBROADCASTSS expc<>+16(SB), Y12
	VBROADCASTSS expc<>+44(SB), Y13
	VBROADCASTSS expc<>+48(SB), Y14
	VPBROADCASTD expc<>+52(SB), Y15

loop:
	VMOVUPS (SI), Y0
	VMAXPS  Y0, Y9, Y1
	VMINPS  Y1, Y8, Y1
	VMULPS  Y10, Y1, Y2
	VROUNDPS $0, Y2, Y2
	VMOVAPS Y1, Y3
	VFNMADD231PS Y11, Y2, Y3
	VFNMADD231PS Y12, Y2, Y3
	VBROADCASTSS expc<>+20(SB), Y4
	VBROADCASTSS expc<>+24(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS expc<>+28(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS expc<>+32(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS expc<>+36(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VBROADCASTSS expc<>+40(SB), Y5
	VFMADD213PS Y5, Y3, Y4
	VMULPS  Y3, Y3, Y5
	VFMADD213PS Y3, Y5, Y4
	VADDPS  Y13, Y4, Y4
	// Scale by 2^n1 · 2^n2.
	VCVTPS2DQ Y2, Y6
	VPSRAD  $1, Y6, Y7
	VPSUBD  Y7, Y6, Y6
	VPADDD  Y15, Y7, Y7
	VPSLLD  $23, Y7, Y7
	VPADDD  Y15, Y6, Y6
	VPSLLD  $23, Y6, Y6
	VMULPS  Y7, Y4, Y4
	VMULPS  Y6, Y4, Y4
	VCMPPS  $1, Y9, Y0, Y5            // x < lo
	VANDNPS Y4, Y5, Y4                // → +0
	VCMPPS  $0x1e, Y8, Y0, Y5         // x > hi
	VBLENDVPS Y5, Y14, Y4, Y4         // → +Inf
	VMOVUPS Y4, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    DX
	JNZ     loop

done:
	VZEROUPPER
	RET
