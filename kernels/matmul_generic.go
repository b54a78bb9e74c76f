package kernels

// matmulRowsGo is the pure-Go MatMul: output rows [lo, hi), one weight row
// at a time, decoded into scratch and dotted with every token.
func matmulRowsGo(y, x []float32, w Matrix, n, lo, hi int, scratch, _ []float32) {
	matmulRowsDot(y, x, w, n, lo, hi, scratch, goRowDecoder, dotGo)
}

// matmulRowsDot computes output rows [lo, hi) of MatMul with the given row
// decoder and dot product of an impl. Row-major F32 rows are
// used in place.
func matmulRowsDot(y, x []float32, w Matrix, n, lo, hi int, scratch []float32,
	dec rowDecoder, dot func(a, b []float32) float32) {
	cols, rows := w.Cols, w.Rows
	row := scratch[:cols]
	for r := lo; r < hi; r++ {
		if w.DType == F32 && !w.Interleaved {
			row = AsF32(w.RowData(r))
		} else {
			w.decodeRow(row, r, dec)
		}
		for t := range n {
			y[t*rows+r] = dot(x[t*cols:(t+1)*cols], row)
		}
	}
}
