package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// opLengths has every tail length of both vector widths, and long rows.
var opLengths = []int{0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 576, 4095, 4096, 4097}

func TestDot(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		for _, n := range opLengths {
			a, b := randFloats(rng, n), randFloats(rng, n+3)
			var want, bound float64
			for i := range a {
				want += float64(a[i]) * float64(b[i])
				bound += math.Abs(float64(a[i]) * float64(b[i]))
			}
			if got := Dot(a, b); math.Abs(float64(got)-want) > 1e-5*bound {
				t.Errorf("n=%d: Dot = %g, want %g", n, got, want)
			}
		}
	})
}

func TestAxpy(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6, 6))
		for _, n := range opLengths {
			x, y := randFloats(rng, n), randFloats(rng, n+3)
			y0 := append([]float32(nil), y...)
			alpha := 2*rng.Float32() - 1
			Axpy(alpha, x, y)
			for i := range y {
				want := float64(y0[i])
				if i < n {
					want += float64(alpha) * float64(x[i])
				}
				if math.Abs(float64(y[i])-want) > 1e-6*(math.Abs(float64(y0[i]))+1) {
					t.Fatalf("n=%d: y[%d] = %g, want %g", n, i, y[i], want)
				}
			}
		}
	})
}

func TestAxpyRow(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 7))
		for _, dt := range []DType{F32, F16, BF16, Q8_0} {
			for _, cols := range opLengths {
				if dt == Q8_0 {
					cols = cols / Q8_0Block * Q8_0Block
				}
				m := randMatrix(rng, dt, 3, cols)
				row := make([]float32, cols)
				decodeRowGo(row, dt, m.RowData(2))
				y := randFloats(rng, cols+2)
				y0 := append([]float32(nil), y...)
				alpha := 2*rng.Float32() - 1
				AxpyRow(y, alpha, m, 2)
				for i := range y {
					want := float64(y0[i])
					if i < cols {
						want += float64(alpha) * float64(row[i])
					}
					if math.Abs(float64(y[i])-want) > 1e-6*(math.Abs(float64(y0[i]))+1) {
						t.Fatalf("%v cols=%d: y[%d] = %g, want %g", dt, cols, i, y[i], want)
					}
				}
			}
		}
	})
}

func TestRMSNorm(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(8, 8))
		for _, n := range opLengths[1:] {
			x, w := randFloats(rng, n), randFloats(rng, n)
			want := make([]float32, n)
			rmsNormGo(want, x, w, 1e-5)
			got := make([]float32, n)
			RMSNorm(got, x, w, 1e-5)
			RMSNorm(x, x, w, 1e-5) // in place
			for i := range got {
				if math.Abs(float64(got[i]-want[i])) > 1e-6*math.Abs(float64(want[i])) || x[i] != got[i] {
					t.Fatalf("n=%d: out[%d] = %g (in place %g), want %g", n, i, got[i], x[i], want[i])
				}
			}
		}
	})
}
