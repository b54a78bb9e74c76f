//go:build !purego

package kernels

import "unsafe"

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
	if s.axpy[dt] == nil {
		axpyRowGo(y, alpha, dt, src)
		return
	}
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
	if s.decode[dt] == nil {
		decodeRowGo(dst, dt, src)
		return
	}
	k := len(dst) &^ (s.step(dt) - 1)
	if k > 0 {
		s.decode[dt](&dst[0], &src[0], k)
	}
	if k < len(dst) {
		decodeRowGo(dst[k:], dt, src[dt.RowBytes(k):])
	}
}

// axpyUnits and decodeUnits check the bounds once and then call the
// kernels a unit at a time: a row of an interleaved matrix is Cols/32
// short runs, and the training backward pass reads every row of the base
// weights this way.
func (s *simd) axpyUnits(y []float32, alpha float32, dt DType, src []byte, stride int) {
	if stride == 0 {
		s.axpyRow(y, alpha, dt, src)
		return
	}
	if s.axpy[dt] == nil {
		axpyUnitsGo(y, alpha, dt, src, stride)
		return
	}
	units := checkUnits(src, dt, len(y), stride)
	for u := range units {
		s.axpy[dt](&y[u*InterleaveCols], &src[u*stride], alpha, InterleaveCols)
	}
}

func (s *simd) decodeUnits(dst []float32, dt DType, src []byte, stride int) {
	if stride == 0 {
		s.decodeRow(dst, dt, src)
		return
	}
	units := checkUnits(src, dt, len(dst), stride)
	if dt == F32 || s.decode[dt] == nil {
		decodeUnitsGo(dst, dt, src, stride)
		return
	}
	for u := range units {
		s.decode[dt](&dst[u*InterleaveCols], &src[u*stride], InterleaveCols)
	}
}

// decodeQ8Packed checks the bounds once and converts the row's blocks in
// one call.
func (s *simd) decodeQ8Packed(dst []float32, qs, ds []byte) {
	nb := len(dst) / Q8_0Block
	if nb == 0 {
		return
	}
	_, _ = qs[(nb-1)*128+3*32+7], ds[(nb-1)*8+1]
	s.decodeQ8X4Row(&dst[0], &qs[0], &ds[0], nb)
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

// checkSrc panics unless src holds n values of type dt (whole blocks),
// so that no kernel reads past it.
func checkSrc(src []byte, dt DType, n int) {
	if int(dt) >= numDTypes {
		panic("kernels: unknown dtype " + dt.String())
	}
	if len(src) < dt.RowBytes(n) {
		panic("kernels: " + dt.String() + " source shorter than its destination")
	}
}

func (s *simd) dotRows(y []float32, ystride int, x []float32, xstride, n int, w []float32, wstride, rows, cols int) {
	tile, maxT := s.tile[F32], s.maxT[F32]
	k := cols &^ (s.lanes - 1)
	r := 0
	for ; r+4 <= rows; r += 4 {
		wt := F32Bytes(w[r*wstride:])
		for t := 0; t < n; t += maxT {
			tile(&y[t*ystride+r], ystride, &x[t*xstride], xstride, &wt[0], 4*wstride, k, min(maxT, n-t))
		}
		for c := k; c < cols; c++ { // the columns after the last whole vector
			for i := range 4 {
				for t := range n {
					y[t*ystride+r+i] += x[t*xstride+c] * w[(r+i)*wstride+c]
				}
			}
		}
	}
	for ; r < rows; r++ {
		for t := range n {
			y[t*ystride+r] = s.dotSlices(x[t*xstride:t*xstride+cols], w[r*wstride:r*wstride+cols])
		}
	}
}

// axpyRowsAVX2 is AxpyRows for both AVX2 and AVX-512 (see _asm/attn.go),
// axpyRowsF16AVX2Slices AxpyRowsF16.
func axpyRowsAVX2(y []float32, ystride int, a []float32, astride, n int, x []float32, xstride, rows, cols int) {
	axpyRowsTiles(axpyRowsF32AVX2, axpyRowsWideF32AVX2, axpyRowsGo, y, ystride, a, astride, n, x, xstride, rows, cols)
}

func axpyRowsF16AVX2Slices(y []float32, ystride int, a []float32, astride, n int, x []uint16, xstride, rows, cols int) {
	axpyRowsTiles(axpyRowsF16AVX2, axpyRowsWideF16AVX2, axpyRowsF16Go, y, ystride, a, astride, n, x, xstride, rows, cols)
}

// axpyRowsTiles runs the axpyRows kernels over the columns: for up to 3
// tokens the wide kernel, 32 columns a call, then the 16-column kernel,
// up to 6 tokens a call, and the Go version over the last columns. The
// rows go in chunks of about 4 KB, each chunk through all its columns
// before the next: the tiles of a chunk then share its cache lines (a
// row of 64 F16 values is 2 lines) while they are in L1, where a pass
// per tile over all the rows fetched them again. The value pass over 90
// cold 512-position heads took 10.9-11.6 µs a head, and 8.0-8.5 in
// chunks of 32 rows.
func axpyRowsTiles[X float32 | uint16](kernel func(y *float32, ystride int, a *float32, astride int, x *X, xstride int, nt, rows int),
	wide func(y *float32, ystride int, a *float32, astride int, x, x2 *X, xstride int, nt, rows int),
	tail func(y []float32, ystride int, a []float32, astride, n int, x []X, xstride, rows, cols int),
	y []float32, ystride int, a []float32, astride, n int, x []X, xstride, rows, cols int) {
	const width, maxT, chunkBytes = 16, 6, 4096
	chunk := max(1, chunkBytes/max(1, xstride*int(unsafe.Sizeof(x[0]))))
	for r := 0; r < rows; r += chunk {
		nr := min(chunk, rows-r)
		xr := x[r*xstride:]
		c := 0
		if n <= axpyRowsWideTokens {
			for ; c+2*width <= cols; c += 2 * width {
				wide(&y[c], ystride, &a[r], astride, &xr[c], &xr[c+width], xstride, n, nr)
			}
		}
		for ; c+width <= cols; c += width {
			for t := 0; t < n; t += maxT {
				kernel(&y[t*ystride+c], ystride, &a[t*astride+r], astride, &xr[c], xstride, min(maxT, n-t), nr)
			}
		}
		if c < cols {
			tail(y[c:], ystride, a[r:], astride, n, xr[c:], xstride, nr, cols-c)
		}
	}
}

// axpyRowsWideTokens is the most tokens the wide kernels take.
const axpyRowsWideTokens = 3

func largestSlices(x []float32) float32 {
	k := len(x) &^ 31
	if k == 0 {
		return largestGo(x)
	}
	return max(largestAVX2(&x[0], k), largestGo(x[k:])) // neither is NaN
}

func encodeF16Slices(dst []uint16, stride int, src []float32) {
	k := len(src) &^ 7
	if k > 0 {
		encodeF16AVX2(&dst[0], stride, &src[0], k)
	}
	if k < len(src) {
		encodeF16Go(dst[k*stride:], stride, src[k:])
	}
}

func expSumSlices(x []float32, max, scale float32) float32 {
	k := len(x) &^ 7
	var sum float32
	if k > 0 {
		sum = expSumAVX2(&x[0], k, max, scale)
	}
	return sum + expSumGo(x[k:], max, scale)
}

func siluMulSlices(gate, up []float32) {
	up = up[:len(gate)]
	k := len(gate) &^ 7
	if k > 0 {
		siluMulAVX2(&gate[0], &up[0], k)
	}
	siluMulGo(gate[k:], up[k:])
}
