package kernels

import (
	"fmt"
	"math"
)

// DType is the storage type of a weight matrix.
type DType uint8

// The storage types the kernels read.
const (
	F32  DType = iota // IEEE float32
	F16               // IEEE float16
	BF16              // bfloat16: the upper 16 bits of a float32
	Q8_0              // GGUF Q8_0: blocks of 32 int8 values with one f16 scale
	Q4_K              // GGUF Q4_K: super-blocks of 256 4-bit values, 8 scales and mins
	Q6_K              // GGUF Q6_K: super-blocks of 256 6-bit values, 16 int8 scales
	Q5_0              // GGUF Q5_0: blocks of 32 5-bit values with one f16 scale
	Q4_0              // GGUF Q4_0: blocks of 32 4-bit values with one f16 scale
)

// numDTypes is the number of storage types, for tables indexed by DType.
const numDTypes = int(Q4_0) + 1

// q4_0BlockBytes is the size of one Q4_0 block of 32 values: an f16
// scale and 16 bytes of nibbles.
const q4_0BlockBytes = 2 + 16

// q5_0BlockBytes is the size of one Q5_0 block of 32 values: an f16
// scale, 4 bytes of fifth bits, 16 bytes of nibbles.
const q5_0BlockBytes = 2 + 4 + 16

// Q8_0Block is the number of values in one Q8_0 block.
const Q8_0Block = 32

// q8_0BlockBytes is the size of one Q8_0 block: an f16 scale and 32 int8.
const q8_0BlockBytes = 2 + Q8_0Block

// KBlock is the number of values in one Q4_K or Q6_K super-block (QK_K).
const KBlock = 256

// The sizes of the K-quant super-blocks (block_q4_K and block_q6_K in
// ggml): Q4_K is f16 d, f16 dmin, 12 bytes of packed 6-bit scales and
// mins, 128 bytes of nibbles; Q6_K is 128 bytes of low nibbles, 64 bytes
// of high 2-bit pairs, 16 int8 scales and f16 d.
const (
	q4KBlockBytes = 2 + 2 + 12 + KBlock/2
	q6KBlockBytes = KBlock/2 + KBlock/4 + KBlock/16 + 2
)

// BlockSize returns the number of values the type stores together: 1 for
// F32, F16 and BF16, 32 for Q8_0, Q5_0 and Q4_0, 256 for Q4_K and Q6_K. A
// row of a matrix holds a whole number of blocks.
func (d DType) BlockSize() int {
	switch d {
	case Q8_0, Q5_0, Q4_0:
		return Q8_0Block
	case Q4_K, Q6_K:
		return KBlock
	}
	return 1
}

func (d DType) String() string {
	switch d {
	case F32:
		return "F32"
	case F16:
		return "F16"
	case BF16:
		return "BF16"
	case Q8_0:
		return "Q8_0"
	case Q4_K:
		return "Q4_K"
	case Q6_K:
		return "Q6_K"
	case Q5_0:
		return "Q5_0"
	case Q4_0:
		return "Q4_0"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// RowBytes returns the number of bytes that n consecutive values take in
// this type; n must be a multiple of BlockSize.
func (d DType) RowBytes(n int) int {
	switch d {
	case F32:
		return 4 * n
	case F16, BF16:
		return 2 * n
	case Q8_0:
		return n / Q8_0Block * q8_0BlockBytes
	case Q4_K:
		return n / KBlock * q4KBlockBytes
	case Q6_K:
		return n / KBlock * q6KBlockBytes
	case Q5_0:
		return n / Q8_0Block * q5_0BlockBytes
	case Q4_0:
		return n / Q8_0Block * q4_0BlockBytes
	}
	return 0
}

// BF16ToF32 widens a bfloat16 bit pattern to float32 exactly.
func BF16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F32ToBF16 rounds a float32 to the nearest bfloat16, ties to even, as
// PyTorch does. NaN stays NaN.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet and non-zero
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToF32 widens an IEEE half-precision bit pattern to float32 exactly,
// subnormals and infinities included. A NaN keeps its sign and payload and
// comes out quiet, as the F16C instruction vcvtph2ps makes it, so that
// every implementation gives the same bits.
func F16ToF32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f && mant != 0: // NaN
		return math.Float32frombits(sign | 0x7fc00000 | mant<<13)
	case exp == 0x1f: // Inf
		return math.Float32frombits(sign | 0x7f800000)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value is mant * 2^-24.
		f := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

// F32ToF16 rounds a float32 to the nearest IEEE half, ties to even;
// values beyond the half range become infinities.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		if e < -10 {
			return sign
		}
		// Subnormal half: shift the mantissa with its implicit bit.
		m := mant | 0x800000
		shift := uint32(14 - e)
		half := m >> shift
		rem := m & (1<<shift - 1)
		mid := uint32(1) << (shift - 1)
		if rem > mid || (rem == mid && half&1 == 1) {
			half++
		}
		return sign | uint16(half)
	}
	half := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && half&1 == 1) {
		half++ // may carry into the exponent, which is the right rounding
	}
	return sign | uint16(half)
}
