package main

import (
	"fmt"

	"github.com/mmcloughlin/avo/attr"
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// q8ActBytes is the bytes of one quantized activation block: 32 int8
// values, then their float32 scale (kernels.Q8ActBlockBytes).
const q8ActBytes = 36

// genQuantizeQ8Acts emits quantizeQ8ActsAVX2, the vector form of
// kernels.quantizeQ8ActsGo: per block of 32 floats, amax = max |x|,
// id = 127/amax (0 for an all-zero block), q = round-to-even(x·id), and
// the scale d = amax/127 (NaN if the block holds a NaN, so that it
// reaches the output). Layout: values Y0-Y3, |x| mask Y4, NaN lanes and
// then id Y5, pack order Y6, scratch Y7/Y8.
func genQuantizeQ8Acts() {
	TEXT("quantizeQ8ActsAVX2", NOSPLIT, "func(dst *byte, x *float32, blocks int)")
	Pragma("noescape")
	Doc("quantizeQ8ActsAVX2 quantizes blocks blocks of 32 floats at x into",
		"36-byte blocks at dst: 32 int8 values, then the float32 scale.")
	dst := Load(Param("dst"), GP64())
	x := Load(Param("x"), GP64())
	n := Load(Param("blocks"), GP64())
	VPCMPEQD(ymm[4], ymm[4], ymm[4])
	VPSRLD(U8(1), ymm[4], ymm[4]) // 0x7fffffff
	order := GLOBL("q8actorder", attr.RODATA|attr.NOPTR)
	for i, v := range []uint32{0, 4, 1, 5, 2, 6, 3, 7} {
		DATA(4*i, U32(v))
	}
	VMOVDQU(order, ymm[6])
	c127 := GP32()
	MOVL(U32(0x42fe0000), c127) // 127.0
	TESTQ(n, n)
	JZ(LabelRef("done"))

	Label("loop")
	for i := range 4 {
		VMOVUPS(Mem{Base: x, Disp: 32 * i}, ymm[i])
	}
	VCMPPS(U8(3), ymm[0], ymm[0], ymm[5]) // unordered: NaN lanes, which VMAXPS would drop
	for i := 1; i < 4; i++ {
		VCMPPS(U8(3), ymm[i], ymm[i], ymm[8])
		VORPS(ymm[8], ymm[5], ymm[5])
	}
	VANDPS(ymm[0], ymm[4], ymm[7])
	VANDPS(ymm[1], ymm[4], ymm[8])
	VMAXPS(ymm[8], ymm[7], ymm[7])
	VANDPS(ymm[2], ymm[4], ymm[8])
	VMAXPS(ymm[8], ymm[7], ymm[7])
	VANDPS(ymm[3], ymm[4], ymm[8])
	VMAXPS(ymm[8], ymm[7], ymm[7])
	reduceMax(7, 8) // amax in every lane of X7
	VPTEST(ymm[5], ymm[5])
	JZ(LabelRef("ordered"))
	VPCMPEQD(xmm[7], xmm[7], xmm[7]) // a NaN in the block: amax and d are NaN, as in Go
	Label("ordered")
	VMOVD(c127, xmm[8])
	VDIVSS(xmm[8], xmm[7], xmm[5]) // d = amax/127
	VMOVSS(xmm[5], Mem{Base: dst, Disp: 32})
	VDIVSS(xmm[7], xmm[8], xmm[5]) // id = 127/amax: +Inf for amax 0
	VXORPS(xmm[8], xmm[8], xmm[8])
	VCMPPS(U8(4), xmm[8], xmm[7], xmm[8]) // amax != 0
	VANDPS(xmm[8], xmm[5], xmm[5])
	VBROADCASTSS(xmm[5], ymm[5])
	for i := range 4 {
		VMULPS(ymm[5], ymm[i], ymm[i])
		VCVTPS2DQ(ymm[i], ymm[i]) // rounds to nearest even (MXCSR default)
	}
	VPACKSSDW(ymm[1], ymm[0], ymm[0]) // int16: x0 lo, x1 lo | x0 hi, x1 hi, 4 each
	VPACKSSDW(ymm[3], ymm[2], ymm[2])
	VPACKSSWB(ymm[2], ymm[0], ymm[0]) // int8, values 4g..4g+3 in the order g = 0 2 4 6 1 3 5 7
	VPERMD(ymm[0], ymm[6], ymm[0])
	VMOVDQU(ymm[0], Mem{Base: dst})
	ADDQ(U32(128), x)
	ADDQ(U32(q8ActBytes), dst)
	DECQ(n)
	JNZ(LabelRef("loop"))

	Label("done")
	VZEROUPPER()
	RET()
}

// genTileQ8A8 emits tileQ8A8AVX2, the decode tile for Q8_0 weights and
// activations quantized by quantizeQ8ActsAVX2, as llama.cpp's ggml_vec_dot_q8_0_q8_0
// does it: per block and row, the 32 int8 products summed in integers
// (VPSIGNB moves the weight's sign onto the activation so that
// VPMADDUBSW can take |w| as its unsigned operand; VPMADDWD by ones widens
// the pair sums to int32), then converted once and multiplied by d_w·d_x.
// That is 11 instructions per row and block where widening each weight
// to float took 20, which left the float kernel at its compute limit on
// two cores streaming from memory. (Interleaved rows, as the F16 tiles
// read them, streamed no faster here: 15.3-16.9 against 16.1-17.0 GB/s
// layer by layer. Rows packed 4 to a vector do: genTileQ8X4. This tile
// takes the Q8_0 matrices whose rows do not come in fours.)
//
// Layout (T = nt <= 2 tokens): accumulators Y8-Y15 (row r, token t:
// Y(8+4t+r)), activations Y0/Y1, weights Y2, |w| Y3, products Y4, d_w Y5,
// d_w·d_x Y6, int16 ones Y7. One token broadcasts d_x once per block for
// the 4 rows, into Y12, where two tokens broadcast it per row: the
// 576x576 matrix from cache went from 33.6 to 34.3 GB/s on two cores
// (medians of 40 runs alternating in one process; from memory 16.2 to
// 16.5).
func genTileQ8A8() {
	TEXT("tileQ8A8AVX2", NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, wstride, k, nt, tiles, pf int)")
	Pragma("noescape")
	Doc("tileQ8A8AVX2 computes y[t*ystride+r] = Σ_{c<k} w[r][c]·x[t][c] for tiles*4 rows r of",
		"Q8_0 weights wstride bytes apart and nt <= 2 tokens t, whose activations x are",
		"quantized blocks (see quantizeQ8ActsAVX2), xstride floats apart. k is a",
		"multiple of 32. Its prefetches run pf bytes ahead of the tile's first row, as",
		"fast as the tile reads its 4 rows.",
		"(Several tiles per call: a call per 4 rows of 576 Q8_0 values cost 5% of a",
		"decode step in Go around the kernel.)")
	var wr [4]reg.GPVirtual
	wr[0] = Load(Param("w"), GP64()).(reg.GPVirtual)
	ws := Load(Param("wstride"), GP64())
	for r := 1; r < 4; r++ {
		wr[r] = GP64()
		LEAQ(Mem{Base: wr[r-1], Index: ws, Scale: 1}, wr[r])
	}
	k := Load(Param("k"), GP64())
	nt := Load(Param("nt"), GP64())
	VPCMPEQW(ymm[7], ymm[7], ymm[7])
	VPSRLW(U8(15), ymm[7], ymm[7]) // int16 ones
	CMPQ(nt, U8(1))
	JEQ(LabelRef("tokens1"))

	for _, T := range []int{2, 1} {
		Label(fmt.Sprintf("tokens%d", T))
		acc := func(r, t int) reg.Register { return ymm[8+4*t+r] }
		xt := q8ActTokens(T)
		y := Load(Param("y"), GP64())
		tiles := Load(Param("tiles"), GP64())
		aend := q8ActEnd(k)
		tile, done := fmt.Sprintf("tile%d", T), fmt.Sprintf("done%d", T)
		TESTQ(tiles, tiles)
		JZ(LabelRef(done))

		Label(tile)
		for t := range T {
			for r := range 4 {
				VXORPS(acc(r, t), acc(r, t), acc(r, t))
			}
		}
		pf := GP64() // pf bytes on, 4 blocks of 34 bytes per loop
		pfd := Load(Param("pf"), GP64())
		LEAQ(Mem{Base: wr[0], Index: pfd, Scale: 1}, pf)
		wo, ao := GP64(), GP64() // weight block offset, activation block offset
		XORQ(wo, wo)
		XORQ(ao, ao)
		loop, reduce := fmt.Sprintf("loop%d", T), fmt.Sprintf("reduce%d", T)
		TESTQ(aend, aend)
		JZ(LabelRef(reduce))

		Label(loop)
		for off := 0; off < 4*q8BlockBytes; off += 64 { // 4 rows' worth from pf bytes on, as fast as these are read
			PREFETCHT0(Mem{Base: pf, Disp: off})
		}
		ADDQ(U32(4*q8BlockBytes), pf)
		for t := range T {
			VMOVDQU(Mem{Base: xt[t], Index: ao, Scale: 1}, ymm[t])
		}
		if T == 1 {
			VBROADCASTSS(Mem{Base: xt[0], Index: ao, Scale: 1, Disp: 32}, ymm[12])
		}
		for r := range 4 {
			blk := Mem{Base: wr[r], Index: wo, Scale: 1}
			VMOVDQU(blk.Offset(2), ymm[2])
			avx2.loadScale(blk, 6, ymm[5])
			VPSIGNB(ymm[2], ymm[2], ymm[3]) // |w|
			for t := range T {
				VPSIGNB(ymm[2], ymm[t], ymm[4])    // x·sign(w)
				VPMADDUBSW(ymm[4], ymm[3], ymm[4]) // |w|·x·sign(w), pairs summed: int16
				VPMADDWD(ymm[7], ymm[4], ymm[4])   // int32
				VCVTDQ2PS(ymm[4], ymm[4])
				if T == 1 {
					VMULPS(ymm[5], ymm[12], ymm[6])
				} else {
					VBROADCASTSS(Mem{Base: xt[t], Index: ao, Scale: 1, Disp: 32}, ymm[6])
					VMULPS(ymm[5], ymm[6], ymm[6])
				}
				VFMADD231PS(ymm[4], ymm[6], acc(r, t))
			}
		}
		ADDQ(U32(q8BlockBytes), wo)
		ADDQ(U32(q8ActBytes), ao)
		CMPQ(ao, aend)
		JB(LabelRef(loop))

		Label(reduce)
		yt := GP64()
		MOVQ(y, yt)
		for t := range T {
			reduce4([4]int{8 + 4*t, 9 + 4*t, 10 + 4*t, 11 + 4*t}, Mem{Base: yt})
			if t < T-1 {
				ys := Load(Param("ystride"), GP64())
				LEAQ(Mem{Base: yt, Index: ys, Scale: 4}, yt)
			}
		}
		ADDQ(U32(16), y)
		ws4 := Load(Param("wstride"), GP64())
		SHLQ(U8(2), ws4)
		for r := range 4 {
			ADDQ(ws4, wr[r])
		}
		DECQ(tiles)
		JNZ(LabelRef(tile))
		Label(done)
		VZEROUPPER()
		RET()
	}
}

// genTileQ8X4 emits tileQ8X4AVX2, tileQ8A8AVX2 for Q8_0 weights packed 4
// rows at a time (kernels.Interleave), as llama.cpp's repacked Q8_0 is.
// Each 32-byte load holds 8 columns of each of the 4 rows, so one
// VPBROADCASTQ of the activations' 8 matching bytes serves all 4 rows,
// and the 4 loads of a block sum, in integers, into one vector whose lane
// pairs are the rows. One conversion and one multiply by the 4 rows'
// d_w·d_x (lane pairs again: VPUNPCKLWD doubles each half before
// VCVTPH2PS) then scale the whole block, where the row-major tile did
// both per row: 34 instructions a block in the one-token loop,
// prefetches aside, against about 42. From L2, one core: 26 → 39 GB/s;
// layer by layer from memory on two cores, 8-11% faster; a decode step of
// the Q8_0 SmolLM2-135M, alternating in one process, 5-7% shorter at 16
// and 512 positions. llama.cpp keeps each group-block's 4 scales in front of its
// quants; here they lie apart, so that every quant load is 32-byte
// aligned, and the hardware prefetcher follows the scales.
//
// Layout (T = nt <= 2 tokens): accumulators Y0/Y1 (token t: Y(t)),
// weights Y2, |w| Y3, products Y4, integer block sums Y5/Y6, d_w Y7,
// d_w·d_x Y8, int16 ones Y15.
func genTileQ8X4() {
	TEXT("tileQ8X4AVX2", NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, d *byte, k, nt, groups, pf int)")
	Pragma("noescape")
	Doc("tileQ8X4AVX2 is tileQ8A8AVX2 for groups consecutive groups of 4 packed Q8_0",
		"rows: their quants at w and their scales at d (see kernels.Interleave). k is a",
		"positive multiple of 32. Its prefetches run pf bytes ahead of its quant reads.")
	w := Load(Param("w"), GP64())
	d := Load(Param("d"), GP64())
	k := Load(Param("k"), GP64())
	nt := Load(Param("nt"), GP64())
	VPCMPEQW(ymm[15], ymm[15], ymm[15])
	VPSRLW(U8(15), ymm[15], ymm[15]) // int16 ones
	aend := q8ActEnd(k)
	CMPQ(nt, U8(1))
	JEQ(LabelRef("tokens1"))
	for _, T := range []int{2, 1} {
		Label(fmt.Sprintf("tokens%d", T))
		xt := q8ActTokens(T)
		y := Load(Param("y"), GP64())
		groups := Load(Param("groups"), GP64())
		pfd := Load(Param("pf"), GP64())
		group, done := fmt.Sprintf("group%d", T), fmt.Sprintf("gdone%d", T)
		TESTQ(groups, groups)
		JZ(LabelRef(done))
		Label(group)
		acc := func(t int) reg.Register { return ymm[t] }
		sum := func(t int) reg.Register { return ymm[5+t] }
		for t := range T {
			VXORPS(acc(t), acc(t), acc(t))
		}
		ao := GP64()
		XORQ(ao, ao)
		loop := fmt.Sprintf("gloop%d", T)
		Label(loop)
		PREFETCHT0(Mem{Base: w, Index: pfd, Scale: 1})
		PREFETCHT0(Mem{Base: w, Index: pfd, Scale: 1, Disp: 64})
		for c := range 4 {
			VMOVDQU(Mem{Base: w, Disp: 32 * c}, ymm[2])
			VPSIGNB(ymm[2], ymm[2], ymm[3]) // |w|
			for t := range T {
				VPBROADCASTQ(Mem{Base: xt[t], Index: ao, Scale: 1, Disp: 8 * c}, ymm[4])
				VPSIGNB(ymm[2], ymm[4], ymm[4])    // x·sign(w)
				VPMADDUBSW(ymm[4], ymm[3], ymm[4]) // int16 pair sums
				if c == 0 {
					VPMADDWD(ymm[15], ymm[4], sum(t))
				} else {
					VPMADDWD(ymm[15], ymm[4], ymm[4])
					VPADDD(ymm[4], sum(t), sum(t))
				}
			}
		}
		VMOVQ(Mem{Base: d}, xmm[7])
		VPUNPCKLWD(xmm[7], xmm[7], xmm[7])
		VCVTPH2PS(xmm[7], ymm[7]) // d_w of rows 0 0 1 1 2 2 3 3
		for t := range T {
			VBROADCASTSS(Mem{Base: xt[t], Index: ao, Scale: 1, Disp: 32}, ymm[8])
			VMULPS(ymm[7], ymm[8], ymm[8])
			VCVTDQ2PS(sum(t), sum(t))
			VFMADD231PS(sum(t), ymm[8], acc(t))
		}
		ADDQ(U32(128), w)
		ADDQ(U8(8), d)
		ADDQ(U32(q8ActBytes), ao)
		CMPQ(ao, aend)
		JB(LabelRef(loop))

		yt := GP64()
		MOVQ(y, yt)
		for t := range T {
			VEXTRACTF128(U8(1), acc(t), xmm[8])
			VHADDPS(xmm[8], xmm[t], xmm[t]) // r0 r1 r2 r3
			VMOVUPS(xmm[t], Mem{Base: yt})
			if t < T-1 {
				ys := Load(Param("ystride"), GP64())
				LEAQ(Mem{Base: yt, Index: ys, Scale: 4}, yt)
			}
		}
		ADDQ(U32(16), y)
		DECQ(groups)
		JNZ(LabelRef(group))
		Label(done)
		VZEROUPPER()
		RET()
	}
}

// genDecodeQ8X4 emits decodeQ8X4AVX2 (rows 4), which converts packed
// Q8_0 weights (kernels.Interleave) to float32 in the F32 interleaved
// order, for the prefill panels: per group of 4 rows and block, each
// row's 32 values in turn; and decodeQ8X4RowAVX2 (rows 1), which converts
// one row of them, for Matrix.Row (the training backward pass reads every
// base weight row so). Both compute exactly d·q, as kernels.DecodeRow
// does.
func genDecodeQ8X4(rows int) {
	name, doc := "decodeQ8X4AVX2", []string{
		"decodeQ8X4AVX2 converts blocks blocks of 4 packed Q8_0 rows, their quants at w",
		"and their scales at d, to 128 float32 values each at dst: per block, row 0's",
		"32 values, then row 1's, row 2's and row 3's.",
	}
	if rows == 1 {
		name, doc = "decodeQ8X4RowAVX2", []string{
			"decodeQ8X4RowAVX2 converts one row of blocks blocks of packed Q8_0 rows to",
			"32 float32 values each at dst; w points at the row's first 8 quants, d at",
			"its first scale.",
		}
	}
	TEXT(name, NOSPLIT, "func(dst *float32, w *byte, d *byte, blocks int)")
	Pragma("noescape")
	Doc(doc...)
	dst := Load(Param("dst"), GP64())
	w := Load(Param("w"), GP64())
	d := Load(Param("d"), GP64())
	n := Load(Param("blocks"), GP64())
	TESTQ(n, n)
	JZ(LabelRef("done"))
	Label("loop")
	for i := range rows {
		avx2.loadScale(Mem{Base: d, Disp: 2 * i}, 5, ymm[4])
		for c := range 4 {
			avx2.loadQ8(Mem{Base: w, Disp: 32*c + 8*i}, ymm[4], ymm[c])
			VMOVUPS(ymm[c], Mem{Base: dst, Disp: 4 * (32*i + 8*c)})
		}
	}
	ADDQ(U32(128), w)
	ADDQ(U8(8), d)
	ADDQ(U32(128*rows), dst)
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// q8ActTokens loads the pointers to the quantized activations of T <= 2
// tokens, xstride floats apart, for the int8 decode tiles.
func q8ActTokens(T int) []reg.Register {
	xt := []reg.Register{Load(Param("x"), GP64())}
	if T == 2 {
		xs := Load(Param("xstride"), GP64())
		SHLQ(U8(2), xs)
		x1 := GP64()
		LEAQ(Mem{Base: xt[0], Index: xs, Scale: 1}, x1)
		xt = append(xt, x1)
	}
	return xt
}

// q8ActEnd returns the bytes of k/32 quantized activation blocks: the end
// of a token's blocks for the int8 decode tiles.
func q8ActEnd(k reg.Register) reg.GPVirtual {
	aend := GP64()
	MOVQ(k, aend)
	SHRQ(U8(5), aend)
	IMUL3Q(U32(q8ActBytes), aend, aend)
	return aend
}
