package kernels

import (
	"encoding/binary"
	"math"
)

// The K-quants of GGUF (ggml's block_q4_K and block_q6_K), which store 256
// values per super-block. DecodeRow converts them exactly as ggml's
// dequantize_row_q4_K and dequantize_row_q6_K do; the kernels convert them
// a panel of rows at a time into cache, never a whole matrix.

// q4KScaleMin returns the 6-bit scale and min of sub-block j (0-7) from a
// Q4_K super-block's 12 packed bytes: sub-blocks 0-3 keep theirs in the
// low 6 bits of bytes j and j+4; sub-blocks 4-7 keep their low 4 bits in
// byte j+4's nibbles and their top 2 bits in the spare top bits of bytes
// j-4 (scale) and j (min).
func q4KScaleMin(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0xF | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// decodeQ4KGo converts one Q4_K super-block: value 64k+l (l < 32) is the
// low nibble of qs[32k+l], value 64k+32+l its high nibble, each times
// its sub-block's d·scale minus dmin·min.
func decodeQ4KGo(dst []float32, blk []byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk))
	dmin := F16ToF32(binary.LittleEndian.Uint16(blk[2:]))
	scales, qs := blk[4:16], blk[16:q4KBlockBytes]
	for k := range 4 {
		sc, m := q4KScaleMin(2*k, scales)
		d1, m1 := d*float32(sc), dmin*float32(m)
		sc, m = q4KScaleMin(2*k+1, scales)
		d2, m2 := d*float32(sc), dmin*float32(m)
		y, q := dst[64*k:64*k+64], qs[32*k:32*k+32]
		for l, b := range q {
			y[l] = float32(d1*float32(b&0xF)) - m1 // the conversion keeps the product rounded, never fused
			y[l+32] = float32(d2*float32(b>>4)) - m2
		}
	}
}

// decodeQ6KGo converts one Q6_K super-block. Each half of 128 values
// takes 64 bytes of ql, 32 of qh and 8 scales: value 32i+l (i < 4, l <
// 32) has the low or high nibble of ql[l] (i = 0, 2) or ql[l+32] (i = 1,
// 3) and bits 2i, 2i+1 of qh[l] on top, minus 32, times d·scale[i*2+l/16].
func decodeQ6KGo(dst []float32, blk []byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk[q6KBlockBytes-2:]))
	for h := range 2 {
		ql, qh := blk[64*h:64*h+64], blk[128+32*h:128+32*h+32]
		sc := blk[192+8*h : 192+8*h+8]
		y := dst[128*h : 128*h+128]
		for l := range 32 {
			is := l / 16
			q1 := int8(ql[l]&0xF|(qh[l]>>0&3)<<4) - 32
			q2 := int8(ql[l+32]&0xF|(qh[l]>>2&3)<<4) - 32
			q3 := int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
			q4 := int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
			y[l] = d * float32(int8(sc[is])) * float32(q1)
			y[l+32] = d * float32(int8(sc[is+2])) * float32(q2)
			y[l+64] = d * float32(int8(sc[is+4])) * float32(q3)
			y[l+96] = d * float32(int8(sc[is+6])) * float32(q4)
		}
	}
}

// encodeQ4K appends one Q4_K super-block for the 256 values x. Each
// sub-block of 32 gets min = min(0, min x) and scale = (max x - min)/15;
// the 8 scales and 8 mins are stored as 6-bit multiples of d and dmin.
func encodeQ4K(dst []byte, x []float32) []byte {
	var scale, mins [8]float32
	var maxScale, maxMin float32
	for j := range 8 {
		lo, hi := float32(0), float32(0)
		for _, v := range x[32*j : 32*j+32] {
			lo, hi = min(lo, v), max(hi, v)
		}
		scale[j], mins[j] = (hi-lo)/15, -lo
		maxScale, maxMin = max(maxScale, scale[j]), max(maxMin, mins[j])
	}
	d, dmin := F16ToF32(F32ToF16(maxScale/63)), F16ToF32(F32ToF16(maxMin/63))
	var sc, m [8]uint8
	for j := range 8 {
		sc[j], m[j] = quant6(scale[j], d), quant6(mins[j], dmin)
	}
	var blk [q4KBlockBytes]byte
	binary.LittleEndian.PutUint16(blk[0:], F32ToF16(d))
	binary.LittleEndian.PutUint16(blk[2:], F32ToF16(dmin))
	q := blk[4:16]
	for j := range 4 { // the inverse of q4KScaleMin
		q[j] = sc[j] | (sc[j+4]>>4)<<6
		q[j+4] = m[j] | (m[j+4]>>4)<<6
		q[j+8] = sc[j+4]&0xF | (m[j+4]&0xF)<<4
	}
	for j := range 8 {
		ds, ms := d*float32(sc[j]), dmin*float32(m[j])
		for l, v := range x[32*j : 32*j+32] {
			n := uint8(0)
			if ds != 0 {
				n = uint8(min(15, max(0, roundHalfAway((v+ms)/ds))))
			}
			i := 16 + 32*(j/2) + l
			if j%2 == 0 {
				blk[i] |= n
			} else {
				blk[i] |= n << 4
			}
		}
	}
	return append(dst, blk[:]...)
}

// quant6 returns v/unit rounded to the nearest of 0-63.
func quant6(v, unit float32) uint8 {
	if unit == 0 {
		return 0
	}
	return uint8(min(63, max(0, roundHalfAway(v/unit))))
}

// encodeQ6K appends one Q6_K super-block for the 256 values x: each group
// of 16 gets scale max|x|/31 (values -32..31), and the 16 scales are int8
// multiples of d = max scale/127.
func encodeQ6K(dst []byte, x []float32) []byte {
	var scale [16]float32
	var maxScale float32
	for g := range 16 {
		var amax float32
		for _, v := range x[16*g : 16*g+16] {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		scale[g] = amax / 31
		maxScale = max(maxScale, scale[g])
	}
	d := F16ToF32(F32ToF16(maxScale / 127))
	var blk [q6KBlockBytes]byte
	binary.LittleEndian.PutUint16(blk[q6KBlockBytes-2:], F32ToF16(d))
	var q [KBlock]uint8 // value + 32, 0..63
	for g := range 16 {
		sc := int8(0)
		if d != 0 {
			sc = int8(min(127, roundHalfAway(scale[g]/d)))
		}
		blk[192+g] = byte(sc)
		ds := d * float32(sc)
		for i, v := range x[16*g : 16*g+16] {
			n := int32(0)
			if ds != 0 {
				n = min(31, max(-32, roundHalfAway(v/ds)))
			}
			q[16*g+i] = uint8(n + 32)
		}
	}
	for h := range 2 { // the inverse of decodeQ6KGo's layout
		ql, qh, y := blk[64*h:64*h+64], blk[128+32*h:128+32*h+32], q[128*h:128*h+128]
		for l := range 32 {
			ql[l] = y[l]&0xF | (y[l+64]&0xF)<<4
			ql[l+32] = y[l+32]&0xF | (y[l+96]&0xF)<<4
			qh[l] = y[l]>>4 | (y[l+32]>>4)<<2 | (y[l+64]>>4)<<4 | (y[l+96]>>4)<<6
		}
	}
	return append(dst, blk[:]...)
}

// decodeQ5_0Go converts one Q5_0 block (ggml's block_q5_0): value j < 16
// is the low nibble of qs[j] with bit j of qh on top, value j+16 the high
// nibble with bit j+16, each minus 16, times d.
func decodeQ5_0Go(dst []float32, blk []byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk))
	qh := binary.LittleEndian.Uint32(blk[2:])
	for j, b := range blk[6:q5_0BlockBytes] {
		lo := int32(b&0xF|byte(qh>>j&1)<<4) - 16
		hi := int32(b>>4|byte(qh>>(j+16)&1)<<4) - 16
		dst[j] = float32(lo) * d
		dst[j+16] = float32(hi) * d
	}
}

// encodeQ5_0 appends one Q5_0 block for the 32 values x as llama.cpp's
// quantize_row_q5_0_ref does: d = (the value of largest magnitude)/-16,
// q = x/d + 16.5 truncated, at most 31.
func encodeQ5_0(dst []byte, x []float32) []byte {
	d, id := symmetricScale(x, 16)
	var blk [q5_0BlockBytes]byte
	binary.LittleEndian.PutUint16(blk[0:], F32ToF16(d))
	var qh uint32
	for j := range 16 {
		q0 := min(31, int8(x[j]*id+16.5))
		q1 := min(31, int8(x[j+16]*id+16.5))
		blk[6+j] = byte(q0&0xF) | byte(q1&0xF)<<4
		qh |= uint32(q0>>4&1)<<j | uint32(q1>>4&1)<<(j+16)
	}
	binary.LittleEndian.PutUint32(blk[2:], qh)
	return append(dst, blk[:]...)
}

// symmetricScale returns the scale of a Q5_0 or Q4_0 block as llama.cpp
// computes it, d = (the value of largest magnitude)/-half, where half is
// 16 or 8, and its inverse (0 for an all-zero block).
func symmetricScale(x []float32, half float32) (d, id float32) {
	var amax, mx float32
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > amax {
			amax, mx = a, v
		}
	}
	if d = mx / -half; d != 0 {
		id = 1 / d
	}
	return d, id
}

// decodeQ4_0Go converts one Q4_0 block (ggml's block_q4_0): value j < 16
// is the low nibble of qs[j], value j+16 its high nibble, each minus 8,
// times d.
func decodeQ4_0Go(dst []float32, blk []byte) {
	d := F16ToF32(binary.LittleEndian.Uint16(blk))
	for j, b := range blk[2:q4_0BlockBytes] {
		dst[j] = float32(int32(b&0xF)-8) * d
		dst[j+16] = float32(int32(b>>4)-8) * d
	}
}

// encodeQ4_0 appends one Q4_0 block for the 32 values x as llama.cpp's
// quantize_row_q4_0_ref does: d = (the value of largest magnitude)/-8,
// q = x/d + 8.5 truncated, at most 15.
func encodeQ4_0(dst []byte, x []float32) []byte {
	d, id := symmetricScale(x, 8)
	var blk [q4_0BlockBytes]byte
	binary.LittleEndian.PutUint16(blk[0:], F32ToF16(d))
	for j := range 16 {
		q0 := min(15, int8(x[j]*id+8.5))
		q1 := min(15, int8(x[j+16]*id+8.5))
		blk[2+j] = byte(q0) | byte(q1)<<4
	}
	return append(dst, blk[:]...)
}
