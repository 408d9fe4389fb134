//go:build amd64 && !noasm

#include "textflag.h"

// func dotsI8AVX2(out *int32, q *int8, n int, codes *int8, ncodes int, idx *uint32, m int) int
// Per row: its offset idx[i]·n is checked against ncodes, then the dot is
// dotI8AVX2's (sign-extend 16 bytes to 16 int16s, VPMADDWD pairs into
// int32s, two accumulators over 32 bytes a step) and its horizontal sum is
// stored in out[i]. Rows are independent, so the loads of the next row's
// code issue while this one's sum finishes.
TEXT ·dotsI8AVX2(SB), NOSPLIT, $0-64
	MOVQ out+0(FP), R8
	MOVQ q+8(FP), SI
	MOVQ n+16(FP), DX
	MOVQ codes+24(FP), R9
	MOVQ ncodes+32(FP), R10
	MOVQ idx+40(FP), R11
	MOVQ m+48(FP), CX
	XORQ BX, BX

row:
	CMPQ BX, CX
	JGE  done
	MOVL (R11)(BX*4), AX
	IMULQ DX, AX
	LEAQ (AX)(DX*1), R12
	CMPQ R12, R10
	JA   done
	LEAQ (R9)(AX*1), DI
	MOVQ SI, R13
	MOVQ DX, R12
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	CMPQ R12, $32
	JL   tail

loop32:
	VPMOVSXBW (R13), Y2
	VPMOVSXBW (DI), Y3
	VPMADDWD  Y3, Y2, Y2
	VPADDD    Y2, Y0, Y0
	VPMOVSXBW 16(R13), Y4
	VPMOVSXBW 16(DI), Y5
	VPMADDWD  Y5, Y4, Y4
	VPADDD    Y4, Y1, Y1
	ADDQ $32, R13
	ADDQ $32, DI
	SUBQ $32, R12
	CMPQ R12, $32
	JGE  loop32

tail:
	TESTQ R12, R12
	JZ    reduce
	VPMOVSXBW (R13), Y2
	VPMOVSXBW (DI), Y3
	VPMADDWD  Y3, Y2, Y2
	VPADDD    Y2, Y0, Y0

reduce:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, AX
	MOVL AX, (R8)(BX*4)
	INCQ BX
	JMP  row

done:
	VZEROUPPER
	MOVQ BX, ret+56(FP)
	RET

// func dotsI8VNNI(out *int32, q *int8, n int, codes *int8, ncodes int, idx *uint32, m int) int
// Z30: 0x80 in every byte (q XOR 0x80 is q+128 as uint8); Z31: 0x01 in
// every byte; K1: the low n mod 64 bits (the masked tail).
TEXT ·dotsI8VNNI(SB), NOSPLIT, $0-64
	MOVQ out+0(FP), R8
	MOVQ q+8(FP), SI
	MOVQ n+16(FP), DX
	MOVQ codes+24(FP), R9
	MOVQ ncodes+32(FP), R10
	MOVQ idx+40(FP), R11
	MOVQ m+48(FP), R13
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Z30
	MOVL $0x01010101, AX
	VPBROADCASTD AX, Z31
	MOVQ DX, CX
	ANDQ $63, CX
	MOVQ $1, R12
	SHLQ CX, R12
	DECQ R12
	KMOVQ R12, K1
	XORQ BX, BX

vrow:
	CMPQ BX, R13
	JGE  vdone
	MOVL (R11)(BX*4), AX
	IMULQ DX, AX
	LEAQ (AX)(DX*1), R12
	CMPQ R12, R10
	JA   vdone
	LEAQ (R9)(AX*1), DI
	MOVQ SI, CX
	MOVQ DX, R12
	VPXORD Z0, Z0, Z0
	VPXORD Z4, Z4, Z4
	CMPQ R12, $64
	JL   vtail

vloop64:
	VPXORD   (CX), Z30, Z1
	VPDPBUSD (DI), Z1, Z0
	VPDPBUSD (DI), Z31, Z4
	ADDQ $64, CX
	ADDQ $64, DI
	SUBQ $64, R12
	CMPQ R12, $64
	JGE  vloop64

vtail:
	TESTQ R12, R12
	JZ    vreduce
	VMOVDQU8.Z (CX), K1, Z1
	VMOVDQU8.Z (DI), K1, Z2
	VPXORD     Z30, Z1, Z1
	VPDPBUSD   Z2, Z1, Z0
	VPDPBUSD   Z2, Z31, Z4

vreduce:
	VPSLLD        $7, Z4, Z4
	VPSUBD        Z4, Z0, Z0
	VEXTRACTI64X4 $1, Z0, Y1
	VPADDD        Y1, Y0, Y0
	VEXTRACTI128  $1, Y0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0x4e, X0, X1
	VPADDD        X1, X0, X0
	VPSHUFD       $0xb1, X0, X1
	VPADDD        X1, X0, X0
	VMOVD         X0, AX
	MOVL AX, (R8)(BX*4)
	INCQ BX
	JMP  vrow

vdone:
	VZEROUPPER
	MOVQ BX, ret+56(FP)
	RET
