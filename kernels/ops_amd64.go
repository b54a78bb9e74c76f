//go:build !purego

package kernels

// The slice wrappers around the vector kernels: they check bounds, hand
// the kernel the longest prefix it takes and finish the rest in Go.

func (s *simd) dotSlices(a, b []float32) float32 {
	b = b[:len(a)]
	k := len(a) &^ (s.lanes - 1)
	var sum float32
	if k > 0 {
		sum = s.dot(&a[0], &b[0], k)
	}
	for i := k; i < len(a); i++ {
		sum += a[i] * b[i]
	}
	return sum
}

func (s *simd) axpyRow(y []float32, alpha float32, dt DType, src []byte) {
	checkSrc(src, dt, len(y))
	k := len(y) &^ (s.step(dt) - 1)
	if k > 0 {
		s.axpy[dt](&y[0], &src[0], alpha, k)
	}
	if k < len(y) {
		axpyRowGo(y[k:], alpha, dt, src[dt.RowBytes(k):])
	}
}

func (s *simd) decodeRow(dst []float32, dt DType, src []byte) {
	if dt == F32 {
		copy(dst, AsF32(src))
		return
	}
	checkSrc(src, dt, len(dst))
	k := len(dst) &^ (s.step(dt) - 1)
	if k > 0 {
		s.decode[dt](&dst[0], &src[0], k)
	}
	if k < len(dst) {
		decodeRowGo(dst[k:], dt, src[dt.RowBytes(k):])
	}
}

func (s *simd) rmsNorm(out, x, weight []float32, eps float32) {
	n := len(x)
	out, weight = out[:n], weight[:n]
	k := n &^ (s.lanes - 1)
	var ss float64
	if k > 0 {
		ss = s.sumSquares(&x[0], k)
	}
	for _, v := range x[k:] {
		ss += float64(v) * float64(v)
	}
	scale := rmsScale(ss, n, eps)
	if k > 0 {
		s.scaleMul(&out[0], &x[0], &weight[0], scale, k)
	}
	for i := k; i < n; i++ {
		out[i] = x[i] * scale * weight[i]
	}
}

// checkSrc panics unless src holds n values of type dt (whole Q8_0
// blocks), so that no kernel reads past it.
func checkSrc(src []byte, dt DType, n int) {
	if dt > Q8_0 {
		panic("kernels: unknown dtype " + dt.String())
	}
	if len(src) < dt.RowBytes(n) {
		panic("kernels: " + dt.String() + " source shorter than its destination")
	}
}
