package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// stridedShapes are the (n, rows, cols) shapes of the DotRows and AxpyRows
// tests: every tile and token remainder, columns with and without a tail
// of either vector width, and attention's own shapes (3 query heads per
// KV head, 64-wide heads, 16-position cache blocks), with the 32-column
// kernel's shapes for up to 3 tokens alone, before a 16-column call or a
// tail, and over several row chunks.
var stridedShapes = [][3]int{
	{1, 1, 1}, {1, 4, 8}, {2, 5, 16}, {3, 16, 64}, {3, 17, 64}, {4, 7, 33}, {6, 9, 48},
	{7, 13, 100}, {12, 3, 128}, {13, 33, 17}, {1, 512, 64}, {5, 4, 5},
	{1, 40, 33}, {2, 70, 48}, {3, 300, 96}, {2, 3, 1100}, // the last: a row per chunk
	{3, 5, 0}, {4, 8, 0}, // no columns: DotRows writes zeros, AxpyRows adds nothing
}

func TestDotRows(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 11))
		for _, s := range stridedShapes {
			n, rows, cols := s[0], s[1], s[2]
			ys, xs, ws := rows+3, cols+5, cols+7 // strides wider than the rows
			y, x, w := randFloats(rng, n*ys), randFloats(rng, n*xs), randFloats(rng, rows*ws)
			y0 := append([]float32(nil), y...)
			DotRows(y, ys, x, xs, n, w, ws, rows, cols)
			for i := range y {
				tok, r := i/ys, i%ys
				if r >= rows { // between rows: untouched
					if y[i] != y0[i] {
						t.Fatalf("%v: y[%d] changed outside the rows", s, i)
					}
					continue
				}
				var want, bound float64
				for c := range cols {
					p := float64(x[tok*xs+c]) * float64(w[r*ws+c])
					want += p
					bound += math.Abs(p)
				}
				if math.Abs(float64(y[i])-want) > 1e-5*bound+1e-7 {
					t.Fatalf("%v: y[%d][%d] = %g, want %g", s, tok, r, y[i], want)
				}
			}
		}
	})
}

// TestAxpyRows checks AxpyRows and AxpyRowsF16 against float64 sums,
// every implementation, every strided shape. The rows are f16 values, so
// both functions get the same numbers: AxpyRowsF16 the halves, AxpyRows
// their exact widening.
func TestAxpyRows(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(12, 12))
		for _, s := range stridedShapes {
			n, rows, cols := s[0], s[1], s[2]
			ys, as, xs := cols+3, rows+5, cols+7
			y0, a := randFloats(rng, n*ys), randFloats(rng, n*as)
			x16 := make([]uint16, rows*xs)
			EncodeF16(x16, 1, randFloats(rng, rows*xs))
			x := make([]float32, len(x16))
			for i, h := range x16 {
				x[i] = F16ToF32(h)
			}
			for _, tc := range []struct {
				name  string
				axpyF func(y []float32)
			}{
				{"AxpyRows", func(y []float32) { AxpyRows(y, ys, a, as, n, x, xs, rows, cols) }},
				{"AxpyRowsF16", func(y []float32) { AxpyRowsF16(y, ys, a, as, n, x16, xs, rows, cols) }},
			} {
				y := append([]float32(nil), y0...)
				tc.axpyF(y)
				for i := range y {
					tok, c := i/ys, i%ys
					want, bound := float64(y0[i]), math.Abs(float64(y0[i]))
					if c < cols {
						for r := range rows {
							p := float64(a[tok*as+r]) * float64(x[r*xs+c])
							want += p
							bound += math.Abs(p)
						}
					}
					if math.Abs(float64(y[i])-want) > 1e-5*bound+1e-7 {
						t.Fatalf("%s %v: y[%d][%d] = %g, want %g", tc.name, s, tok, c, y[i], want)
					}
				}
			}
		}
	})
}

// TestEncodeF16 checks rounding, overflow, underflow and a subnormal
// against the bit patterns numpy's float16 conversion gives, then random
// values of every magnitude, ties and NaNs against F32ToF16, dense and
// strided, with lengths around the vector kernel's 8. Nothing between
// the strided values is written.
func TestEncodeF16(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		src := []float32{1, -2.5, 65504, 70000, 1e-8, 6e-5, float32(math.Inf(-1)), 0.1}
		want := []uint16{0x3c00, 0xc100, 0x7bff, 0x7c00, 0x0000, 0x03ef, 0xfc00, 0x2e66}
		for _, stride := range []int{1, 3} {
			dst := make([]uint16, len(src)*stride)
			EncodeF16(dst, stride, src)
			for i, v := range src {
				if dst[i*stride] != want[i] {
					t.Errorf("stride %d: EncodeF16(%g) = %#04x, want %#04x", stride, v, dst[i*stride], want[i])
				}
			}
		}
		rng := rand.New(rand.NewPCG(15, 15))
		for _, n := range []int{1, 7, 8, 9, 16, 64, 67} {
			src := make([]float32, n)
			for i := range src {
				switch i % 5 {
				case 0: // any magnitude, subnormal halves and overflow included
					src[i] = math.Float32frombits(rng.Uint32())
				case 1: // a tie between two halves
					src[i] = math.Float32frombits(math.Float32bits(float32(rng.NormFloat64()))&^0x1fff | 0x1000)
				default:
					src[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(12)-8)))
				}
			}
			for _, stride := range []int{1, 16} {
				dst := make([]uint16, n*stride)
				for i := range dst {
					dst[i] = 0xdead
				}
				EncodeF16(dst, stride, src)
				for i, v := range dst {
					if i%stride != 0 {
						if v != 0xdead {
							t.Fatalf("n=%d stride %d: dst[%d] written", n, stride, i)
						}
						continue
					}
					x := src[i/stride]
					if x != x {
						if v&0x7c00 != 0x7c00 || v&0x3ff == 0 {
							t.Fatalf("n=%d stride %d: EncodeF16(NaN) = %#04x, not a NaN", n, stride, v)
						}
						continue
					}
					if w := F32ToF16(x); v != w {
						t.Fatalf("n=%d stride %d: EncodeF16(%g) = %#04x, want %#04x", n, stride, x, v, w)
					}
				}
			}
		}
	})
}

func TestStridedRejectsShortSlices(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"DotRows y", func() { DotRows(make([]float32, 7), 4, make([]float32, 16), 8, 2, make([]float32, 32), 8, 4, 8) }},
		{"DotRows w", func() { DotRows(make([]float32, 8), 4, make([]float32, 16), 8, 2, make([]float32, 31), 8, 4, 8) }},
		{"AxpyRows x", func() { AxpyRows(make([]float32, 16), 8, make([]float32, 8), 4, 2, make([]float32, 31), 8, 4, 8) }},
		{"AxpyRows a", func() { AxpyRows(make([]float32, 16), 8, make([]float32, 7), 4, 2, make([]float32, 32), 8, 4, 8) }},
		{"AxpyRowsF16 x", func() { AxpyRowsF16(make([]float32, 16), 8, make([]float32, 8), 4, 2, make([]uint16, 31), 8, 4, 8) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic on a short slice", tc.name)
				}
			}()
			tc.f()
		}()
	}
}

func TestScaledSoftmax(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(13, 13))
		for _, n := range opLengths {
			for _, spread := range []float32{1, 30, 3000} {
				x := randFloats(rng, n)
				for i := range x {
					x[i] *= spread
				}
				want := make([]float64, n)
				m := math.Inf(-1)
				for _, v := range x {
					m = math.Max(m, float64(v))
				}
				var sum float64
				for i, v := range x {
					want[i] = math.Exp((float64(v) - m) * 0.125)
					sum += want[i]
				}
				ScaledSoftmax(x, 0.125)
				for i := range x {
					if w := want[i] / sum; math.Abs(float64(x[i])-w) > 1e-5*w+1e-30 {
						t.Fatalf("n=%d spread %g: softmax[%d] = %g, want %g", n, spread, i, x[i], w)
					}
				}
			}
		}
		x := []float32{1, 2, 3, -1000}
		Softmax(x)
		for i, w := range []float64{0.09003057, 0.24472847, 0.66524096, 0} {
			if math.Abs(float64(x[i])-w) > 1e-6 {
				t.Errorf("Softmax[%d] = %g, want %g", i, x[i], w)
			}
		}
	})
}

func TestSiLUMul(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(14, 14))
		special := []float32{0, 1, -1, 87, -87, 89, -89, 100, -100, 1e4, -1e4, 1e-20, -1e-20}
		for _, n := range append(opLengths, len(special)) {
			g := randFloats(rng, n)
			for i := range g {
				g[i] *= 20
			}
			if n == len(special) {
				copy(g, special)
			}
			up := randFloats(rng, n)
			g0 := append([]float32(nil), g...)
			SiLUMul(g, up)
			for i, v := range g0 {
				want := float64(v) / (1 + math.Exp(-float64(v))) * float64(up[i])
				if math.Abs(float64(g[i])-want) > 1e-6*math.Abs(want)+1e-30 {
					t.Fatalf("n=%d: silu(%g)·%g = %g, want %g", n, v, up[i], g[i], want)
				}
			}
		}
	})
}

// TestLargest puts the largest value at every position of slices of
// every length up to 11 (each of the four running maxima of the Go loop,
// and the tail) and around the vector kernel's 32, among negative values,
// with a NaN that must be passed over.
func TestLargest(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		if got := active.largest(nil); !math.IsInf(float64(got), -1) {
			t.Errorf("largest(nil) = %g, want -Inf", got)
		}
		nan := float32(math.NaN())
		if got := active.largest(make([]float32, 40)); got != 0 {
			t.Errorf("largest(zeros) = %g, want 0", got)
		}
		for _, n := range []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 31, 32, 33, 63, 64, 65, 100} {
			for at := range n {
				x := make([]float32, n)
				for i := range x {
					x[i] = -float32(i + 2)
				}
				x[at] = -0.5
				for _, d := range []int{1, 32} { // a NaN next to it, and one in its lane after it
					if i := (at + d) % n; i != at {
						x[i] = nan
					}
				}
				if got := active.largest(x); got != -0.5 {
					t.Fatalf("largest(%v) = %g, want -0.5", x, got)
				}
			}
			x := make([]float32, n)
			for i := range x {
				x[i] = nan
			}
			if got := active.largest(x); !math.IsInf(float64(got), -1) {
				t.Errorf("largest of %d NaNs = %g, want -Inf", n, got)
			}
		}
	})
}
