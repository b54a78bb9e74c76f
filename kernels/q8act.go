package kernels

import (
	"encoding/binary"
	"math"
)

// Q8_0 decode with int8 activations. Widening every Q8_0 weight to float
// costs about twice the instructions per byte of an F16 weight, enough
// that two AVX2 cores reading Q8_0 weights from memory ran at their
// compute limit. The AVX2 decode tile instead takes the activations
// quantized the same way, block by block, and sums each block's products
// in integers, as llama.cpp's Q8_0 kernels do: one token's activations
// are quantized once per MatMul, before the workers start.
//
// A quantized block is q8ActBlockBytes bytes: 32 int8 values q, then the
// float32 scale d, x ≈ d·q. The result differs from the float kernels by
// the activations' rounding: at most d/2 per value, d = max|x|/127 over
// its block.

// q8ActBlockBytes is the size of one quantized activation block.
const q8ActBlockBytes = 36

// q8ActFloats returns the float32 words that n tokens of cols activations
// take quantized; cols is a multiple of 32.
func q8ActFloats(n, cols int) int { return n * cols / 32 * q8ActBlockBytes / 4 }

// quantizeQ8ActsGo quantizes x, len(x)/32 blocks, into dst: per block,
// amax = max|x|, id = 127/amax (0 if amax is 0), q = round-half-even(x·id)
// and d = amax/127, each rounded to float32 as the AVX2 kernel rounds it.
func quantizeQ8ActsGo(dst []byte, x []float32) {
	for b := 0; b+32 <= len(x); b += 32 {
		blk := x[b : b+32]
		var amax float32
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		out := dst[b/32*q8ActBlockBytes:]
		for i, v := range blk {
			out[i] = byte(int8(math.RoundToEven(float64(v * id))))
		}
		binary.LittleEndian.PutUint32(out[32:], math.Float32bits(amax/127))
	}
}

// q8ActScale returns the scale d of the quantized block at b.
func q8ActScale(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[32:])) }
