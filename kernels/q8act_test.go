package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// quantizedActs quantizes x as MatMul does for the active implementation's
// Q8_0 decode tile, and reports whether that tile computes w for n tokens
// (a matrix of under 4 rows goes row by row, in float).
func quantizedActs(w Matrix, x []float32, n int) ([]float32, bool) {
	if w.DType != Q8_0 || active.q8Acts == nil || w.Rows < 4 || n > active.q8ActTokens {
		return nil, false
	}
	xq := make([]float32, q8ActFloats(n, w.Cols))
	active.q8Acts(xq, x, n, w.Cols)
	return xq, true
}

// dequantizeQ8Acts returns the n values d·q of quantized activations.
func dequantizeQ8Acts(xq []byte, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		b := xq[i/32*q8ActBlockBytes:]
		x[i] = q8ActScale(b) * float32(int8(b[i%32]))
	}
	return x
}

// matmulQ8ActsRef is MatMulRef for Q8_0 weights and quantized activations
// xq: y[t,r] = Σ_blocks d_w·d_x·Σ q_w·q_x, in float64. Tests compare the
// int8 tile against it.
func matmulQ8ActsRef(y []float32, xq []byte, w Matrix, n int) {
	blocks := w.Cols / 32
	rowBytes := w.DType.RowBytes(w.Cols)
	row := make([]byte, rowBytes)
	for r := range w.Rows {
		for b := range blocks {
			if w.Interleaved && w.DType == Q8_0 {
				w.q8Block((*[34]byte)(row[b*34:]), r, b)
				continue
			}
			src, stride := w.rowUnits(r) // either layout
			copy(row[b*34:(b+1)*34], src[b*max(stride, 34):])
		}
		for t := range n {
			var sum float64
			for b := range blocks {
				wb, xb := row[b*34:], xq[(t*blocks+b)*q8ActBlockBytes:]
				var isum int
				for i := range 32 {
					isum += int(int8(wb[2+i])) * int(int8(xb[i]))
				}
				dw := F16ToF32(uint16(wb[0]) | uint16(wb[1])<<8)
				dx := q8ActScale(xb)
				sum += float64(dw) * float64(dx) * float64(isum)
			}
			y[t*w.Rows+r] = float32(sum)
		}
	}
}

// TestQuantizeQ8Acts checks each implementation's quantizer against the
// Go one bit for bit: zero blocks, one large value, values at the
// rounding midpoints, negative zero, and random ones.
func TestQuantizeQ8Acts(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 21))
	var x []float32
	x = append(x, make([]float32, 32)...) // all zero
	big := make([]float32, 32)
	big[7] = -1e30
	big[8] = 3
	x = append(x, big...)
	mid := make([]float32, 32)
	for i := range mid {
		mid[i] = float32(i) - 15.5 // x·id lands on .5 for several values
	}
	mid[31] = 127
	x = append(x, mid...)
	negz := make([]float32, 32)
	negz[0] = float32(math.Copysign(0, -1))
	negz[1] = -1
	x = append(x, negz...)
	x = append(x, randFloats(rng, 32*20)...)
	want := make([]byte, len(x)/32*q8ActBlockBytes)
	quantizeQ8ActsGo(want, x)
	if got := dequantizeQ8Acts(want, 32); got[0] != 0 || got[31] != 0 {
		t.Fatalf("a zero block dequantizes to %v", got)
	}
	if q := int8(want[q8ActBlockBytes+7]); q != -127 {
		t.Errorf("the largest value quantizes to %d, want -127", q)
	}
	for _, im := range impls {
		if im.q8Acts == nil {
			continue
		}
		for n := 1; n <= 3; n++ {
			cols := len(x) / n / 32 * 32
			got := make([]float32, q8ActFloats(n, cols))
			if n > im.q8ActTokens {
				t.Fatalf("%s: the int8 tile takes %d tokens, not %d", im.name, im.q8ActTokens, n)
			}
			im.q8Acts(got, x, n, cols)
			gb, wb := F32Bytes(got), want[:n*cols/32*q8ActBlockBytes]
			for i := range wb {
				if gb[i] != wb[i] {
					t.Fatalf("%s, %d tokens of %d: byte %d (block %d) = %#x, want %#x", im.name, n, cols, i, i/q8ActBlockBytes, gb[i], wb[i])
				}
			}
		}
		if im.q8ActTokens >= 64 {
			t.Errorf("%s: the int8 tile takes 64 tokens, which go through the prefill path", im.name)
		}
		// A prefill MatMul neither quantizes nor grows the buffer for it.
		saved := active
		active = im
		p := NewPool(2)
		w := randMatrix(rng, Q8_0, 64, 256)
		p.MatMul(make([]float32, 64*64), randFloats(rng, 64*256), w, 64)
		if cap(p.acts) != 0 {
			t.Errorf("%s: a 64-token Q8_0 MatMul grew the quantized activations to %d floats", im.name, cap(p.acts))
		}
		p.MatMul(make([]float32, 2*64), randFloats(rng, 2*256), w, 2)
		if cap(p.acts) == 0 {
			t.Errorf("%s: a 2-token Q8_0 MatMul did not quantize its activations", im.name)
		}
		p.Close()
		active = saved
	}
}

// TestQ8ActsNaN checks that a NaN activation reaches the outputs it
// touches, as it does in float: the quantizer's maximum must not drop it.
func TestQ8ActsNaN(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		p := NewPool(2)
		defer p.Close()
		w := randMatrix(rand.New(rand.NewPCG(24, 24)), Q8_0, 8, 64)
		for _, at := range []int{0, 5, 31, 40} {
			x := make([]float32, 64)
			for i := range x {
				x[i] = float32(i%7) - 3
			}
			x[at] = float32(math.NaN())
			y := make([]float32, 8)
			p.MatMul(y, x, w, 1)
			for r, v := range y {
				if !math.IsNaN(float64(v)) {
					t.Fatalf("NaN at x[%d]: y[%d] = %g, want NaN", at, r, v)
				}
			}
		}
	})
}

// TestQ8ActsError checks that MatMul with quantized activations is within
// their rounding of the exact product: |Δy| <= Σ_c |w_c|·d_c/2, d_c the
// scale of x_c's block, plus float rounding.
func TestQ8ActsError(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		p := NewPool(2)
		defer p.Close()
		rng := rand.New(rand.NewPCG(22, 22))
		for _, n := range []int{1, 2, 3, 8} {
			w := randMatrix(rng, Q8_0, 64, 576)
			x := randFloats(rng, n*w.Cols)
			got, want := make([]float32, n*w.Rows), make([]float32, n*w.Rows)
			p.MatMul(got, x, w, n)
			MatMulRef(want, x, w, n)
			xq := make([]byte, n*w.Cols/32*q8ActBlockBytes)
			quantizeQ8ActsGo(xq, x)
			row := make([]float32, w.Cols)
			for r := range w.Rows {
				w.decodeRow(row, r, goRowDecoder)
				for tok := range n {
					var bound float64
					for c, v := range row {
						d := q8ActScale(xq[(tok*w.Cols+c)/32*q8ActBlockBytes:])
						bound += math.Abs(float64(v))*float64(d)/2 + 1e-5*math.Abs(float64(v*x[tok*w.Cols+c]))
					}
					if e := math.Abs(float64(got[tok*w.Rows+r] - want[tok*w.Rows+r])); e > bound {
						t.Fatalf("n=%d y[%d,%d] = %g, exact %g: off by %g, more than %g", n, tok, r, got[tok*w.Rows+r], want[tok*w.Rows+r], e, bound)
					}
				}
			}
		}
	})
}

// TestQ8Packed runs packed Q8_0 matrices (see Interleave) whose quants
// include -128, which other tools' files may hold (|w| is then 128 as an
// unsigned byte; with activations in [-127, 127] no pair sum saturates),
// and whose worker claims (a quarter of the tiles left) span several
// prefill panels, in decode and
// prefill, against the row-major matrix and the exact products.
func TestQ8Packed(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(31, 31))
		p := NewPool(1)
		defer p.Close()
		for _, shape := range [][2]int{{8, 64}, {8*panelRows(576) + 12, 576}} {
			w := randMatrix(rng, Q8_0, shape[0], shape[1])
			rb := Q8_0.RowBytes(w.Cols)
			for r := range w.Rows { // -128 and ±127 in every block
				for b := range w.Cols / Q8_0Block {
					blk := w.Data[r*rb+b*34:]
					blk[2+rng.IntN(32)], blk[2+rng.IntN(32)], blk[2+rng.IntN(32)] = 0x80, 0x7f, 0x81
				}
			}
			pw := Interleave(w)
			if !pw.Interleaved {
				t.Fatalf("%dx%d not packed", w.Rows, w.Cols)
			}
			for _, n := range []int{1, 2, 3, 17} {
				checkMatMul(t, p, rng, pw, n)
				x := randFloats(rng, n*w.Cols)
				want, got := make([]float32, n*w.Rows), make([]float32, n*w.Rows)
				p.MatMul(want, x, w, n)
				p.MatMul(got, x, pw, n)
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
						t.Fatalf("%dx%d n=%d: y[%d] packed %g, row-major %g", w.Rows, w.Cols, n, i, got[i], want[i])
					}
				}
			}
		}
	})
}
