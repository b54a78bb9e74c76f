package kernels

import (
	"encoding/binary"
	"math"
)

// dotGo is the pure-Go Dot: four partial sums, so it runs at a few
// GFLOP/s even without SIMD.
func dotGo(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyRowGo adds alpha·w[i] to y[i] for the len(y) values w stored as dt
// in src. For Q8_0 only whole blocks are read.
func axpyRowGo(y []float32, alpha float32, dt DType, src []byte) {
	switch dt {
	case F32:
		for i, v := range AsF32(src)[:len(y)] {
			y[i] += alpha * v
		}
	case BF16:
		for i, h := range AsU16(src)[:len(y)] {
			y[i] += alpha * BF16ToF32(h)
		}
	case F16:
		for i, h := range AsU16(src)[:len(y)] {
			y[i] += alpha * F16ToF32(h)
		}
	case Q8_0:
		for b := 0; b < len(y)/Q8_0Block; b++ {
			blk := src[b*q8_0BlockBytes : (b+1)*q8_0BlockBytes]
			d := F16ToF32(binary.LittleEndian.Uint16(blk))
			for i, q := range blk[2:] {
				y[b*Q8_0Block+i] += alpha * (d * float32(int8(q)))
			}
		}
	case Q4_K, Q6_K, Q5_0, Q4_0:
		var buf [KBlock]float32
		bs := dt.BlockSize()
		bb := dt.RowBytes(bs)
		for b := 0; b < len(y)/bs; b++ {
			decodeRowGo(buf[:bs], dt, src[b*bb:(b+1)*bb])
			for i, v := range buf[:bs] {
				y[b*bs+i] += alpha * v
			}
		}
	default:
		panic("kernels: AxpyRow of unknown dtype " + dt.String())
	}
}

// rmsNormGo is the pure-Go RMSNorm.
func rmsNormGo(out, x, weight []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := rmsScale(ss, len(x), eps)
	for i, v := range x {
		out[i] = v * scale * weight[i]
	}
}

// rmsScale returns 1/sqrt(ss/n + eps), the RMSNorm factor for a row of n
// values whose squares sum to ss.
func rmsScale(ss float64, n int, eps float32) float32 {
	return float32(1 / math.Sqrt(ss/float64(n)+float64(eps)))
}

// dotRowsGo is the pure-Go DotRows.
func dotRowsGo(y []float32, ystride int, x []float32, xstride, n int, w []float32, wstride, rows, cols int) {
	for t := range n {
		xt := x[t*xstride : t*xstride+cols]
		for r := range rows {
			y[t*ystride+r] = dotGo(xt, w[r*wstride:r*wstride+cols])
		}
	}
}

// axpyRowsGo is the pure-Go AxpyRows.
func axpyRowsGo(y []float32, ystride int, a []float32, astride, n int, x []float32, xstride, rows, cols int) {
	for t := range n {
		yt := y[t*ystride : t*ystride+cols]
		for r := range rows {
			alpha := a[t*astride+r]
			for c, v := range x[r*xstride : r*xstride+cols] {
				yt[c] += alpha * v
			}
		}
	}
}

// axpyRowsF16Go is the pure-Go AxpyRowsF16.
func axpyRowsF16Go(y []float32, ystride int, a []float32, astride, n int, x []uint16, xstride, rows, cols int) {
	for t := range n {
		yt := y[t*ystride : t*ystride+cols]
		for r := range rows {
			alpha := a[t*astride+r]
			for c, v := range x[r*xstride : r*xstride+cols] {
				yt[c] += alpha * F16ToF32(v)
			}
		}
	}
}

// expSumGo sets x[i] = exp((x[i]-max)·scale) and returns their sum.
func expSumGo(x []float32, max, scale float32) float32 {
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64((v - max) * scale)))
		x[i] = e
		sum += e
	}
	return sum
}

// siluMulGo sets gate[i] = silu(gate[i])·up[i].
func siluMulGo(gate, up []float32) {
	up = up[:len(gate)]
	for i, g := range gate {
		gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
	}
}

// axpyUnitsGo is axpyRowGo for a row stored in units of InterleaveCols
// values stride bytes apart; stride 0 means one contiguous row.
func axpyUnitsGo(y []float32, alpha float32, dt DType, src []byte, stride int) {
	if stride == 0 {
		axpyRowGo(y, alpha, dt, src)
		return
	}
	for u := range checkUnits(src, dt, len(y), stride) {
		axpyRowGo(y[u*InterleaveCols:(u+1)*InterleaveCols], alpha, dt, src[u*stride:])
	}
}

// decodeUnitsGo is decodeRowGo for a row stored in units of
// InterleaveCols values stride bytes apart; stride 0 means one
// contiguous row.
func decodeUnitsGo(dst []float32, dt DType, src []byte, stride int) {
	if stride == 0 {
		decodeRowGo(dst, dt, src)
		return
	}
	for u := range checkUnits(src, dt, len(dst), stride) {
		decodeRowGo(dst[u*InterleaveCols:(u+1)*InterleaveCols], dt, src[u*stride:])
	}
}

// checkUnits panics unless n values in units of InterleaveCols, stride
// bytes apart, fit in src, and returns the number of units.
func checkUnits(src []byte, dt DType, n, stride int) int {
	units := n / InterleaveCols
	if n%InterleaveCols != 0 || units > 0 && len(src) < (units-1)*stride+dt.RowBytes(InterleaveCols) {
		panic("kernels: " + dt.String() + " interleaved row does not fit its source")
	}
	return units
}
