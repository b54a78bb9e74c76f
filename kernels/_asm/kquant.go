package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The K-quant decoders (see kernels/kquant.go for the layouts). Like the
// attention kernels they exist for AVX2 only and serve the AVX-512
// implementation too. They compute every value with the same roundings
// as the Go reference: products of float32s, no fused multiply-adds.

// dwordConsts sets Y13 = 0x0F, Y14 = 0x03 and Y15 = 32 in every 32-bit
// lane, from an all-ones register.
func dwordConsts() {
	VPCMPEQD(ymm[15], ymm[15], ymm[15])
	VPSRLD(U8(28), ymm[15], ymm[13])
	VPSRLD(U8(30), ymm[15], ymm[14])
	VPSRLD(U8(31), ymm[15], ymm[15])
	VPSLLD(U8(5), ymm[15], ymm[15])
}

// genDecodeQ4K emits decodeQ4KAVX2. Per super-block the 12 bytes of
// packed 6-bit scales and mins are unpacked with 32-bit masks into 8
// scale bytes and 8 min bytes on the stack, widened and multiplied by d
// and dmin into 16 floats there, and each group of 8 quant bytes gives 8
// low-nibble values of one sub-block and 8 high-nibble values of the
// next. Layout: Y0-Y3 scratch, Y4 quants, Y5/Y6 nibbles, Y7-Y10 the
// broadcast scale and min of two sub-blocks, Y13 the nibble mask.
func genDecodeQ4K() {
	TEXT("decodeQ4KAVX2", NOSPLIT, "func(dst *float32, src *byte, n int)")
	Pragma("noescape")
	Doc("decodeQ4KAVX2 converts n Q4_K values at src to float32 at dst; n is a multiple of 256.")
	local := AllocLocal(16 + 64) // 16 scale/min bytes, then 8 scales and 8 mins as floats
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	dwordConsts()
	end := GP64()
	MOVQ(dst, end)
	SHLQ(U8(2), n)
	ADDQ(n, end)
	CMPQ(dst, end)
	JAE(LabelRef("done"))

	Label("block")
	a0, a1, a2, t := GP32(), GP32(), GP32(), GP32()
	MOVL(Mem{Base: src, Disp: 4}, a0)
	MOVL(Mem{Base: src, Disp: 8}, a1)
	MOVL(Mem{Base: src, Disp: 12}, a2)
	// scales 0-3: a0 & 0x3f3f3f3f; mins 0-3: a1 & 0x3f3f3f3f
	MOVL(a0, t)
	ANDL(U32(0x3f3f3f3f), t)
	MOVL(t, local.Offset(0))
	MOVL(a1, t)
	ANDL(U32(0x3f3f3f3f), t)
	MOVL(t, local.Offset(8))
	// scales 4-7: a2 & 0x0f0f0f0f | ((a0 >> 6) & 0x03030303) << 4
	SHRL(U8(6), a0)
	ANDL(U32(0x03030303), a0)
	SHLL(U8(4), a0)
	MOVL(a2, t)
	ANDL(U32(0x0f0f0f0f), t)
	ORL(a0, t)
	MOVL(t, local.Offset(4))
	// mins 4-7: (a2 >> 4) & 0x0f0f0f0f | ((a1 >> 6) & 0x03030303) << 4
	SHRL(U8(6), a1)
	ANDL(U32(0x03030303), a1)
	SHLL(U8(4), a1)
	SHRL(U8(4), a2)
	ANDL(U32(0x0f0f0f0f), a2)
	ORL(a1, a2)
	MOVL(a2, local.Offset(12))
	// 8 scales·d and 8 mins·dmin as floats.
	avx2.loadScale(Mem{Base: src}, 0, ymm[1])
	VPMOVZXBD(local.Offset(0), ymm[0])
	VCVTDQ2PS(ymm[0], ymm[0])
	VMULPS(ymm[1], ymm[0], ymm[0])
	VMOVUPS(ymm[0], local.Offset(16))
	avx2.loadScale(Mem{Base: src, Disp: 2}, 0, ymm[1])
	VPMOVZXBD(local.Offset(8), ymm[0])
	VCVTDQ2PS(ymm[0], ymm[0])
	VMULPS(ymm[1], ymm[0], ymm[0])
	VMOVUPS(ymm[0], local.Offset(48))

	for k := range 4 { // 64 values: sub-blocks 2k (low nibbles) and 2k+1 (high)
		VBROADCASTSS(local.Offset(16+4*(2*k)), ymm[7])
		VBROADCASTSS(local.Offset(48+4*(2*k)), ymm[8])
		VBROADCASTSS(local.Offset(16+4*(2*k+1)), ymm[9])
		VBROADCASTSS(local.Offset(48+4*(2*k+1)), ymm[10])
		for i := range 4 {
			VPMOVZXBD(Mem{Base: src, Disp: 16 + 32*k + 8*i}, ymm[4])
			VPAND(ymm[13], ymm[4], ymm[5])
			VPSRLD(U8(4), ymm[4], ymm[6])
			for _, h := range []struct {
				v, d, m reg.Register
				off     int
			}{{ymm[5], ymm[7], ymm[8], 0}, {ymm[6], ymm[9], ymm[10], 32}} {
				VCVTDQ2PS(h.v, h.v)
				VMULPS(h.d, h.v, h.v)
				VSUBPS(h.m, h.v, h.v)
				VMOVUPS(h.v, Mem{Base: dst, Disp: 4 * (64*k + h.off + 8*i)})
			}
		}
	}
	ADDQ(U32(144), src)
	ADDQ(U32(4*256), dst)
	CMPQ(dst, end)
	JB(LabelRef("block"))

	Label("done")
	VZEROUPPER()
	RET()
}

// genDecodeQ6K emits decodeQ6KAVX2. Per super-block the 16 int8 scales
// times d go to the stack as floats; each group of 8 positions l of a
// half reads 8 bytes of ql[l], ql[l+32] and qh[l] and makes the 8 values
// of each of the half's four rows of 32. Layout: Y0 d, Y1 scratch, Y4/Y5
// the ql bytes, Y6 the qh bytes, Y7-Y9 a value being built, Y13-Y15 the
// masks 0x0F, 0x03 and the offset 32.
func genDecodeQ6K() {
	TEXT("decodeQ6KAVX2", NOSPLIT, "func(dst *float32, src *byte, n int)")
	Pragma("noescape")
	Doc("decodeQ6KAVX2 converts n Q6_K values at src to float32 at dst; n is a multiple of 256.")
	local := AllocLocal(64) // 16 scales·d
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	dwordConsts()
	end := GP64()
	MOVQ(dst, end)
	SHLQ(U8(2), n)
	ADDQ(n, end)
	CMPQ(dst, end)
	JAE(LabelRef("done"))

	Label("block")
	avx2.loadScale(Mem{Base: src, Disp: 208}, 0, ymm[0])
	for j := range 2 {
		VPMOVSXBD(Mem{Base: src, Disp: 192 + 8*j}, ymm[1])
		VCVTDQ2PS(ymm[1], ymm[1])
		VMULPS(ymm[0], ymm[1], ymm[1])
		VMOVUPS(ymm[1], local.Offset(32*j))
	}
	for h := range 2 {
		for l := 0; l < 32; l += 8 {
			VPMOVZXBD(Mem{Base: src, Disp: 64*h + l}, ymm[4])      // ql[l]
			VPMOVZXBD(Mem{Base: src, Disp: 64*h + 32 + l}, ymm[5]) // ql[l+32]
			VPMOVZXBD(Mem{Base: src, Disp: 128 + 32*h + l}, ymm[6])
			for i := range 4 { // row i of the half: value 32i+l
				lo := ymm[4]
				if i%2 == 1 {
					lo = ymm[5]
				}
				// low 4 bits: a nibble of lo; high 2 bits: bits 2i, 2i+1 of qh
				if i < 2 {
					VPAND(ymm[13], lo, ymm[7])
				} else {
					VPSRLD(U8(4), lo, ymm[7])
				}
				if i == 0 {
					VPAND(ymm[14], ymm[6], ymm[8])
				} else {
					VPSRLD(U8(2*i), ymm[6], ymm[8])
					VPAND(ymm[14], ymm[8], ymm[8])
				}
				VPSLLD(U8(4), ymm[8], ymm[8])
				VPOR(ymm[8], ymm[7], ymm[7])
				VPSUBD(ymm[15], ymm[7], ymm[7])
				VCVTDQ2PS(ymm[7], ymm[7])
				VBROADCASTSS(local.Offset(4*(8*h+2*i+l/16)), ymm[9])
				VMULPS(ymm[9], ymm[7], ymm[7])
				VMOVUPS(ymm[7], Mem{Base: dst, Disp: 4 * (128*h + 32*i + l)})
			}
		}
	}
	ADDQ(U32(210), src)
	ADDQ(U32(4*256), dst)
	CMPQ(dst, end)
	JB(LabelRef("block"))

	Label("done")
	VZEROUPPER()
	RET()
}
