package kernels

import "os"

// impl is one implementation of the kernels: the pure-Go reference or the
// assembly for one instruction set. The exported functions call the
// active one; the tests run every one this CPU supports.
type impl struct {
	name string // "avx512", "avx2" or "go"

	// matmulRows computes output rows [lo, hi) of MatMul for n tokens.
	// scratch holds at least 4*w.Cols floats. xq, if not nil, is x
	// quantized by q8Acts, which a Q8_0 matrix then reads instead.
	matmulRows func(y, x []float32, w Matrix, n, lo, hi int, scratch, xq []float32)
	// q8Acts, where not nil, quantizes n <= q8ActTokens tokens of cols
	// activations for matmulRows' Q8_0 decode tiles into dst
	// (q8ActFloats(n, cols) words).
	q8Acts func(dst, x []float32, n, cols int)
	// q8ActTokens is the most tokens those tiles take.
	q8ActTokens int
	dot         func(a, b []float32) float32
	axpyRow     func(y []float32, alpha float32, dt DType, src []byte) // y += alpha·src[:len(y)]
	decodeRow   func(dst []float32, dt DType, src []byte)
	// axpyUnits and decodeUnits are axpyRow and decodeRow for a row
	// stored in units of InterleaveCols values stride bytes apart (see
	// Matrix.rowUnits); stride 0 means one contiguous row.
	axpyUnits   func(y []float32, alpha float32, dt DType, src []byte, stride int)
	decodeUnits func(dst []float32, dt DType, src []byte, stride int)
	// decodeQ8Packed converts one row of a packed Q8_0 matrix (see
	// Interleave) to len(dst) values: qs from the row's first 8 quants
	// on, ds from its first scale on.
	decodeQ8Packed func(dst []float32, qs, ds []byte)
	rmsNorm        func(out, x, weight []float32, eps float32)
	dotRows        func(y []float32, ystride int, x []float32, xstride, n int, w []float32, wstride, rows, cols int)
	axpyRows       func(y []float32, ystride int, a []float32, astride, n int, x []float32, xstride, rows, cols int)
	axpyRows16     func(y []float32, ystride int, a []float32, astride, n int, x []uint16, xstride, rows, cols int)
	expSum         func(x []float32, max, scale float32) float32 // x[i] = exp((x[i]-max)·scale); returns Σ
	largest        func(x []float32) float32                     // max of x, NaNs passed over; -Inf for none; a zero's sign unspecified
	encodeF16      func(dst []uint16, stride int, src []float32) // dst[i*stride] = F32ToF16(src[i]), NaN bits aside
	siluMul        func(gate, up []float32)
}

// goImpl is the pure-Go reference, which runs everywhere.
var goImpl = &impl{
	name:           "go",
	matmulRows:     matmulRowsGo,
	dot:            dotGo,
	axpyRow:        axpyRowGo,
	decodeRow:      decodeRowGo,
	axpyUnits:      axpyUnitsGo,
	decodeUnits:    decodeUnitsGo,
	rmsNorm:        rmsNormGo,
	decodeQ8Packed: decodeQ8PackedGo,
	dotRows:        dotRowsGo,
	axpyRows:       axpyRowsGo,
	axpyRows16:     axpyRowsF16Go,
	expSum:         expSumGo,
	largest:        largestGo,
	encodeF16:      encodeF16Go,
	siluMul:        siluMulGo,
}

// impls lists the implementations this CPU can run, fastest first; the
// pure-Go reference is always there, last.
var impls = append(simdImpls(), goImpl)

// active is the implementation the exported functions use.
var active = selectImpl(os.Getenv("SWITCHYARD_KERNELS"))

// implRank orders the implementations from slowest to fastest.
var implRank = map[string]int{"go": 0, "avx2": 1, "avx512": 2}

// selectImpl returns the implementation that SWITCHYARD_KERNELS=want asks
// for: the fastest one this CPU supports that is no faster than want, or
// the fastest of all if want is empty or unknown.
func selectImpl(want string) *impl {
	rank, ok := implRank[want]
	if !ok {
		return impls[0]
	}
	for _, im := range impls {
		if implRank[im.name] <= rank {
			return im
		}
	}
	return goImpl
}

// Impl returns the name of the kernel implementation in use: "avx512",
// "avx2" or "go". It is the best one the CPU supports unless the
// environment variable SWITCHYARD_KERNELS (go, avx2, avx512) or the purego
// build tag asks for a slower one.
func Impl() string { return active.name }
