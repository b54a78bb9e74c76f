package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// genDot emits dotF32<ISA>: Σ a[i]·b[i] for n a multiple of the lane count,
// in four accumulators V0..V3 (loads in V4..V7).
func genDot(v isa) {
	TEXT("dotF32"+v.name, NOSPLIT, "func(a, b *float32, n int) float32")
	Pragma("noescape")
	Doc(fmt.Sprintf("dotF32%s returns Σ a[i]·b[i] for i < n; n is a multiple of %d.", v.name, v.lanes))
	a := Load(Param("a"), GP64())
	b := Load(Param("b"), GP64())
	n := Load(Param("n"), GP64())
	n4 := GP64() // n rounded down to a multiple of 4 vectors
	MOVQ(n, n4)
	ANDQ(I32(^int32(4*v.lanes-1)), n4)
	c := GP64()
	XORQ(c, c)
	for i := range 4 {
		v.zero(v.vec(i))
	}
	CMPQ(c, n4)
	JAE(LabelRef("single"))

	Label("loop4")
	for i := range 4 {
		VMOVUPS(Mem{Base: a, Index: c, Scale: 4, Disp: v.bytes * i}, v.vec(4+i))
		VFMADD231PS(Mem{Base: b, Index: c, Scale: 4, Disp: v.bytes * i}, v.vec(4+i), v.vec(i))
	}
	ADDQ(U32(4*v.lanes), c)
	CMPQ(c, n4)
	JB(LabelRef("loop4"))

	Label("single")
	CMPQ(c, n)
	JAE(LabelRef("reduce"))
	Label("loop1")
	VMOVUPS(Mem{Base: a, Index: c, Scale: 4}, v.vec(4))
	VFMADD231PS(Mem{Base: b, Index: c, Scale: 4}, v.vec(4), v.vec(0))
	ADDQ(U32(v.lanes), c)
	CMPQ(c, n)
	JB(LabelRef("loop1"))

	Label("reduce")
	VADDPS(v.vec(1), v.vec(0), v.vec(0))
	VADDPS(v.vec(3), v.vec(2), v.vec(2))
	VADDPS(v.vec(2), v.vec(0), v.vec(0))
	if v == avx512 {
		v.fold(v.vec(0), 1)
		VMOVAPS(ymm[1], ymm[0])
	}
	reduce1(0, 1)
	Store(xmm[0], ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// genAxpy emits axpy<DType><ISA>: y[i] += alpha·w[i] for n weights stored
// as dt, n a multiple of the lane count (of 32 for Q8_0). V0 holds the
// converted weights, V1 alpha, V2 the Q8_0 scale.
func genAxpy(v isa, dt dtype) {
	step := v.lanes
	if dt == q8 {
		step = q8Block
	}
	TEXT("axpy"+dt.name+v.name, NOSPLIT, "func(y *float32, w *byte, alpha float32, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("axpy%s%s adds alpha·w[i] to y[i] for n %s values w; n is a multiple of %d.", dt.name, v.name, dt.name, step))
	y := Load(Param("y"), GP64())
	w := Load(Param("w"), GP64())
	n := Load(Param("n"), GP64())
	Load(Param("alpha"), xmm[1])
	VBROADCASTSS(xmm[1], v.vec(1))
	c := GP64()
	XORQ(c, c)
	var wo reg.GPVirtual
	if dt == q8 {
		wo = GP64()
		XORQ(wo, wo)
	}
	TESTQ(n, n)
	JZ(LabelRef("done"))

	Label("loop")
	if dt != q8 {
		v.loadW(dt, Mem{Base: w, Index: c, Scale: uint8(dt.size)}, v.vec(0))
		VFMADD213PS(Mem{Base: y, Index: c, Scale: 4}, v.vec(1), v.vec(0)) // V0 = alpha·V0 + y
		VMOVUPS(v.vec(0), Mem{Base: y, Index: c, Scale: 4})
	} else {
		v.loadScale(Mem{Base: w, Index: wo, Scale: 1}, 3, v.vec(2))
		for j := 0; j < q8Block/v.lanes; j++ {
			yj := Mem{Base: y, Index: c, Scale: 4, Disp: 4 * v.lanes * j}
			v.loadQ8(Mem{Base: w, Index: wo, Scale: 1, Disp: 2 + v.lanes*j}, v.vec(2), v.vec(0))
			VFMADD213PS(yj, v.vec(1), v.vec(0))
			VMOVUPS(v.vec(0), yj)
		}
		ADDQ(U32(q8BlockBytes), wo)
	}
	ADDQ(U32(step), c)
	CMPQ(c, n)
	JB(LabelRef("loop"))

	Label("done")
	VZEROUPPER()
	RET()
}

// genSumSquares emits sumSquares<ISA>: Σ x[i]² accumulated in float64 (the
// squares of float32 values are exact there), n a multiple of the lane
// count. Accumulators V0, V1; widened values V2, V3.
func genSumSquares(v isa) {
	TEXT("sumSquares"+v.name, NOSPLIT, "func(x *float32, n int) float64")
	Pragma("noescape")
	Doc(fmt.Sprintf("sumSquares%s returns Σ x[i]² for i < n in float64; n is a multiple of %d.", v.name, v.lanes))
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	c := GP64()
	XORQ(c, c)
	v.zero(v.vec(0))
	v.zero(v.vec(1))
	TESTQ(n, n)
	JZ(LabelRef("reduce"))

	Label("loop")
	VCVTPS2PD(Mem{Base: x, Index: c, Scale: 4}, v.vec(2))
	VCVTPS2PD(Mem{Base: x, Index: c, Scale: 4, Disp: v.bytes / 2}, v.vec(3))
	VFMADD231PD(v.vec(2), v.vec(2), v.vec(0))
	VFMADD231PD(v.vec(3), v.vec(3), v.vec(1))
	ADDQ(U32(v.lanes), c)
	CMPQ(c, n)
	JB(LabelRef("loop"))

	Label("reduce")
	if v == avx512 {
		VADDPD(zmm[1], zmm[0], zmm[0])
		VEXTRACTF64X4(U8(1), zmm[0], ymm[1])
	}
	VADDPD(ymm[1], ymm[0], ymm[0])
	VEXTRACTF128(U8(1), ymm[0], xmm[1])
	VADDPD(xmm[1], xmm[0], xmm[0])
	VHADDPD(xmm[0], xmm[0], xmm[0])
	Store(xmm[0], ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// genScaleMul emits scaleMul<ISA>: out[i] = x[i]·scale·w[i], multiplied in
// that order as the reference RMSNorm does, n a multiple of the lane count.
func genScaleMul(v isa) {
	TEXT("scaleMul"+v.name, NOSPLIT, "func(out, x, w *float32, scale float32, n int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("scaleMul%s sets out[i] = x[i]·scale·w[i] for i < n; n is a multiple of %d.", v.name, v.lanes))
	out := Load(Param("out"), GP64())
	x := Load(Param("x"), GP64())
	w := Load(Param("w"), GP64())
	n := Load(Param("n"), GP64())
	Load(Param("scale"), xmm[1])
	VBROADCASTSS(xmm[1], v.vec(1))
	c := GP64()
	XORQ(c, c)
	TESTQ(n, n)
	JZ(LabelRef("done"))

	Label("loop")
	VMULPS(Mem{Base: x, Index: c, Scale: 4}, v.vec(1), v.vec(0))
	VMULPS(Mem{Base: w, Index: c, Scale: 4}, v.vec(0), v.vec(0))
	VMOVUPS(v.vec(0), Mem{Base: out, Index: c, Scale: 4})
	ADDQ(U32(v.lanes), c)
	CMPQ(c, n)
	JB(LabelRef("loop"))

	Label("done")
	VZEROUPPER()
	RET()
}
