//go:build amd64 && !noasm

#include "textflag.h"

DATA rsqrtc<>+0(SB)/4, $0x3f800000 // 1
DATA rsqrtc<>+4(SB)/4, $0x3f000000 // 0.5
DATA rsqrtc<>+8(SB)/4, $0x7f800000 // +Inf
GLOBL rsqrtc<>(SB), RODATA|NOPTR, $12

// func rsqrtAVX512(dst, src *float32, n int)
// y0 = rsqrt14(x); e = 1 - (x·y0)·y0; y = y0 + (y0/2)·e. Where x is ±0 or
// +Inf the estimate is already exact and the Newton step would make NaN
// (0·Inf), so y0 is kept there.
TEXT ·rsqrtAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	SHRQ $4, DX
	JZ   done
	VBROADCASTSS rsqrtc<>+0(SB), Z16
	VBROADCASTSS rsqrtc<>+4(SB), Z17
	VBROADCASTSS rsqrtc<>+8(SB), Z18
	VPXORD Z19, Z19, Z19

loop:
	VMOVUPS (SI), Z0
	VRSQRT14PS Z0, Z1
	VMULPS  Z1, Z0, Z2                // t = x·y0
	VMOVAPS Z16, Z3
	VFNMADD231PS Z1, Z2, Z3           // e = 1 - t·y0
	VMULPS  Z17, Z1, Z4               // y0/2
	VFMADD213PS Z1, Z3, Z4            // y = (y0/2)·e + y0
	VCMPPS  $0, Z19, Z0, K1           // x == ±0
	VCMPPS  $0, Z18, Z0, K2           // x == +Inf
	KORW    K1, K2, K1
	VMOVAPS Z1, K1, Z4
	VMOVUPS Z4, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	DECQ    DX
	JNZ     loop

done:
	VZEROUPPER
	RET

// func rsqrtAVX2(dst, src *float32, n int)
TEXT ·rsqrtAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), DX
	SHRQ $3, DX
	JZ   done
	VBROADCASTSS rsqrtc<>+0(SB), Y8

loop:
	VSQRTPS (SI), Y0
	VDIVPS  Y0, Y8, Y1
	VMOVUPS Y1, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    DX
	JNZ     loop

done:
	VZEROUPPER
	RET
