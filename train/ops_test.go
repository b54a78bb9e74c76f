package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/switchyard-ai/switchyard/kernels"
)

// TestMatmulBackwardX compares the blocked MatMul path with the row-loop
// reference on odd shapes and every stored dtype.
func TestMatmulBackwardX(t *testing.T) {
	pool := kernels.NewPool(2)
	defer pool.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, sh := range [][3]int{{16, 37, 5}, {40, 64, 1000}, {17, 5000, 260}, {33, 64, 96}} {
		n, in, out := sh[0], sh[1], sh[2]
		wv := make([]float32, out*in)
		for i := range wv {
			wv[i] = float32(rng.NormFloat64())
		}
		dy := make([]float32, n*out)
		for i := range dy {
			dy[i] = float32(rng.NormFloat64())
		}
		for _, dt := range []kernels.DType{kernels.F32, kernels.BF16, kernels.F16} {
			var data []byte
			for r := range out {
				data = kernels.EncodeRow(data, dt, wv[r*in:(r+1)*in])
			}
			w := kernels.Matrix{DType: dt, Rows: out, Cols: in, Data: data}
			got, want := make([]float32, n*in), make([]float32, n*in)
			var sc bwScratch
			matmulBackwardX(pool, &sc, got, dy, w, n)
			matmulBackwardXRows(pool, want, dy, w, n)
			for i := range got {
				if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*math.Sqrt(float64(out)) {
					t.Fatalf("%v n=%d in=%d out=%d: dx[%d] = %g, want %g", dt, n, in, out, i, got[i], want[i])
				}
			}
		}
	}
}
