package main

import (
	"fmt"
	"math"

	"github.com/mmcloughlin/avo/attr"
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The kernels of attention and of the MLP activation. They exist for AVX2
// only: they are small next to the matmuls, so the AVX-512 implementation
// calls these too (VEX code runs on every AVX-512 CPU), and there is no
// AVX-512 code here that this project's AVX2-only machines cannot test.

// axpyRowsTokens is the largest token count of one axpyRowsF32AVX2 call:
// 2 columns vectors x 6 tokens = 12 accumulators, 2 row vectors and one
// broadcast coefficient in the 16 registers. kernels/simd_amd64.go
// repeats it.
const axpyRowsTokens = 6

// axpyRowsPrefetch is how many bytes ahead of its reads axpyRows
// prefetches.
const axpyRowsPrefetch = 4096

// genAxpyRows emits axpyRows<DType>AVX2, both products of attention
// (q·Kᵀ over transposed keys, p·V over values) for a KV cache stored as
// dt (f32 or f16):
//
//	y[t*ystride+c] += Σ_{r<rows} a[t*astride+r]·x[r*xstride+c]
//
// for nt <= 6 tokens t and the 16 columns c of two vectors. Strides are in
// elements. Each row of x is loaded (and converted) once for all tokens.
// Layout: accumulator of token t, vector j in Y(2t+j); row vectors Y12,
// Y13; the broadcast coefficient Y14.
func genAxpyRows(dt dtype) {
	v := avx2
	name := "axpyRows" + dt.name + "AVX2"
	xType := map[string]string{"F32": "*float32", "F16": "*uint16"}[dt.name]
	TEXT(name, NOSPLIT, "func(y *float32, ystride int, a *float32, astride int, x "+xType+", xstride int, nt, rows int)")
	Pragma("noescape")
	Doc(name+" adds Σ_{r<rows} a[t*astride+r]·x[r*xstride+c] to",
		fmt.Sprintf("y[t*ystride+c] for nt <= %d tokens t and 16 columns c of %s values x.", axpyRowsTokens, dt.name),
		"Strides are in elements.")
	nt := Load(Param("nt"), GP64())
	for T := 1; T < axpyRowsTokens; T++ {
		CMPQ(nt, U8(T))
		JEQ(LabelRef(fmt.Sprintf("tokens%d", T)))
	}
	JMP(LabelRef(fmt.Sprintf("tokens%d", axpyRowsTokens)))

	for T := 1; T <= axpyRowsTokens; T++ {
		Label(fmt.Sprintf("tokens%d", T))
		acc := func(t, j int) reg.Register { return v.vec(2*t + j) }
		y, ys := axpyRowsAcc(T, 2, acc)
		at := axpyRowsCoefficients(T)
		x := Load(Param("x"), GP64())
		xs := Load(Param("xstride"), GP64())
		SHLQ(U8(map[int]uint8{4: 2, 2: 1}[dt.size]), xs)
		rows := Load(Param("rows"), GP64())
		r := GP64()
		XORQ(r, r)
		// Prefetch axpyRowsPrefetch bytes on, a line per row: a decode
		// step finds the cache in memory, not L3 (the weights streamed
		// since the last step evicted it), and a head's run of keys or
		// values is too short for the hardware prefetcher to get far
		// ahead. Both passes of F16 attention over 90 cold 512-position
		// heads, one core, µs a head: 16 rows ahead (512 bytes of keys)
		// 19.8-21.3; 2 KB 19.9; 4 KB 18.1-18.8; 8 KB 17.0-18.6; 4 KB with
		// the callers' row chunks (axpyRowsTiles) 15.0-15.6.
		pf := GP64()
		LEAQ(Mem{Base: x, Disp: axpyRowsPrefetch}, pf)
		loop, done := fmt.Sprintf("loop%d", T), fmt.Sprintf("store%d", T)
		TESTQ(rows, rows)
		JZ(LabelRef(done))

		Label(loop)
		PREFETCHT0(Mem{Base: pf})
		ADDQ(xs, pf)
		v.loadW(dt, Mem{Base: x}, ymm[12])
		v.loadW(dt, Mem{Base: x, Disp: v.lanes * dt.size}, ymm[13])
		for t := range T {
			VBROADCASTSS(Mem{Base: at[t], Index: r, Scale: 4}, ymm[14])
			VFMADD231PS(ymm[12], ymm[14], acc(t, 0))
			VFMADD231PS(ymm[13], ymm[14], acc(t, 1))
		}
		ADDQ(xs, x)
		INCQ(r)
		CMPQ(r, rows)
		JB(LabelRef(loop))

		Label(done)
		axpyRowsStore(T, 2, acc, y, ys)
		VZEROUPPER()
		RET()
	}
}

// axpyRowsAcc loads the accumulators acc(t, j) of T tokens, vecs
// vectors each, from the rows of the y parameter, ystride floats apart,
// and returns y and the stride in bytes for axpyRowsStore.
func axpyRowsAcc(T, vecs int, acc func(t, j int) reg.Register) (y, ys reg.GPVirtual) {
	y = Load(Param("y"), GP64()).(reg.GPVirtual)
	ys = Load(Param("ystride"), GP64()).(reg.GPVirtual)
	SHLQ(U8(2), ys)
	moveAcc(T, vecs, y, ys, func(t, j int, m Mem) { VMOVUPS(m, acc(t, j)) })
	return y, ys
}

// axpyRowsStore stores what axpyRowsAcc loaded back to y.
func axpyRowsStore(T, vecs int, acc func(t, j int) reg.Register, y, ys reg.GPVirtual) {
	moveAcc(T, vecs, y, ys, func(t, j int, m Mem) { VMOVUPS(acc(t, j), m) })
}

// moveAcc calls move for vector j of token t and its place in y.
func moveAcc(T, vecs int, y, ys reg.GPVirtual, move func(t, j int, m Mem)) {
	yt := GP64()
	MOVQ(y, yt)
	for t := range T {
		for j := range vecs {
			move(t, j, Mem{Base: yt, Disp: 32 * j})
		}
		if t < T-1 {
			ADDQ(ys, yt)
		}
	}
}

// axpyRowsCoefficients returns pointers to the coefficient rows of T
// tokens, the a parameter astride floats apart: token t's coefficient
// for row r is at at[t] + 4r.
func axpyRowsCoefficients(T int) []reg.GPVirtual {
	as := Load(Param("astride"), GP64())
	SHLQ(U8(2), as)
	at := []reg.GPVirtual{Load(Param("a"), GP64()).(reg.GPVirtual)}
	for t := 1; t < T; t++ {
		p := GP64()
		LEAQ(Mem{Base: at[t-1], Index: as, Scale: 1}, p)
		at = append(at, p)
	}
	return at
}

// expConsts is the table of 32-byte constants (each float32 repeated in 8
// lanes) that expPS reads; it is emitted once per output file.
var expConsts Mem

// The constants of expPS: Cephes' expf. x is clamped to ±88 (so 2^n stays
// finite and normal), split as n·ln2 + f with |f| <= ln2/2, ln2 in two
// parts so that n·ln2 is exact, and e^f is a degree-7 polynomial.
var expTable = []struct {
	name string
	bits uint32
}{
	{"hi", math.Float32bits(88)},
	{"lo", math.Float32bits(-88)},
	{"log2e", math.Float32bits(1.44269504088896341)},
	{"ln2hi", math.Float32bits(0.693359375)},
	{"ln2lo", math.Float32bits(-2.12194440e-4)},
	{"p0", math.Float32bits(1.9875691500e-4)},
	{"p1", math.Float32bits(1.3981999507e-3)},
	{"p2", math.Float32bits(8.3334519073e-3)},
	{"p3", math.Float32bits(4.1665795894e-2)},
	{"p4", math.Float32bits(1.6666665459e-1)},
	{"p5", math.Float32bits(5.0000001201e-1)},
	{"one", math.Float32bits(1)},
	{"bias", 127}, // the exponent bias, an int32
}

// expConst returns the table entry called name.
func expConst(name string) Mem {
	if expConsts.Symbol.Name == "" {
		expConsts = GLOBL("expconsts", attr.RODATA|attr.NOPTR)
		for i, c := range expTable {
			for lane := range 8 {
				DATA(32*i+4*lane, U32(c.bits))
			}
		}
	}
	for i, c := range expTable {
		if c.name == name {
			return expConsts.Offset(32 * i)
		}
	}
	panic("expConst: " + name)
}

// expPS replaces the 8 floats in x with their exponentials, using t1..t3
// as scratch. The relative error is a few ulp; below about -87.7 the
// result is 0 (2^n's exponent field underflows), as float32 math.Exp
// gives for large negative x.
func expPS(x, t1, t2, t3 reg.Register) {
	VMINPS(expConst("hi"), x, x)
	VMAXPS(expConst("lo"), x, x)
	VMULPS(expConst("log2e"), x, t1)
	VROUNDPS(U8(0), t1, t1) // n = round(x·log2e)
	VFNMADD231PS(expConst("ln2hi"), t1, x)
	VFNMADD231PS(expConst("ln2lo"), t1, x) // f = x - n·ln2
	VMOVUPS(expConst("p0"), t2)
	for _, p := range []string{"p1", "p2", "p3", "p4", "p5"} {
		VFMADD213PS(expConst(p), x, t2) // t2 = t2·f + p
	}
	VMULPS(x, x, t3)
	VFMADD213PS(x, t3, t2) // t2·f² + f
	VADDPS(expConst("one"), t2, t2)
	VCVTPS2DQ(t1, t1)
	VPADDD(expConst("bias"), t1, t1)
	VPSLLD(U8(23), t1, t1) // 2^n
	VMULPS(t1, t2, x)
}

// genExpSum emits expSumAVX2, the exponentials of a softmax:
// x[i] = exp((x[i]-max)·scale), returning their sum. Layout: values Y0
// and Y4, scratch Y1-Y3 and Y5-Y7, max Y8, scale Y9, sums Y10, Y11.
// Two vectors per iteration keep two independent chains in flight.
func genExpSum() {
	TEXT("expSumAVX2", NOSPLIT, "func(x *float32, n int, max, scale float32) float32")
	Pragma("noescape")
	Doc("expSumAVX2 sets x[i] = exp((x[i]-max)·scale) for i < n and returns their",
		"sum; n is a multiple of 8.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	// Broadcast the arguments straight from the frame: with a
	// legacy-SSE MOVSS loading scale into X9 after the broadcast of max
	// had dirtied the upper halves, a call took 170 ns for 16 values on
	// this project's machines, 37 ns now (measured; the cause is likely
	// an SSE/AVX transition in the virtual machine).
	VBROADCASTSS(NewParamAddr("max", 16), ymm[8])
	VBROADCASTSS(NewParamAddr("scale", 20), ymm[9])
	VXORPS(ymm[10], ymm[10], ymm[10])
	VXORPS(ymm[11], ymm[11], ymm[11])
	n2 := GP64()
	MOVQ(n, n2)
	ANDQ(I32(^int32(15)), n2)
	c := GP64()
	XORQ(c, c)
	CMPQ(c, n2)
	JAE(LabelRef("single"))

	Label("loop2")
	for j, r := range []int{0, 4} {
		m := Mem{Base: x, Index: c, Scale: 4, Disp: 32 * j}
		VMOVUPS(m, ymm[r])
		VSUBPS(ymm[8], ymm[r], ymm[r])
		VMULPS(ymm[9], ymm[r], ymm[r])
		expPS(ymm[r], ymm[r+1], ymm[r+2], ymm[r+3])
		VMOVUPS(ymm[r], m)
		VADDPS(ymm[r], ymm[10+j], ymm[10+j])
	}
	ADDQ(U32(16), c)
	CMPQ(c, n2)
	JB(LabelRef("loop2"))

	Label("single")
	CMPQ(c, n)
	JAE(LabelRef("reduce"))
	m := Mem{Base: x, Index: c, Scale: 4}
	VMOVUPS(m, ymm[0])
	VSUBPS(ymm[8], ymm[0], ymm[0])
	VMULPS(ymm[9], ymm[0], ymm[0])
	expPS(ymm[0], ymm[1], ymm[2], ymm[3])
	VMOVUPS(ymm[0], m)
	VADDPS(ymm[0], ymm[10], ymm[10])

	Label("reduce")
	VADDPS(ymm[11], ymm[10], ymm[10])
	reduce1(10, 11)
	Store(xmm[10], ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// genSiLUMul emits siluMulAVX2: gate[i] = gate[i]/(1+exp(-gate[i]))·up[i].
// Layout: gate Y0, exp argument Y1, scratch Y2-Y4.
func genSiLUMul() {
	TEXT("siluMulAVX2", NOSPLIT, "func(gate, up *float32, n int)")
	Pragma("noescape")
	Doc("siluMulAVX2 sets gate[i] = silu(gate[i])·up[i] for i < n; n is a multiple of 8.")
	gate := Load(Param("gate"), GP64())
	up := Load(Param("up"), GP64())
	n := Load(Param("n"), GP64())
	c := GP64()
	XORQ(c, c)
	TESTQ(n, n)
	JZ(LabelRef("done"))

	Label("loop")
	g := Mem{Base: gate, Index: c, Scale: 4}
	VMOVUPS(g, ymm[0])
	VXORPS(ymm[1], ymm[1], ymm[1])
	VSUBPS(ymm[0], ymm[1], ymm[1]) // -g
	expPS(ymm[1], ymm[2], ymm[3], ymm[4])
	VADDPS(expConst("one"), ymm[1], ymm[1])
	VDIVPS(ymm[1], ymm[0], ymm[0])
	VMULPS(Mem{Base: up, Index: c, Scale: 4}, ymm[0], ymm[0])
	VMOVUPS(ymm[0], g)
	ADDQ(U32(8), c)
	CMPQ(c, n)
	JB(LabelRef("loop"))

	Label("done")
	VZEROUPPER()
	RET()
}

// genLargest emits largestAVX2, kernels.largestGo in vectors: the
// largest of n floats, NaNs passed over, -Inf for none. VMAXPS returns
// its second source when either is NaN, so max(x, m) with the running
// maximum m second keeps m past a NaN x. Four maxima side by side, so
// that no comparison waits on the one before; each value's branch in Go
// was mispredicted as often as the scores were in no order.
func genLargest() {
	TEXT("largestAVX2", NOSPLIT, "func(x *float32, n int) float32")
	Pragma("noescape")
	Doc("largestAVX2 returns the largest of x[i] for i < n, NaNs passed over, and",
		"-Inf for none; n is a multiple of 32.")
	x := Load(Param("x"), GP64())
	n := Load(Param("n"), GP64())
	ninf := GP32()
	MOVL(U32(0xff800000), ninf) // -Inf
	VMOVD(ninf, xmm[0])
	VBROADCASTSS(xmm[0], ymm[0])
	for i := 1; i < 4; i++ {
		VMOVAPS(ymm[0], ymm[i])
	}
	c := GP64()
	XORQ(c, c)
	CMPQ(c, n)
	JAE(LabelRef("reduce"))
	Label("loop")
	for i := range 4 {
		VMOVUPS(Mem{Base: x, Index: c, Scale: 4, Disp: 32 * i}, ymm[4+i])
		VMAXPS(ymm[i], ymm[4+i], ymm[i]) // (x > m) ? x : m
	}
	ADDQ(U32(32), c)
	CMPQ(c, n)
	JB(LabelRef("loop"))

	Label("reduce") // no NaN is left: the order no longer matters
	VMAXPS(ymm[1], ymm[0], ymm[0])
	VMAXPS(ymm[3], ymm[2], ymm[2])
	VMAXPS(ymm[2], ymm[0], ymm[0])
	reduceMax(0, 1)
	Store(xmm[0], ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// genEncodeF16 emits encodeF16AVX2, kernels.EncodeF16's loop: floats
// rounded to IEEE halves (VCVTPS2PH, to nearest even) and stored stride
// halves apart, a vector store for stride 1, one VPEXTRW per value
// otherwise (a key into its block's transposed column).
func genEncodeF16() {
	TEXT("encodeF16AVX2", NOSPLIT, "func(dst *uint16, stride int, src *float32, n int)")
	Pragma("noescape")
	Doc("encodeF16AVX2 sets dst[i*stride] to src[i] rounded to a half float for",
		"i < n; n is a multiple of 8.")
	dst := Load(Param("dst"), GP64())
	stride := Load(Param("stride"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
	end := GP64()
	LEAQ(Mem{Base: src, Index: n, Scale: 4}, end)
	CMPQ(src, end)
	JAE(LabelRef("done"))
	CMPQ(stride, U8(1))
	JNE(LabelRef("strided"))

	Label("dense")
	VMOVUPS(Mem{Base: src}, ymm[0])
	VCVTPS2PH(U8(0), ymm[0], Mem{Base: dst})
	ADDQ(U32(32), src)
	ADDQ(U32(16), dst)
	CMPQ(src, end)
	JB(LabelRef("dense"))
	JMP(LabelRef("done"))

	Label("strided")
	SHLQ(U8(1), stride) // bytes
	Label("loop")
	VMOVUPS(Mem{Base: src}, ymm[0])
	VCVTPS2PH(U8(0), ymm[0], xmm[0])
	for i := range 8 {
		VPEXTRW(U8(i), xmm[0], Mem{Base: dst})
		ADDQ(stride, dst)
	}
	ADDQ(U32(32), src)
	CMPQ(src, end)
	JB(LabelRef("loop"))

	Label("done")
	VZEROUPPER()
	RET()
}

// axpyRowsWideTokens is the largest token count of one axpyRowsWide
// call: 4 column vectors x 3 tokens = 12 accumulators, 3 broadcast
// coefficients and one row vector in the 16 registers.
const axpyRowsWideTokens = 3

// genAxpyRowsWide emits axpyRowsWide<DType>AVX2: axpyRows over 32
// columns, the first 16 at x and the other 16 at x2 (axpyRowsTiles
// passes x+16), for nt <= 3 tokens. Each row takes 4 conversions, 3 broadcasts and 12 FMAs into 12
// independent sums, where two 16-column calls take 4, 6 and 12 into 6
// sums each, so the FMAs no longer wait on their own latency.
// Layout: accumulator of token t, vector j in Y(4t+j); coefficients
// Y12-Y14; the row vector Y15.
func genAxpyRowsWide(dt dtype) {
	v := avx2
	name := "axpyRowsWide" + dt.name + "AVX2"
	xType := map[string]string{"F32": "*float32", "F16": "*uint16"}[dt.name]
	TEXT(name, NOSPLIT, "func(y *float32, ystride int, a *float32, astride int, x, x2 "+xType+", xstride int, nt, rows int)")
	Pragma("noescape")
	Doc(name+" adds Σ_{r<rows} a[t*astride+r]·X[r][c] to y[t*ystride+c] for",
		fmt.Sprintf("nt <= %d tokens t and 32 columns c of %s values: X[r][c] is", axpyRowsWideTokens, dt.name),
		"x[r*xstride+c] for c < 16 and x2[r*xstride+c-16] for the rest. Strides are",
		"in elements.")
	nt := Load(Param("nt"), GP64())
	for T := 1; T < axpyRowsWideTokens; T++ {
		CMPQ(nt, U8(T))
		JEQ(LabelRef(fmt.Sprintf("tokens%d", T)))
	}
	JMP(LabelRef(fmt.Sprintf("tokens%d", axpyRowsWideTokens)))

	for T := 1; T <= axpyRowsWideTokens; T++ {
		Label(fmt.Sprintf("tokens%d", T))
		acc := func(t, j int) reg.Register { return ymm[4*t+j] }
		y, ys := axpyRowsAcc(T, 4, acc)
		at := axpyRowsCoefficients(T)
		x := Load(Param("x"), GP64())
		x2 := Load(Param("x2"), GP64())
		xs := Load(Param("xstride"), GP64())
		SHLQ(U8(map[int]uint8{4: 2, 2: 1}[dt.size]), xs)
		rows := Load(Param("rows"), GP64())
		r := GP64()
		XORQ(r, r)
		// Prefetch as axpyRows does, both halves.
		pf, pf2 := GP64(), GP64()
		LEAQ(Mem{Base: x, Disp: axpyRowsPrefetch}, pf)
		LEAQ(Mem{Base: x2, Disp: axpyRowsPrefetch}, pf2)
		loop, done := fmt.Sprintf("loop%d", T), fmt.Sprintf("store%d", T)
		TESTQ(rows, rows)
		JZ(LabelRef(done))

		Label(loop)
		PREFETCHT0(Mem{Base: pf})
		PREFETCHT0(Mem{Base: pf2})
		ADDQ(xs, pf)
		ADDQ(xs, pf2)
		for t := range T {
			VBROADCASTSS(Mem{Base: at[t], Index: r, Scale: 4}, ymm[12+t])
		}
		for j := range 4 {
			base := x
			if j >= 2 {
				base = x2
			}
			v.loadW(dt, Mem{Base: base, Disp: (j % 2) * v.lanes * dt.size}, ymm[15])
			for t := range T {
				VFMADD231PS(ymm[15], ymm[12+t], acc(t, j))
			}
		}
		ADDQ(xs, x)
		ADDQ(xs, x2)
		INCQ(r)
		CMPQ(r, rows)
		JB(LabelRef(loop))

		Label(done)
		axpyRowsStore(T, 4, acc, y, ys)
		VZEROUPPER()
		RET()
	}
}
