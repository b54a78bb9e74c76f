package kernels

import "math"

// Dot returns Σ a[i]·b[i] over len(a) values; b must be at least as long.
func Dot(a, b []float32) float32 { return active.dot(a, b) }

// Axpy adds alpha·x to y over len(x) values; y must be at least as long.
func Axpy(alpha float32, x, y []float32) {
	active.axpyRow(y[:len(x)], alpha, F32, F32Bytes(x))
}

// AxpyRow adds alpha times row r of m, converted from its stored type, to
// y[:m.Cols]: the "expand" step of a LoRA adapter whose B is stored
// transposed, one row per rank. For Q8_0 m.Cols is a multiple of 32.
func AxpyRow(y []float32, alpha float32, m Matrix, r int) {
	if m.packedQ8() { // gathered into a row-major row: adapters are never packed
		row := make([]byte, Q8_0.RowBytes(m.Cols))
		for b := range m.Cols / Q8_0Block {
			m.q8Block((*[34]byte)(row[b*34:]), r, b)
		}
		active.axpyUnits(y[:m.Cols], alpha, Q8_0, row, 0)
		return
	}
	src, stride := m.rowUnits(r)
	active.axpyUnits(y[:m.Cols], alpha, m.DType, src, stride)
}

// RMSNorm writes x·rsqrt(mean(x²)+eps)·weight to out; out may alias x.
// The mean is accumulated in float64 so long rows lose nothing.
func RMSNorm(out, x, weight []float32, eps float32) { active.rmsNorm(out, x, weight, eps) }

// Softmax replaces x with softmax(x) in place.
func Softmax(x []float32) { ScaledSoftmax(x, 1) }

// ScaledSoftmax replaces x with softmax(scale·x) in place; scale > 0.
// Attention passes its 1/√d here rather than scaling every score first.
func ScaledSoftmax(x []float32, scale float32) {
	if len(x) == 0 {
		return
	}
	_, sum := SoftmaxParts(x, scale)
	Scale(x, 1/sum)
}

// SoftmaxParts replaces x with exp(scale·x[i] - top), where top is the
// largest scale·x[i], and returns top and the sum of the new values:
// softmax(scale·x) before the division, for attention that merges parts
// of one row computed separately (a part's values weigh e^(its top -
// the row's top)). scale > 0; an empty x gives -Inf and 0.
func SoftmaxParts(x []float32, scale float32) (top, sum float32) {
	if len(x) == 0 {
		return float32(math.Inf(-1)), 0
	}
	m := active.largest(x)
	return m * scale, active.expSum(x, m, scale)
}

// largestGo returns the largest value of x, NaNs passed over (-Inf for
// none). It keeps four maxima, so that the comparisons of neighbouring
// values do not wait for one another; the builtin max, which must
// propagate NaN and order -0 before +0, took 2.5 times as long, and a
// decode step calls this once per head and part (810 times for
// SmolLM2-135M at a 512-token context).
func largestGo(x []float32) float32 {
	inf := float32(math.Inf(-1))
	m0, m1, m2, m3 := inf, inf, inf, inf
	i := 0
	for ; i+4 <= len(x); i += 4 {
		if v := x[i]; v > m0 {
			m0 = v
		}
		if v := x[i+1]; v > m1 {
			m1 = v
		}
		if v := x[i+2]; v > m2 {
			m2 = v
		}
		if v := x[i+3]; v > m3 {
			m3 = v
		}
	}
	for ; i < len(x); i++ {
		if v := x[i]; v > m0 {
			m0 = v
		}
	}
	for _, v := range [...]float32{m1, m2, m3} {
		if v > m0 {
			m0 = v
		}
	}
	return m0
}

// SiLUMul writes silu(gate)·up into gate: the SwiGLU activation.
func SiLUMul(gate, up []float32) { active.siluMul(gate, up[:len(gate)]) }

// DotRows sets y[t*ystride+r] = Σ_{c<cols} x[t*xstride+c]·w[r*wstride+c]
// for tokens t < n and rows r < rows: a small matrix product of strided
// float32 rows, on the calling goroutine, each row of w loaded once for
// all n tokens. (Attention uses AxpyRows over transposed keys instead,
// which needs no horizontal sums.)
func DotRows(y []float32, ystride int, x []float32, xstride, n int, w []float32, wstride, rows, cols int) {
	if n <= 0 || rows <= 0 {
		return
	}
	checkStrided("DotRows y", len(y), n, ystride, rows)
	if cols <= 0 {
		for t := range n {
			clear(y[t*ystride : t*ystride+rows])
		}
		return
	}
	checkStrided("DotRows x", len(x), n, xstride, cols)
	checkStrided("DotRows w", len(w), rows, wstride, cols)
	active.dotRows(y, ystride, x, xstride, n, w, wstride, rows, cols)
}

// AxpyRows adds Σ_{r<rows} a[t*astride+r]·x[r*xstride+c] to
// y[t*ystride+c] for tokens t < n and columns c < cols, on the calling
// goroutine: attention's p·V, where the rows of x are values inside a KV
// cache, each loaded once for the n query heads that share it.
func AxpyRows(y []float32, ystride int, a []float32, astride, n int, x []float32, xstride, rows, cols int) {
	if n <= 0 || rows <= 0 || cols <= 0 {
		return
	}
	checkStrided("AxpyRows y", len(y), n, ystride, cols)
	checkStrided("AxpyRows a", len(a), n, astride, rows)
	checkStrided("AxpyRows x", len(x), rows, xstride, cols)
	active.axpyRows(y, ystride, a, astride, n, x, xstride, rows, cols)
}

// AxpyRowsF16 is AxpyRows for rows x stored as IEEE half floats (bit
// patterns, as F32ToF16 makes them): attention over an f16 KV cache,
// which reads half the bytes of a float32 one. Each value of x is widened
// exactly, so the result is AxpyRows's on the widened rows.
func AxpyRowsF16(y []float32, ystride int, a []float32, astride, n int, x []uint16, xstride, rows, cols int) {
	if n <= 0 || rows <= 0 || cols <= 0 {
		return
	}
	checkStrided("AxpyRowsF16 y", len(y), n, ystride, cols)
	checkStrided("AxpyRowsF16 a", len(a), n, astride, rows)
	checkStrided("AxpyRowsF16 x", len(x), rows, xstride, cols)
	active.axpyRows16(y, ystride, a, astride, n, x, xstride, rows, cols)
}

// EncodeF16 rounds src to IEEE half floats stride values apart in dst:
// dst[i*stride] = F32ToF16(src[i]). (A NaN stays a NaN; its bits differ
// between implementations: VCVTPS2PH keeps the payload's top bits.) A KV cache writes a value row with stride 1 and a key into its
// block's transposed column with stride BlockTokens.
func EncodeF16(dst []uint16, stride int, src []float32) {
	if len(src) == 0 {
		return
	}
	checkStrided("EncodeF16 dst", len(dst), len(src), stride, 1)
	active.encodeF16(dst, stride, src)
}

func encodeF16Go(dst []uint16, stride int, src []float32) {
	for i, v := range src {
		dst[i*stride] = F32ToF16(v)
	}
}

// checkStrided panics unless a slice of length size holds n rows of width
// values stride apart, so that no kernel reads or writes past it.
func checkStrided(what string, size, n, stride, width int) {
	if stride < 0 || width < 0 || (n-1)*stride+width > size {
		panic("kernels: " + what + " too short for its rows")
	}
}

// Scale multiplies x by alpha in place.
func Scale(x []float32, alpha float32) {
	for i := range x {
		x[i] *= alpha
	}
}
