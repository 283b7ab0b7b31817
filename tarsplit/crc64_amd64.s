#include "textflag.h"

// func foldCLMUL(state uint64, p []byte) (lo, hi uint64)
TEXT ·foldCLMUL(SB), NOSPLIT, $0-48
	MOVQ state+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVOU (SI), X0
	MOVQ AX, X1
	PXOR X1, X0
	ADDQ $16, SI
	SUBQ $16, CX
	MOVOU ·crcFoldConst(SB), X2

loop:
	CMPQ CX, $16
	JB   done
	MOVO X0, X1
	PCLMULQDQ $0x00, X2, X0
	PCLMULQDQ $0x11, X2, X1
	MOVOU (SI), X3
	PXOR X1, X0
	PXOR X3, X0
	ADDQ $16, SI
	SUBQ $16, CX
	JMP  loop

done:
	MOVQ X0, lo+32(FP)
	PSHUFD $0x4e, X0, X1
	MOVQ X1, hi+40(FP)
	RET
