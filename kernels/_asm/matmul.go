package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// maxTokens is the largest token count one tile kernel call handles: the
// register budget. A tile of 4 rows x T tokens keeps 4T accumulators, T
// activation vectors (AVX2 Q8_0: T block sums), one weight vector and, for
// Q8_0, the block scales in registers (16 on AVX2, 32 on AVX-512).
// kernels/simd_amd64.go repeats these numbers.
func maxTokens(v isa, dt dtype) int {
	switch {
	case v == avx2 && dt == q8:
		return 2 // 8 acc + 2 sums + 1 w + 1 scale
	case v == avx2:
		return 3 // 12 acc + 3 x + 1 w
	case dt == f32:
		return 6 // 24 acc + 6 x + 1 w: the prefill kernel
	default:
		return 4 // 16 acc + 4 x + 1 w (+ 4 scales)
	}
}

// interleaveCols is kernels.InterleaveCols: the columns of one row that an
// interleaved matrix stores together.
const interleaveCols = 32

// genTile emits tile<DType><ISA>, the matmul micro-kernel: 4 weight rows
// times nt tokens, dot products along the columns. With ilv it emits
// tileI<DType><ISA> instead, for the same 4 rows stored interleaved (see
// kernels.Interleave): the tile is then one run of memory, read front to
// back, and wstride is instead how far ahead of its reads the kernel
// prefetches, in bytes (0: no prefetch).
//
// Register layout, with T = maxTokens: x vectors (AVX2 Q8_0: block sums)
// in V0..V(T-1), the converted weight vector in V(T), the Q8_0 scales in
// V(T+1).., and the accumulator of row r, token t in V(base + 4t + r),
// base = regs - 4T.
func genTile(v isa, dt dtype, ilv bool) {
	maxT := maxTokens(v, dt)
	regs := 16
	if v == avx512 {
		regs = 32
	}
	base := regs - 4*maxT
	wv := v.vec(maxT)
	acc := func(r, t int) int { return base + 4*t + r }

	name := "tile" + dt.name + v.name
	step := v.lanes // columns per loop iteration
	if dt == q8 {
		step = q8Block
	}
	if ilv {
		name = "tileI" + dt.name + v.name
		step = interleaveCols
	}
	if ilv {
		TEXT(name, NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, wstride, k, nt, groups int)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s computes y[t*ystride+r] = Σ_{c<k} w[r][c]·x[t*xstride+c] for the 4*groups rows r", name),
			fmt.Sprintf("of consecutive interleaved groups of %s weights at w and nt <= %d tokens t. k is", dt.name, maxT),
			fmt.Sprintf("a multiple of %d and the matrix's width. It prefetches wstride bytes ahead of", step),
			"its reads, or nothing if wstride is 0.")
	} else {
		TEXT(name, NOSPLIT, "func(y *float32, ystride int, x *float32, xstride int, w *byte, wstride, k, nt int)")
		Pragma("noescape")
		Doc(fmt.Sprintf("%s computes y[t*ystride+r] = Σ_{c<k} w[r][c]·x[t*xstride+c] for 4 rows", name),
			fmt.Sprintf("r of %s weights wstride bytes apart and nt <= %d tokens t. k is a multiple", dt.name, maxT),
			fmt.Sprintf("of %d.", step))
	}
	// unitBytes is the bytes of one row in one loop iteration; an
	// interleaved group stores the 4 rows' units one after another.
	unitBytes := step * dt.size
	if dt == q8 {
		unitBytes = step / q8Block * q8BlockBytes
	}

	x := Load(Param("x"), GP64())
	xs := Load(Param("xstride"), GP64())
	SHLQ(U8(2), xs)
	var wr [4]reg.GPVirtual
	wr[0] = Load(Param("w"), GP64()).(reg.GPVirtual)
	var ws reg.Register
	if !ilv {
		ws = Load(Param("wstride"), GP64())
		for r := 1; r < 4; r++ {
			wr[r] = GP64()
			LEAQ(Mem{Base: wr[r-1], Index: ws, Scale: 1}, wr[r])
		}
	}
	k := Load(Param("k"), GP64())
	nt := Load(Param("nt"), GP64())
	for T := 1; T < maxT; T++ {
		CMPQ(nt, U8(T))
		JEQ(LabelRef(fmt.Sprintf("tokens%d", T)))
	}
	JMP(LabelRef(fmt.Sprintf("tokens%d", maxT)))

	for T := 1; T <= maxT; T++ {
		Label(fmt.Sprintf("tokens%d", T))
		zeroAcc := func() {
			for r := range 4 {
				for t := range T {
					v.zero(v.vec(acc(r, t)))
				}
			}
		}
		if !ilv {
			zeroAcc()
		}
		xt := []reg.Register{x}
		for t := 1; t < T; t++ {
			p := GP64()
			LEAQ(Mem{Base: xt[t-1], Index: xs, Scale: 1}, p)
			xt = append(xt, p)
		}
		c := GP64() // column
		XORQ(c, c)
		// wo is the byte offset of the iteration's unit: in each row
		// (Q8_0), or in the interleaved group.
		var wo reg.GPVirtual
		if dt == q8 || ilv {
			wo = GP64()
			XORQ(wo, wo)
		}
		wmem := func(r, disp int) Mem { // row r's unit, disp bytes in
			switch {
			case ilv:
				return Mem{Base: wr[0], Index: wo, Scale: 1, Disp: r*unitBytes + disp}
			case dt == q8:
				return Mem{Base: wr[r], Index: wo, Scale: 1, Disp: disp}
			}
			return Mem{Base: wr[r], Index: c, Scale: uint8(dt.size), Disp: disp}
		}
		loop, reduce := fmt.Sprintf("loop%d", T), fmt.Sprintf("reduce%d", T)
		// The tile's 4 rows are short (a few KB) and read side by side,
		// which the hardware prefetcher follows poorly; prefetch the next
		// tile's bytes (it starts 4 row strides on, and callers lay rows
		// out back to back) as fast as this one is consumed. Calls for
		// up to 3 tokens do it (the first group of a decoding batch
		// streams the tile from memory); AVX-512's groups of 4-6 go
		// without (not measured: this project's machines lack AVX-512).
		//
		// An interleaved tile is one sequential run, as is the next
		// group after it; there the prefetch runs the given number of
		// bytes ahead of the reads (ilvPrefetch in the callers), and
		// only in the calls that ask for it: the first token group of a
		// decoding batch, which streams the group from memory. A single
		// run prefetched 1 KB ahead streamed F16 weights at 94-100% of a
		// plain read, against 80-87% for 4 rows side by side
		// (interleaving or prefetch alone: 85-90%); the calls for the
		// later groups, which find the group in L1, ran 25% slower with
		// the prefetches than without.
		var pf, pfOff reg.GPVirtual
		perIter := 4 * unitBytes
		prefetch := T <= 3
		if prefetch {
			pf = GP64()
			if ilv {
				pfOff = Load(Param("wstride"), GP64()).(reg.GPVirtual)
				LEAQ(Mem{Base: wr[0], Index: pfOff, Scale: 1}, pf)
			} else {
				LEAQ(Mem{Base: wr[3], Index: ws, Scale: 1}, pf)
			}
		}
		// An interleaved call runs groups in turn; its column offset wo
		// and prefetch pointer run on from one group to the next, as
		// the groups lie back to back.
		var yr, groups reg.GPVirtual
		group, done := fmt.Sprintf("group%d", T), fmt.Sprintf("done%d", T)
		if ilv {
			yr = Load(Param("y"), GP64()).(reg.GPVirtual)
			groups = Load(Param("groups"), GP64()).(reg.GPVirtual)
			TESTQ(groups, groups)
			JZ(LabelRef(done))
			Label(group)
			zeroAcc()
			XORQ(c, c)
		}
		TESTQ(k, k)
		JZ(LabelRef(reduce))
		noPF := fmt.Sprintf("loopnopf%d", T)
		if prefetch && ilv {
			TESTQ(pfOff, pfOff)
			JZ(LabelRef(noPF))
		}

		body := func(withPF bool) {
			if withPF {
				for off := 0; off < perIter; off += 64 {
					PREFETCHT0(Mem{Base: pf, Disp: off})
				}
				ADDQ(U32(perIter), pf)
			}
			if dt != q8 {
				for j := 0; j < step/v.lanes; j++ {
					for t := range T {
						VMOVUPS(Mem{Base: xt[t], Index: c, Scale: 4, Disp: 4 * v.lanes * j}, v.vec(t))
					}
					for r := range 4 {
						v.loadW(dt, wmem(r, dt.size*v.lanes*j), wv)
						for t := range T {
							VFMADD231PS(v.vec(t), wv, v.vec(acc(r, t)))
						}
					}
				}
			} else {
				q := q8Tile{v: v, T: T, maxT: maxT, xt: xt, row: wmem, c: c, acc: acc}
				if v == avx2 {
					q.blockSums()
				} else {
					q.scaled()
				}
			}
			ADDQ(U32(step), c)
			switch {
			case ilv:
				ADDQ(U32(4*unitBytes), wo)
			case dt == q8:
				ADDQ(U32(unitBytes), wo)
			}
			CMPQ(c, k)
		}
		Label(loop)
		body(prefetch)
		JB(LabelRef(loop))
		if prefetch && ilv {
			JMP(LabelRef(reduce))
			Label(noPF)
			body(false)
			JB(LabelRef(noPF))
		}

		Label(reduce)
		var y reg.Register
		if ilv {
			y = GP64()
			MOVQ(yr, y)
		} else {
			y = Load(Param("y"), GP64())
		}
		ys := Load(Param("ystride"), GP64())
		SHLQ(U8(2), ys)
		for t := range T {
			a := [4]int{acc(0, t), acc(1, t), acc(2, t), acc(3, t)}
			if v == avx512 {
				for r := range 4 {
					v.fold(v.vec(a[r]), r)
				}
				a = [4]int{0, 1, 2, 3}
			}
			reduce4(a, Mem{Base: y})
			if t < T-1 {
				ADDQ(ys, y)
			}
		}
		if ilv {
			ADDQ(U32(16), yr)
			DECQ(groups)
			JNZ(LabelRef(group))
			Label(done)
		}
		VZEROUPPER()
		RET()
	}
}

// genDecode emits decode<DType><ISA>, which converts n weights stored as
// dt to float32: the vector form of kernels.DecodeRow.
func genDecode(v isa, dt dtype) {
	TEXT("decode"+dt.name+v.name, NOSPLIT, "func(dst *float32, src *byte, n int)")
	Pragma("noescape")
	step := v.lanes
	if dt == q8 {
		step = q8Block
	}
	Doc(fmt.Sprintf("decode%s%s converts n %s values at src to float32 at dst; n is a multiple of %d.", dt.name, v.name, dt.name, step))
	dst := Load(Param("dst"), GP64())
	src := Load(Param("src"), GP64())
	n := Load(Param("n"), GP64())
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
		v.loadW(dt, Mem{Base: src, Index: c, Scale: uint8(dt.size)}, v.vec(0))
		VMOVUPS(v.vec(0), Mem{Base: dst, Index: c, Scale: 4})
	} else {
		v.loadScale(Mem{Base: src, Index: wo, Scale: 1}, 1, v.vec(2))
		for j := 0; j < q8Block/v.lanes; j++ {
			v.loadQ8(Mem{Base: src, Index: wo, Scale: 1, Disp: 2 + v.lanes*j}, v.vec(2), v.vec(0))
			VMOVUPS(v.vec(0), Mem{Base: dst, Index: c, Scale: 4, Disp: 4 * v.lanes * j})
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

// q8Tile is the state of one Q8_0 tile body: the registers of genTile.
type q8Tile struct {
	v       isa
	T, maxT int
	xt      []reg.Register        // token rows
	row     func(r, disp int) Mem // the block of weight row r, disp bytes in
	c       reg.GPVirtual         // column
	acc     func(r, t int) int
}

// blockSums does one Q8_0 block row by row: p[t] = Σ q·x over the block,
// x read from L1, then acc[r][t] += d_r·p[t]. It multiplies by the scale
// once per block rather than once per vector. On a Xeon this ran Q8_0
// decode 10% faster with AVX2 but 20% slower with AVX-512, whose blocks
// are only 2 vectors long, so AVX-512 uses scaled.
func (q q8Tile) blockSums() {
	v, wv, scale := q.v, q.v.vec(q.maxT), q.v.vec(q.maxT+1)
	for r := range 4 {
		v.loadScale(q.row(r, 0), q.maxT, scale)
		for j := 0; j < q8Block/v.lanes; j++ {
			VPMOVSXBD(q.row(r, 2+v.lanes*j), wv)
			VCVTDQ2PS(wv, wv)
			for t := range q.T {
				xm := Mem{Base: q.xt[t], Index: q.c, Scale: 4, Disp: 4 * v.lanes * j}
				if j == 0 {
					VMULPS(xm, wv, v.vec(t))
				} else {
					VFMADD231PS(xm, wv, v.vec(t))
				}
			}
		}
		for t := range q.T {
			VFMADD231PS(scale, v.vec(t), v.vec(q.acc(r, t)))
		}
	}
}

// scaled does one Q8_0 block like the other types: each weight vector is
// converted and multiplied by its row's scale (d·q, as DecodeRow does),
// the 4 scales staying in V(maxT+1)..V(maxT+4).
func (q q8Tile) scaled() {
	v, wv := q.v, q.v.vec(q.maxT)
	for r := range 4 {
		v.loadScale(q.row(r, 0), q.maxT, v.vec(q.maxT+1+r))
	}
	for j := 0; j < q8Block/v.lanes; j++ {
		for t := range q.T {
			VMOVUPS(Mem{Base: q.xt[t], Index: q.c, Scale: 4, Disp: 4 * v.lanes * j}, v.vec(t))
		}
		for r := range 4 {
			v.loadQ8(q.row(r, 2+v.lanes*j), v.vec(q.maxT+1+r), wv)
			for t := range q.T {
				VFMADD231PS(v.vec(t), wv, v.vec(q.acc(r, t)))
			}
		}
	}
}
