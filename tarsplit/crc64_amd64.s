#include "textflag.h"

// func foldCLMUL(state uint64, p []byte) (lo, hi uint64)
//
// From 128 bytes on, four accumulators fold 64 bytes each per round
// (independent multiplications keep the unit busy), then fold into one;
// the rest goes 16 bytes at a time.
TEXT ·foldCLMUL(SB), NOSPLIT, $0-48
	MOVQ state+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVOU ·crcFoldConst(SB), X9
	MOVQ AX, X1
	CMPQ CX, $128
	JB   one

	MOVOU ·crcFold4Const(SB), X8
	MOVOU (SI), X0
	PXOR X1, X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	ADDQ $64, SI
	SUBQ $64, CX

loop4:
	CMPQ CX, $64
	JB   merge
	MOVO X0, X4
	MOVO X1, X5
	MOVO X2, X6
	MOVO X3, X7
	PCLMULQDQ $0x00, X8, X0
	PCLMULQDQ $0x00, X8, X1
	PCLMULQDQ $0x00, X8, X2
	PCLMULQDQ $0x00, X8, X3
	PCLMULQDQ $0x11, X8, X4
	PCLMULQDQ $0x11, X8, X5
	PCLMULQDQ $0x11, X8, X6
	PCLMULQDQ $0x11, X8, X7
	PXOR X4, X0
	PXOR X5, X1
	PXOR X6, X2
	PXOR X7, X3
	MOVOU (SI), X4
	MOVOU 16(SI), X5
	MOVOU 32(SI), X6
	MOVOU 48(SI), X7
	PXOR X4, X0
	PXOR X5, X1
	PXOR X6, X2
	PXOR X7, X3
	ADDQ $64, SI
	SUBQ $64, CX
	JMP  loop4

merge:
	// X0 = fold16(X0) ^ X1, then ^ X2, then ^ X3.
	MOVO X0, X4
	PCLMULQDQ $0x00, X9, X0
	PCLMULQDQ $0x11, X9, X4
	PXOR X4, X0
	PXOR X1, X0
	MOVO X0, X4
	PCLMULQDQ $0x00, X9, X0
	PCLMULQDQ $0x11, X9, X4
	PXOR X4, X0
	PXOR X2, X0
	MOVO X0, X4
	PCLMULQDQ $0x00, X9, X0
	PCLMULQDQ $0x11, X9, X4
	PXOR X4, X0
	PXOR X3, X0
	JMP  loop1

one:
	MOVOU (SI), X0
	PXOR X1, X0
	ADDQ $16, SI
	SUBQ $16, CX

loop1:
	CMPQ CX, $16
	JB   done
	MOVO X0, X1
	PCLMULQDQ $0x00, X9, X0
	PCLMULQDQ $0x11, X9, X1
	MOVOU (SI), X3
	PXOR X1, X0
	PXOR X3, X0
	ADDQ $16, SI
	SUBQ $16, CX
	JMP  loop1

done:
	MOVQ X0, lo+32(FP)
	PSHUFD $0x4e, X0, X1
	MOVQ X1, hi+40(FP)
	RET
