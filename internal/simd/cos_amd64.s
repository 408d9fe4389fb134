//go:build amd64 && !noasm

#include "textflag.h"

// Constants of cosf (see cos.go), one float32 each.
DATA cosc<>+0(SB)/4, $0x3ea2f983  // 1/π
DATA cosc<>+4(SB)/4, $0x3f000000  // 0.5
DATA cosc<>+8(SB)/4, $0x3fc90fdb  // P1
DATA cosc<>+12(SB)/4, $0xb33bbd2e // P2
DATA cosc<>+16(SB)/4, $0xa6f72ced // P3
DATA cosc<>+20(SB)/4, $0x362e39f4 // C9
DATA cosc<>+24(SB)/4, $0xb94fab3d // C7
DATA cosc<>+28(SB)/4, $0x3c08871b // C5
DATA cosc<>+32(SB)/4, $0xbe2aaaa4 // C3
DATA cosc<>+36(SB)/4, $0x7fffffff // |·| mask
DATA cosc<>+40(SB)/4, $0x47800000 // CosMax
DATA cosc<>+44(SB)/4, $0x3f800000 // 1
GLOBL cosc<>(SB), RODATA|NOPTR, $48

// func cosAddAVX512(dst, p, b *float32, n int, w float32, acc bool) (bad int)
// Z16.. hold the constants, Z31 = w; per block: Z0 = x, Z1 = n, Z2 = m,
// Z3 = r, Z4 = r², Z5 = sign of (−1)^n, Z6 = polynomial and result,
// K2 = lanes in range, K1 = the others, K3 = their union over all blocks.
TEXT ·cosAddAVX512(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), DX
	VBROADCASTSS w+32(FP), Z31
	MOVBLZX acc+36(FP), AX
	KXORW K3, K3, K3
	SHRQ $4, DX
	JZ   done
	VBROADCASTSS cosc<>+0(SB), Z16
	VBROADCASTSS cosc<>+4(SB), Z17
	VBROADCASTSS cosc<>+8(SB), Z18
	VBROADCASTSS cosc<>+12(SB), Z19
	VBROADCASTSS cosc<>+16(SB), Z20
	VBROADCASTSS cosc<>+20(SB), Z21
	VBROADCASTSS cosc<>+24(SB), Z22
	VBROADCASTSS cosc<>+28(SB), Z23
	VBROADCASTSS cosc<>+32(SB), Z24
	VPBROADCASTD cosc<>+36(SB), Z25
	VBROADCASTSS cosc<>+40(SB), Z26
	VBROADCASTSS cosc<>+44(SB), Z27

loop:
	VMOVUPS (SI), Z0
	VADDPS  (BX), Z0, Z0              // x = p + b
	VMOVAPS Z17, Z1
	VFMADD231PS Z16, Z0, Z1           // x/π + ½
	VRNDSCALEPS $0, Z1, Z1            // n = round to nearest even
	VCVTPS2DQ Z1, Z5
	VPSLLD  $31, Z5, Z5               // sign bit = n odd
	VADDPS  Z1, Z1, Z2
	VSUBPS  Z27, Z2, Z2               // m = 2n − 1
	VMOVAPS Z0, Z3
	VFNMADD231PS Z18, Z2, Z3          // r = x − m·P1 (exact)
	VFNMADD231PS Z19, Z2, Z3          // r −= m·P2
	VFNMADD231PS Z20, Z2, Z3          // r −= m·P3
	VMULPS  Z3, Z3, Z4                // s = r²
	VMOVAPS Z21, Z6
	VFMADD213PS Z22, Z4, Z6           // u = u·s + C7
	VFMADD213PS Z23, Z4, Z6           // u = u·s + C5
	VFMADD213PS Z24, Z4, Z6           // u = u·s + C3
	VMULPS  Z3, Z6, Z6                // u·r
	VFMADD213PS Z3, Z4, Z6            // sin r = (u·r)·s + r
	VPXORD  Z5, Z6, Z6                // cos x = (−1)^n · sin r
	VPANDD  Z25, Z0, Z7               // |x|
	VCMPPS  $2, Z26, Z7, K2           // |x| ≤ CosMax (false for NaN)
	KNOTW   K2, K1
	KORW    K1, K3, K3
	TESTQ   AX, AX
	JNZ     accumulate
	VMOVAPS Z0, K1, Z6                // out of range: store x for the fixup
	VMOVUPS Z6, (DI)
	JMP     next

accumulate:
	VFMADD213PS (DI), Z31, Z6         // acc + w·cos x
	VMOVUPS Z6, K2, (DI)              // out of range: acc unchanged

next:
	ADDQ    $64, SI
	ADDQ    $64, BX
	ADDQ    $64, DI
	DECQ    DX
	JNZ     loop

done:
	KMOVW   K3, CX
	MOVQ    CX, bad+40(FP)
	VZEROUPPER
	RET

// func cosAddAVX2(dst, p, b *float32, n int, w float32, acc bool) (bad int)
// Y8.. hold the constants that fit, Y15 = w; the polynomial's are loaded
// per block; Y14 collects the out-of-range lanes of all blocks.
TEXT ·cosAddAVX2(SB), NOSPLIT, $0-48
	MOVQ dst+0(FP), DI
	MOVQ p+8(FP), SI
	MOVQ b+16(FP), BX
	MOVQ n+24(FP), DX
	VBROADCASTSS w+32(FP), Y15
	MOVBLZX acc+36(FP), AX
	VXORPS Y14, Y14, Y14
	SHRQ $3, DX
	JZ   done
	VBROADCASTSS cosc<>+0(SB), Y8
	VBROADCASTSS cosc<>+4(SB), Y9
	VBROADCASTSS cosc<>+8(SB), Y10
	VBROADCASTSS cosc<>+12(SB), Y11
	VBROADCASTSS cosc<>+16(SB), Y12
	VBROADCASTSS cosc<>+44(SB), Y13

loop:
	VMOVUPS (SI), Y0
	VADDPS  (BX), Y0, Y0              // x = p + b
	VMOVAPS Y9, Y1
	VFMADD231PS Y8, Y0, Y1            // x/π + ½
	VROUNDPS $0, Y1, Y1               // n
	VCVTPS2DQ Y1, Y5
	VPSLLD  $31, Y5, Y5               // sign bit = n odd
	VADDPS  Y1, Y1, Y2
	VSUBPS  Y13, Y2, Y2               // m = 2n − 1
	VMOVAPS Y0, Y3
	VFNMADD231PS Y10, Y2, Y3          // r = x − m·P1 (exact)
	VFNMADD231PS Y11, Y2, Y3
	VFNMADD231PS Y12, Y2, Y3
	VMULPS  Y3, Y3, Y4                // s = r²
	VBROADCASTSS cosc<>+20(SB), Y6
	VBROADCASTSS cosc<>+24(SB), Y7
	VFMADD213PS Y7, Y4, Y6            // u = C9·s + C7
	VBROADCASTSS cosc<>+28(SB), Y7
	VFMADD213PS Y7, Y4, Y6
	VBROADCASTSS cosc<>+32(SB), Y7
	VFMADD213PS Y7, Y4, Y6
	VMULPS  Y3, Y6, Y6                // u·r
	VFMADD213PS Y3, Y4, Y6            // sin r
	VXORPS  Y5, Y6, Y6                // cos x
	VBROADCASTSS cosc<>+36(SB), Y7
	VANDPS  Y7, Y0, Y7                // |x|
	VBROADCASTSS cosc<>+40(SB), Y5
	VCMPPS  $0x16, Y5, Y7, Y7         // !(|x| ≤ CosMax), true for NaN
	VORPS   Y7, Y14, Y14
	TESTQ   AX, AX
	JNZ     accumulate
	VBLENDVPS Y7, Y0, Y6, Y6          // out of range: store x for the fixup
	VMOVUPS Y6, (DI)
	JMP     next

accumulate:
	VMOVUPS (DI), Y5
	VFMADD231PS Y15, Y6, Y5           // acc + w·cos x
	VBLENDVPS Y7, (DI), Y5, Y5        // out of range: acc unchanged
	VMOVUPS Y5, (DI)

next:
	ADDQ    $32, SI
	ADDQ    $32, BX
	ADDQ    $32, DI
	DECQ    DX
	JNZ     loop

done:
	VMOVMSKPS Y14, CX
	MOVQ    CX, bad+40(FP)
	VZEROUPPER
	RET
