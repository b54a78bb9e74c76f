// Command _asm generates the amd64 assembly of package kernels with avo.
//
// It is run by `go generate ./kernels` once per output file:
//
//	go run . -out ../matmul_amd64.s -stubs ../matmul_stubs_amd64.go -pkg kernels matmul
//
// The last argument picks the functions: cpu, matmul or ops. Every kernel
// is generated twice, for AVX2 (ymm, 8 lanes) and AVX-512 (zmm, 16 lanes).
// Vector registers are assigned by hand (see the layout comments at each
// kernel) so that AVX2 code never touches X16-X31, which have no VEX
// encoding; only general-purpose registers are left to avo's allocator.
package main

import (
	"flag"
	"fmt"
	"os"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

func main() {
	flag.Parse()
	ConstraintExpr("!purego")
	switch flag.Arg(0) {
	case "cpu":
		genCPU()
	case "matmul":
		for _, v := range isas {
			for _, dt := range dtypes {
				genTile(v, dt, false)
				if dt != q8 { // Q8_0 is packed instead: genTileQ8X4
					genTile(v, dt, true)
				}
			}
			for _, dt := range dtypes[1:] {
				genDecode(v, dt)
			}
		}
		genDecodeQ4K()
		genDecodeQ6K()
		genTileQ4K()
		genTileQ6K()
		for _, b := range []q5Block{q5_0, q4_0} {
			genDecodeQ5(b)
			genTileQ5(b)
		}
		genQuantizeQ8Acts()
		genTileQ8A8()
		genTileQ8X4()
		genDecodeQ8X4(4)
		genDecodeQ8X4(1)
	case "ops":
		for _, v := range isas {
			genDot(v)
			for _, dt := range dtypes {
				genAxpy(v, dt)
			}
			genSumSquares(v)
			genScaleMul(v)
		}
		genAxpyRows(f32)
		genAxpyRows(f16)
		genAxpyRowsWide(f32)
		genAxpyRowsWide(f16)
		genExpSum()
		genLargest()
		genEncodeF16()
		genSiLUMul()
	default:
		fmt.Fprintln(os.Stderr, "usage: _asm [avo flags] cpu|matmul|ops")
		os.Exit(2)
	}
	Generate()
}

// isa is one vector instruction set.
type isa struct {
	name  string // suffix of the generated function names
	lanes int    // float32 lanes in one vector
	bytes int    // bytes in one vector
}

var (
	avx2   = isa{name: "AVX2", lanes: 8, bytes: 32}
	avx512 = isa{name: "AVX512", lanes: 16, bytes: 64}
	isas   = []isa{avx2, avx512}
)

// vec returns full-width vector register i: Yi for AVX2, Zi for AVX-512.
func (v isa) vec(i int) reg.Register {
	if v == avx2 {
		return ymm[i]
	}
	return zmm[i]
}

// half returns the register holding half a vector's worth of 16-bit data
// behind vector register i: Xi for AVX2, Yi for AVX-512. i must be < 16.
func (v isa) half(i int) reg.Register {
	if v == avx2 {
		return xmm[i]
	}
	return ymm[i]
}

// zero clears vector register r (VPXORD: VXORPS on zmm needs AVX512DQ).
func (v isa) zero(r reg.Register) {
	if v == avx2 {
		VXORPS(r, r, r)
	} else {
		VPXORD(r, r, r)
	}
}

// fold leaves in Y(dst) the 8 lane-wise partial sums of vector register
// src, so that the AVX2 horizontal sums below can finish the job. dst
// must be < 16; for AVX2 it copies nothing when src == dst.
func (v isa) fold(src reg.Register, dst int) {
	if v == avx2 {
		if src != ymm[dst] {
			VMOVAPS(src, ymm[dst])
		}
		return
	}
	VEXTRACTF64X4(U8(1), src, ymm[dst])
	VADDPS(src, zmm[dst], zmm[dst]) // low half: lo(src) + hi(src)
}

// reduce4 stores the four sums of Y(a0..a3)'s 8 lanes to the four floats
// at m, using the registers as scratch. All four must be < 16.
func reduce4(a [4]int, m Mem) {
	VHADDPS(ymm[a[1]], ymm[a[0]], ymm[a[0]]) // a0: 01 01 11 11 | ...
	VHADDPS(ymm[a[3]], ymm[a[2]], ymm[a[2]])
	VHADDPS(ymm[a[2]], ymm[a[0]], ymm[a[0]]) // a0: s0 s1 s2 s3 | s0' s1' s2' s3'
	VEXTRACTF128(U8(1), ymm[a[0]], xmm[a[1]])
	VADDPS(xmm[a[1]], xmm[a[0]], xmm[a[0]])
	VMOVUPS(xmm[a[0]], m)
}

// reduce1 leaves the sum of Y(a)'s 8 lanes in the low lane of X(a),
// using X(tmp) as scratch.
func reduce1(a, tmp int) {
	VEXTRACTF128(U8(1), ymm[a], xmm[tmp])
	VADDPS(xmm[tmp], xmm[a], xmm[a])
	VHADDPS(xmm[a], xmm[a], xmm[a])
	VHADDPS(xmm[a], xmm[a], xmm[a])
}

// reduceMax leaves the largest of the 8 lanes of Y(a) in every lane of
// X(a), using X(tmp) as scratch. A NaN lane may or may not survive
// (VMAXPS), so callers that care look for NaNs themselves.
func reduceMax(a, tmp int) {
	VEXTRACTF128(U8(1), ymm[a], xmm[tmp])
	VMAXPS(xmm[tmp], xmm[a], xmm[a])
	VPERMILPS(U8(0x4e), xmm[a], xmm[tmp])
	VMAXPS(xmm[tmp], xmm[a], xmm[a])
	VPERMILPS(U8(0xb1), xmm[a], xmm[tmp])
	VMAXPS(xmm[tmp], xmm[a], xmm[a])
}

// dtype is a weight storage type, numbered as kernels.DType.
type dtype struct {
	name  string // "F32", "F16", "BF16", "Q8_0" without the underscore
	size  int    // bytes per value; 0 for Q8_0, which is blocked
	index int    // kernels.DType value
}

var (
	f32    = dtype{"F32", 4, 0}
	f16    = dtype{"F16", 2, 1}
	bf16   = dtype{"BF16", 2, 2}
	q8     = dtype{"Q8", 0, 3}
	dtypes = []dtype{f32, f16, bf16, q8}
)

// Q8_0 layout: a block is an f16 scale followed by 32 int8 values.
const (
	q8Block      = 32
	q8BlockBytes = 34
)

// loadW loads one vector of weights stored as dt at m into vector register
// dst, converted to float32. Not for Q8_0 (see loadQ8).
func (v isa) loadW(dt dtype, m Mem, dst reg.Register) {
	switch dt {
	case f32:
		VMOVUPS(m, dst)
	case f16:
		VCVTPH2PS(m, dst)
	case bf16: // a bfloat16 is the top half of a float32
		VPMOVZXWD(m, dst)
		VPSLLD(U8(16), dst, dst)
	default:
		panic("loadW: " + dt.name)
	}
}

// loadScale broadcasts the f16 scale of the Q8_0 block at m, as float32,
// to every lane of dst, using half(tmp) as scratch.
func (v isa) loadScale(m Mem, tmp int, dst reg.Register) {
	VPBROADCASTW(m, v.half(tmp))
	VCVTPH2PS(v.half(tmp), dst)
}

// loadQ8 loads one vector of int8 weights at m into dst as float32 and
// multiplies them by the block scale in scale: exactly d·q, as
// kernels.DecodeRow computes it.
func (v isa) loadQ8(m Mem, scale, dst reg.Register) {
	VPMOVSXBD(m, dst)
	VCVTDQ2PS(dst, dst)
	VMULPS(scale, dst, dst)
}

var xmm = []reg.Register{
	reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7,
	reg.X8, reg.X9, reg.X10, reg.X11, reg.X12, reg.X13, reg.X14, reg.X15,
}

var ymm = []reg.Register{
	reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
	reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15,
}

var zmm = []reg.Register{
	reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
	reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
	reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
	reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31,
}
