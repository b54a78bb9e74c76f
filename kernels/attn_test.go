package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// stridedShapes are the (n, rows, cols) shapes of the DotRows and AxpyRows
// tests: every tile and token remainder, columns with and without a tail
// of either vector width, and attention's own shapes (3 query heads per
// KV head, 64-wide heads, 16-position cache blocks).
var stridedShapes = [][3]int{
	{1, 1, 1}, {1, 4, 8}, {2, 5, 16}, {3, 16, 64}, {3, 17, 64}, {4, 7, 33}, {6, 9, 48},
	{7, 13, 100}, {12, 3, 128}, {13, 33, 17}, {1, 512, 64}, {5, 4, 5},
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
			EncodeF16(x16, randFloats(rng, rows*xs))
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
// against the bit patterns numpy's float16 conversion gives.
func TestEncodeF16(t *testing.T) {
	src := []float32{1, -2.5, 65504, 70000, 1e-8, 6e-5, float32(math.Inf(-1)), 0.1}
	want := []uint16{0x3c00, 0xc100, 0x7bff, 0x7c00, 0x0000, 0x03ef, 0xfc00, 0x2e66}
	dst := make([]uint16, len(src))
	EncodeF16(dst, src)
	for i, v := range src {
		if dst[i] != want[i] {
			t.Errorf("EncodeF16(%g) = %#04x, want %#04x", v, dst[i], want[i])
		}
	}
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
// every length up to 11 (each of the four running maxima, and the tail),
// among negative values, with a NaN that must be passed over.
func TestLargest(t *testing.T) {
	if got := largest(nil); !math.IsInf(float64(got), -1) {
		t.Errorf("largest(nil) = %g, want -Inf", got)
	}
	for n := 1; n <= 11; n++ {
		for at := range n {
			x := make([]float32, n)
			for i := range x {
				x[i] = -float32(i + 2)
			}
			x[at] = -0.5
			if nan := (at + 1) % n; nan != at {
				x[nan] = float32(math.NaN())
			}
			if got := largest(x); got != -0.5 {
				t.Errorf("largest(%v) = %g, want -0.5", x, got)
			}
		}
	}
}
