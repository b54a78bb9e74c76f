package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
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

// unpackQ4KScales unpacks the 12 bytes of 6-bit scales and mins of the
// Q4_K super-block at blk (blk(disp) addresses its byte disp) into 16
// bytes at dst: the 8 scales, then the 8 mins. Sub-blocks 0-3 keep theirs
// in the low 6 bits of bytes 0-7; 4-7 in the nibbles of bytes 8-11 and
// the top 2 bits of bytes 0-3 (scales) and 4-7 (mins). Each step works on
// four bytes at once with 32-bit masks.
func unpackQ4KScales(blk func(disp int) Mem, dst Mem) {
	a0, a1, a2, t := GP32(), GP32(), GP32(), GP32()
	MOVL(blk(4), a0)
	MOVL(blk(8), a1)
	MOVL(blk(12), a2)
	// scales 0-3: a0 & 0x3f3f3f3f; mins 0-3: a1 & 0x3f3f3f3f
	MOVL(a0, t)
	ANDL(U32(0x3f3f3f3f), t)
	MOVL(t, dst)
	MOVL(a1, t)
	ANDL(U32(0x3f3f3f3f), t)
	MOVL(t, dst.Offset(8))
	// scales 4-7: a2 & 0x0f0f0f0f | ((a0 >> 6) & 0x03030303) << 4
	SHRL(U8(6), a0)
	ANDL(U32(0x03030303), a0)
	SHLL(U8(4), a0)
	MOVL(a2, t)
	ANDL(U32(0x0f0f0f0f), t)
	ORL(a0, t)
	MOVL(t, dst.Offset(4))
	// mins 4-7: (a2 >> 4) & 0x0f0f0f0f | ((a1 >> 6) & 0x03030303) << 4
	SHRL(U8(6), a1)
	ANDL(U32(0x03030303), a1)
	SHLL(U8(4), a1)
	SHRL(U8(4), a2)
	ANDL(U32(0x0f0f0f0f), a2)
	ORL(a1, a2)
	MOVL(a2, dst.Offset(12))
}

// genBlockDecoder emits name, a decoder of n values of the blocked type
// typ to float32 (func(dst *float32, src *byte, n int), n a multiple of
// values): setup emits the constants, then body converts the block at
// src into the values floats at dst, once per block of bytes bytes.
func genBlockDecoder(name, typ string, values, bytes int, setup func(), body func(dst, src reg.GPVirtual)) {
	TEXT(name, NOSPLIT, "func(dst *float32, src *byte, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s converts n %s values at src to float32 at dst; n is a multiple of %d.", name, typ, values))
	dst := Load(Param("dst"), GP64()).(reg.GPVirtual)
	src := Load(Param("src"), GP64()).(reg.GPVirtual)
	n := Load(Param("n"), GP64())
	setup()
	end := GP64()
	MOVQ(dst, end)
	SHLQ(U8(2), n)
	ADDQ(n, end)
	CMPQ(dst, end)
	JAE(LabelRef("done"))

	Label("block")
	body(dst, src)
	ADDQ(U32(bytes), src)
	ADDQ(U32(4*values), dst)
	CMPQ(dst, end)
	JB(LabelRef("block"))

	Label("done")
	VZEROUPPER()
	RET()
}

// genDecodeQ4K emits decodeQ4KAVX2. Per super-block the 12 bytes of
// packed 6-bit scales and mins are unpacked with 32-bit masks into 8
// scale bytes and 8 min bytes on the stack, widened and multiplied by d
// and dmin into 16 floats there, and each group of 8 quant bytes gives 8
// low-nibble values of one sub-block and 8 high-nibble values of the
// next. Layout: Y0-Y3 scratch, Y4 quants, Y5/Y6 nibbles, Y7-Y10 the
// broadcast scale and min of two sub-blocks, Y13 the nibble mask.
func genDecodeQ4K() {
	genBlockDecoder("decodeQ4KAVX2", "Q4_K", 256, 144, dwordConsts, func(dst, src reg.GPVirtual) {
		local := AllocLocal(16 + 64) // 16 scale/min bytes, then 8 scales and 8 mins as floats
		unpackQ4KScales(func(disp int) Mem { return Mem{Base: src, Disp: disp} }, local)
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
	})
}

// q6Value builds, as 8 floats in dst, the Q6_K values of row i (0-3) of
// a half at 8 positions l, from the widened bytes ql[l] (ql0), ql[l+32]
// (ql32) and qh[l] (qh): the low (rows 0, 1) or high (rows 2, 3) nibble
// of ql0 (rows 0, 2) or ql32 (rows 1, 3), bits 2i and 2i+1 of qh on top,
// minus 32. It uses tmp and the constants of dwordConsts (Y13-Y15).
func q6Value(i int, ql0, ql32, qh, dst, tmp reg.Register) {
	lo := ql0
	if i%2 == 1 {
		lo = ql32
	}
	if i < 2 {
		VPAND(ymm[13], lo, dst)
	} else {
		VPSRLD(U8(4), lo, dst)
	}
	if i == 0 {
		VPAND(ymm[14], qh, tmp)
	} else {
		VPSRLD(U8(2*i), qh, tmp)
		VPAND(ymm[14], tmp, tmp)
	}
	VPSLLD(U8(4), tmp, tmp)
	VPOR(tmp, dst, dst)
	VPSUBD(ymm[15], dst, dst)
	VCVTDQ2PS(dst, dst)
}

// genDecodeQ6K emits decodeQ6KAVX2. Per super-block the 16 int8 scales
// times d go to the stack as floats; each group of 8 positions l of a
// half reads 8 bytes of ql[l], ql[l+32] and qh[l] and makes the 8 values
// of each of the half's four rows of 32. Layout: Y0 d, Y1 scratch, Y4/Y5
// the ql bytes, Y6 the qh bytes, Y7-Y9 a value being built, Y13-Y15 the
// masks 0x0F, 0x03 and the offset 32.
func genDecodeQ6K() {
	genBlockDecoder("decodeQ6KAVX2", "Q6_K", 256, 210, dwordConsts, func(dst, src reg.GPVirtual) {
		local := AllocLocal(64) // 16 scales·d
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
					q6Value(i, ymm[4], ymm[5], ymm[6], ymm[7], ymm[8])
					VBROADCASTSS(local.Offset(4*(8*h+2*i+l/16)), ymm[9])
					VMULPS(ymm[9], ymm[7], ymm[7])
					VMOVUPS(ymm[7], Mem{Base: dst, Disp: 4 * (128*h + 32*i + l)})
				}
			}
		}
	})
}

// kTilePrefetch prefetches the next tile's bytes of one super-block column
// (4 rows of blockBytes) from pf and advances pf, as genTile's
// single-token tiles do.
func kTilePrefetch(pf reg.GPVirtual, blockBytes int) {
	for off := 0; off < 4*blockBytes; off += 64 {
		PREFETCHT0(Mem{Base: pf, Disp: off})
	}
	ADDQ(U32(4*blockBytes), pf)
}

// kTileSetup loads the arguments of a K-quant tile kernel: the token row
// x, the 4 weight row pointers, k, and a prefetch pointer at the next
// tile (4 row strides on); it zeroes the accumulators Y0-Y3.
func kTileSetup() (x reg.GPVirtual, wr [4]reg.GPVirtual, k, pf reg.GPVirtual) {
	x = Load(Param("x"), GP64()).(reg.GPVirtual)
	wr[0] = Load(Param("w"), GP64()).(reg.GPVirtual)
	ws := Load(Param("wstride"), GP64())
	for r := 1; r < 4; r++ {
		wr[r] = GP64()
		LEAQ(Mem{Base: wr[r-1], Index: ws, Scale: 1}, wr[r])
	}
	pf = GP64()
	LEAQ(Mem{Base: wr[3], Index: ws, Scale: 1}, pf)
	k = Load(Param("k"), GP64()).(reg.GPVirtual)
	for r := range 4 {
		VXORPS(ymm[r], ymm[r], ymm[r])
	}
	return
}

// kTileStore stores the lane sums of Y0-Y3 to y[0..3] and returns.
func kTileStore() {
	y := Load(Param("y"), GP64())
	reduce4([4]int{0, 1, 2, 3}, Mem{Base: y})
	VZEROUPPER()
	RET()
}

// genTileQ4K emits tileQ4KAVX2, the single-token matmul tile for Q4_K
// weights, which reads each weight byte once, in registers. With d_j, m_j
// the scale and min of sub-block j (d·scale, dmin·min), a sub-block adds
// d_j·Σ x·q - m_j·Σ x: the quants are widened to float and multiplied
// with x, and Σ x over the sub-block is shared by the 4 rows. Layout:
// accumulators Y0-Y3, Σ x of two sub-blocks Y4/Y5, Σ x·q of two
// sub-blocks of the current row Y6/Y7, quants Y8/Y9, a broadcast Y10,
// the nibble mask Y15. The stack holds the rows' 8 d_j and 8 m_j.
func genTileQ4K() {
	TEXT("tileQ4KAVX2", NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, wstride, k, nt int)")
	Pragma("noescape")
	Doc("tileQ4KAVX2 computes y[r] = Σ_{c<k} w[r][c]·x[c] for 4 rows r of Q4_K weights",
		"wstride bytes apart and one token (nt must be 1). k is a multiple of 256.")
	local := AllocLocal(4*64 + 16)
	x, wr, k, pf := kTileSetup()
	VPCMPEQD(ymm[15], ymm[15], ymm[15])
	VPSRLD(U8(28), ymm[15], ymm[15])
	c, wo := GP64(), GP64()
	XORQ(c, c)
	XORQ(wo, wo)
	TESTQ(k, k)
	JZ(LabelRef("reduce"))

	Label("loop")
	kTilePrefetch(pf, 144)
	for r := range 4 { // the scales and mins of each row's super-block
		blk := func(disp int) Mem { return Mem{Base: wr[r], Index: wo, Scale: 1, Disp: disp} }
		unpackQ4KScales(blk, local.Offset(256))
		for j, half := range []int{0, 2} { // scales times d, mins times dmin
			avx2.loadScale(blk(half), 8, ymm[9])
			VPMOVZXBD(local.Offset(256+8*j), ymm[8])
			VCVTDQ2PS(ymm[8], ymm[8])
			VMULPS(ymm[9], ymm[8], ymm[8])
			VMOVUPS(ymm[8], local.Offset(64*r+32*j))
		}
	}
	for kk := range 4 { // 64 values: sub-blocks 2kk (low nibbles) and 2kk+1
		xm := func(i int) Mem { return Mem{Base: x, Index: c, Scale: 4, Disp: 4 * (64*kk + 8*i)} }
		VMOVUPS(xm(0), ymm[4])
		VMOVUPS(xm(4), ymm[5])
		for i := 1; i < 4; i++ {
			VADDPS(xm(i), ymm[4], ymm[4])
			VADDPS(xm(4+i), ymm[5], ymm[5])
		}
		for r := range 4 {
			for i := range 4 {
				VPMOVZXBD(Mem{Base: wr[r], Index: wo, Scale: 1, Disp: 16 + 32*kk + 8*i}, ymm[8])
				VPAND(ymm[15], ymm[8], ymm[9])
				VPSRLD(U8(4), ymm[8], ymm[8])
				VCVTDQ2PS(ymm[9], ymm[9])
				VCVTDQ2PS(ymm[8], ymm[8])
				if i == 0 {
					VMULPS(xm(i), ymm[9], ymm[6])
					VMULPS(xm(4+i), ymm[8], ymm[7])
				} else {
					VFMADD231PS(xm(i), ymm[9], ymm[6])
					VFMADD231PS(xm(4+i), ymm[8], ymm[7])
				}
			}
			acc := ymm[r]
			VBROADCASTSS(local.Offset(64*r+4*(2*kk)), ymm[10])
			VFMADD231PS(ymm[6], ymm[10], acc)
			VBROADCASTSS(local.Offset(64*r+4*(2*kk+1)), ymm[10])
			VFMADD231PS(ymm[7], ymm[10], acc)
			VBROADCASTSS(local.Offset(64*r+32+4*(2*kk)), ymm[10])
			VFNMADD231PS(ymm[4], ymm[10], acc)
			VBROADCASTSS(local.Offset(64*r+32+4*(2*kk+1)), ymm[10])
			VFNMADD231PS(ymm[5], ymm[10], acc)
		}
	}
	ADDQ(U32(256), c)
	ADDQ(U32(144), wo)
	CMPQ(c, k)
	JB(LabelRef("loop"))

	Label("reduce")
	kTileStore()
}

// genTileQ6K emits tileQ6KAVX2, the single-token matmul tile for Q6_K
// weights: per group of 16 values, Σ x·q in float times the group's
// d·scale. Layout: accumulators Y0-Y3, Σ x·q of the four value rows of a
// half Y4-Y7, the ql, ql+32 and qh bytes Y8-Y10, a quant being built
// Y11, scratch Y12, masks 0x0F and 0x03 and the offset 32 in Y13-Y15.
// The stack holds the rows' 16 d·scales.
func genTileQ6K() {
	TEXT("tileQ6KAVX2", NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, wstride, k, nt int)")
	Pragma("noescape")
	Doc("tileQ6KAVX2 computes y[r] = Σ_{c<k} w[r][c]·x[c] for 4 rows r of Q6_K weights",
		"wstride bytes apart and one token (nt must be 1). k is a multiple of 256.")
	local := AllocLocal(4 * 64)
	x, wr, k, pf := kTileSetup()
	dwordConsts()
	c, wo := GP64(), GP64()
	XORQ(c, c)
	XORQ(wo, wo)
	TESTQ(k, k)
	JZ(LabelRef("reduce"))

	Label("loop")
	kTilePrefetch(pf, 210)
	for r := range 4 {
		avx2.loadScale(Mem{Base: wr[r], Index: wo, Scale: 1, Disp: 208}, 12, ymm[12])
		for j := range 2 {
			VPMOVSXBD(Mem{Base: wr[r], Index: wo, Scale: 1, Disp: 192 + 8*j}, ymm[11])
			VCVTDQ2PS(ymm[11], ymm[11])
			VMULPS(ymm[12], ymm[11], ymm[11])
			VMOVUPS(ymm[11], local.Offset(64*r+32*j))
		}
	}
	for h := range 2 {
		for r := range 4 {
			blk := func(disp int) Mem { return Mem{Base: wr[r], Index: wo, Scale: 1, Disp: disp} }
			for g := range 2 { // positions 16g..16g+15 of the half's 32
				for li, l := range []int{16 * g, 16*g + 8} {
					VPMOVZXBD(blk(64*h+l), ymm[8])
					VPMOVZXBD(blk(64*h+32+l), ymm[9])
					VPMOVZXBD(blk(128+32*h+l), ymm[10])
					for i := range 4 { // value row i: value 128h + 32i + l
						q6Value(i, ymm[8], ymm[9], ymm[10], ymm[11], ymm[12])
						xm := Mem{Base: x, Index: c, Scale: 4, Disp: 4 * (128*h + 32*i + l)}
						if li == 0 {
							VMULPS(xm, ymm[11], ymm[4+i])
						} else {
							VFMADD231PS(xm, ymm[11], ymm[4+i])
						}
					}
				}
				for i := range 4 {
					VBROADCASTSS(local.Offset(64*r+4*(8*h+2*i+g)), ymm[12])
					VFMADD231PS(ymm[4+i], ymm[12], ymm[r])
				}
			}
		}
	}
	ADDQ(U32(256), c)
	ADDQ(U32(210), wo)
	CMPQ(c, k)
	JB(LabelRef("loop"))

	Label("reduce")
	kTileStore()
}

// q5Consts is the table of genDecodeQ5 and genTileQ5: four vectors
// of per-lane shift counts (0-7, 8-15, 16-23, 24-31) that bring bit j of
// a block's qh word to the bottom of lane j%8.
var q5Consts Mem

func q5Shifts(group int) Mem {
	if q5Consts.Symbol.Name == "" {
		q5Consts = GLOBL("q5shifts", attr.RODATA|attr.NOPTR)
		for i := range 32 {
			DATA(4*i, U32(uint32(i)))
		}
	}
	return q5Consts.Offset(32 * group)
}

// q5Values builds, as 8 floats in lo and hi, the values j0..j0+7 and
// 16+j0..16+j0+7 of a Q5_0 or Q4_0 block at blk (j0 is 0 or 8): the low
// and high nibbles of qs[j0..j0+7], for Q5_0 with bits j and j+16 of qh
// (broadcast in qh) on top, minus the bias (16 or 8), not yet times d.
// Needs Y13 = 0x0F, Y14 = 1, Y15 = the bias in every lane (q5Consts3);
// uses tmp.
func q5Values(b q5Block, blk Mem, j0 int, qh, lo, hi, tmp reg.Register) {
	VPMOVZXBD(blk.Offset(b.qsOff+j0), lo)
	VPSRLD(U8(4), lo, hi)
	VPAND(ymm[13], lo, lo)
	for k, v := range []reg.Register{lo, hi} {
		if b.hasQH {
			VPSRLVD(q5Shifts(j0/8+2*k), qh, tmp)
			VPAND(ymm[14], tmp, tmp)
			VPSLLD(U8(4), tmp, tmp)
			VPOR(tmp, v, v)
		}
		VPSUBD(ymm[15], v, v)
		VCVTDQ2PS(v, v)
	}
}

// q5Block describes the two 32-value formats with one f16 scale first:
// Q5_0 (a 32-bit word of fifth bits, then 16 bytes of nibbles, bias 16)
// and Q4_0 (16 bytes of nibbles, bias 8).
type q5Block struct {
	name       string // suffix of the kernel names
	bytes      int    // block size
	qsOff      int    // offset of the nibbles
	hasQH      bool
	biasShift  uint8 // the bias is 1 << biasShift
	kernelType string
}

var (
	q5_0 = q5Block{name: "Q5", bytes: 22, qsOff: 6, hasQH: true, biasShift: 4, kernelType: "Q5_0"}
	q4_0 = q5Block{name: "Q4", bytes: 18, qsOff: 2, biasShift: 3, kernelType: "Q4_0"}
)

// q5Consts3 sets Y13 = 0x0F, Y14 = 1, Y15 = the bias of b in every lane.
func q5Consts3(b q5Block) {
	VPCMPEQD(ymm[15], ymm[15], ymm[15])
	VPSRLD(U8(28), ymm[15], ymm[13])
	VPSRLD(U8(31), ymm[15], ymm[14])
	VPSLLD(U8(b.biasShift), ymm[14], ymm[15])
}

// genDecodeQ5 emits decodeQ5AVX2 or decodeQ4AVX2: per block of 32, d
// broadcast in Y0, qh broadcast in Y1, values in Y2/Y3, scratch Y4.
func genDecodeQ5(b q5Block) {
	genBlockDecoder("decode"+b.name+"AVX2", b.kernelType, 32, b.bytes, func() { q5Consts3(b) }, func(dst, src reg.GPVirtual) {
		avx2.loadScale(Mem{Base: src}, 0, ymm[0])
		if b.hasQH {
			VPBROADCASTD(Mem{Base: src, Disp: 2}, ymm[1])
		}
		for _, j0 := range []int{0, 8} {
			q5Values(b, Mem{Base: src}, j0, ymm[1], ymm[2], ymm[3], ymm[4])
			VMULPS(ymm[0], ymm[2], ymm[2])
			VMULPS(ymm[0], ymm[3], ymm[3])
			VMOVUPS(ymm[2], Mem{Base: dst, Disp: 4 * j0})
			VMOVUPS(ymm[3], Mem{Base: dst, Disp: 4 * (16 + j0)})
		}
	})
}

// genTileQ5 emits tileQ5AVX2 or tileQ4AVX2, the single-token tile for
// Q5_0 or Q4_0 weights: per block and row, Σ x·q over the 32 values in
// float, times d. Layout: accumulators Y0-Y3, the row's Σ x·q Y5, d Y6,
// qh Y7, values Y8/Y9, scratch Y10, constants Y13-Y15.
func genTileQ5(b q5Block) {
	TEXT("tile"+b.name+"AVX2", NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, wstride, k, nt int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("tile%sAVX2 computes y[r] = Σ_{c<k} w[r][c]·x[c] for 4 rows r of %s weights", b.name, b.kernelType),
		"wstride bytes apart and one token (nt must be 1). k is a multiple of 32.")
	x, wr, k, pf := kTileSetup()
	q5Consts3(b)
	c, wo := GP64(), GP64()
	XORQ(c, c)
	XORQ(wo, wo)
	TESTQ(k, k)
	JZ(LabelRef("reduce"))

	Label("loop")
	for off := 0; off < 4*b.bytes; off += 64 { // the next tile's block column
		PREFETCHT0(Mem{Base: pf, Disp: off})
	}
	ADDQ(U32(4*b.bytes), pf)
	for r := range 4 {
		blk := Mem{Base: wr[r], Index: wo, Scale: 1}
		avx2.loadScale(blk, 6, ymm[6])
		if b.hasQH {
			VPBROADCASTD(blk.Offset(2), ymm[7])
		}
		for _, j0 := range []int{0, 8} {
			q5Values(b, blk, j0, ymm[7], ymm[8], ymm[9], ymm[10])
			xlo := Mem{Base: x, Index: c, Scale: 4, Disp: 4 * j0}
			xhi := Mem{Base: x, Index: c, Scale: 4, Disp: 4 * (16 + j0)}
			if j0 == 0 {
				VMULPS(xlo, ymm[8], ymm[5])
			} else {
				VFMADD231PS(xlo, ymm[8], ymm[5])
			}
			VFMADD231PS(xhi, ymm[9], ymm[5])
		}
		VFMADD231PS(ymm[6], ymm[5], ymm[r]) // acc += d·Σ x·q
	}
	ADDQ(U32(32), c)
	ADDQ(U32(b.bytes), wo)
	CMPQ(c, k)
	JB(LabelRef("loop"))

	Label("reduce")
	kTileStore()
}
