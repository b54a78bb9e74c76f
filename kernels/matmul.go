package kernels

// MatMul computes y = x·Wᵀ for n tokens: y[t*w.Rows+r] = Σ_c x[t*w.Cols+c]·W[r,c].
// x holds n rows of w.Cols values and y receives n rows of w.Rows values;
// y is overwritten. The rows of W are split across the pool's workers and
// each row is read once for all n tokens, so a batch shares one pass over
// the weights.
func (p *Pool) MatMul(y, x []float32, w Matrix, n int) {
	if len(x) < n*w.Cols || len(y) < n*w.Rows {
		panic("kernels: MatMul buffer too small")
	}
	p.Parallel(w.Rows, 8, func(worker, lo, hi int) {
		matmulRows(y, x, w, n, lo, hi, p.Scratch(worker, w.Cols))
	})
}

// matmulRows computes output rows [lo, hi) of MatMul for all n tokens.
// row is scratch space for one dequantized weight row.
func matmulRows(y, x []float32, w Matrix, n, lo, hi int, row []float32) {
	cols, rows := w.Cols, w.Rows
	for r := lo; r < hi; r++ {
		if w.DType == F32 {
			row = AsF32(w.RowData(r))
		} else {
			w.Row(r, row)
		}
		for t := range n {
			y[t*rows+r] = Dot(x[t*cols:(t+1)*cols], row)
		}
	}
}

// MatMulRef is the plain reference for MatMul: one goroutine, every row
// decoded to float32, every dot product summed in order. Tests compare the
// fast paths against it.
func MatMulRef(y, x []float32, w Matrix, n int) {
	row := make([]float32, w.Cols)
	for r := range w.Rows {
		w.Row(r, row)
		for t := range n {
			var s float32
			for c, v := range row {
				s += x[t*w.Cols+c] * v
			}
			y[t*w.Rows+r] = s
		}
	}
}
