//go:build amd64 && !noasm

#include "textflag.h"

// func panelI8VNNI(out *int32, q *uint8, p *int8, groups, npanels int)
// Per panel: two accumulators over alternate groups of 4 dimensions, each
// step a broadcast of 4 query bytes and one VPDPBUSD (u8 × s8, 4 products
// summed into each of 16 int32 lanes), then the sum stored as 16 int32s.
TEXT ·panelI8VNNI(SB), NOSPLIT, $0-40
	MOVQ out+0(FP), DI
	MOVQ q+8(FP), R8
	MOVQ p+16(FP), DX
	MOVQ groups+24(FP), R9
	MOVQ npanels+32(FP), R10

panel:
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	MOVQ   R8, SI
	MOVQ   R9, CX
	CMPQ   CX, $2
	JL     one

pair:
	VPBROADCASTD (SI), Z2
	VPBROADCASTD 4(SI), Z3
	VPDPBUSD     (DX), Z2, Z0
	VPDPBUSD     64(DX), Z3, Z1
	ADDQ         $8, SI
	ADDQ         $128, DX
	SUBQ         $2, CX
	CMPQ         CX, $2
	JGE          pair

one:
	TESTQ        CX, CX
	JZ           store
	VPBROADCASTD (SI), Z2
	VPDPBUSD     (DX), Z2, Z0
	ADDQ         $64, DX

store:
	VPADDD    Z1, Z0, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ      $64, DI
	DECQ      R10
	JNZ       panel
	VZEROUPPER
	RET
