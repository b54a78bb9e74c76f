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
	active.axpyRow(y[:m.Cols], alpha, m.DType, m.RowData(r))
}

// RMSNorm writes x·rsqrt(mean(x²)+eps)·weight to out; out may alias x.
// The mean is accumulated in float64 so long rows lose nothing.
func RMSNorm(out, x, weight []float32, eps float32) { active.rmsNorm(out, x, weight, eps) }

// Softmax replaces x with softmax(x) in place.
func Softmax(x []float32) {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - m)))
		x[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range x {
		x[i] *= inv
	}
}

// SiLUMul writes silu(gate)·up into gate: the SwiGLU activation.
func SiLUMul(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}
