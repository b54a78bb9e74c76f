package kernels

//go:generate go -C _asm run . -out ../matmul_amd64.s -stubs ../matmul_stubs_amd64.go -pkg kernels matmul
//go:generate go -C _asm run . -out ../ops_amd64.s -stubs ../ops_stubs_amd64.go -pkg kernels ops
//go:generate go -C _asm run . -out ../cpu_amd64.s -stubs ../cpu_stubs_amd64.go -pkg kernels cpu

// MatMul computes y = x·Wᵀ for n tokens: y[t*w.Rows+r] = Σ_c x[t*w.Cols+c]·W[r,c].
// x holds n rows of w.Cols values and y receives n rows of w.Rows values;
// y is overwritten. W stays in its stored type and is converted inside the
// kernels. The rows of W are split across the pool's workers in tiles of
// 4, and each row is streamed from memory once for all n tokens, so a
// batch shares one pass over the weights. MatMul allocates nothing once
// the pool's scratch buffers have grown to fit w.Cols.
func (p *Pool) MatMul(y, x []float32, w Matrix, n int) {
	if !matMulArgs(y, x, w, n) {
		return
	}
	tiles := max(1, w.Rows/4)
	grain := max(1, minParallelWork/(4*n*w.Cols))
	p.mm = matmulTask{pool: p, impl: active, y: y, x: x, w: w, n: n, tiles: tiles}
	p.Parallel(tiles, grain, p.mmRun)
	p.mm = matmulTask{}
}

// MatMulOn computes MatMul on the calling goroutine alone, with worker
// w's scratch space. It is for the function run by Parallel, when each
// worker takes whole products of its own (such as the LoRA deltas of
// different adapters); w is the worker index Parallel passed.
func (p *Pool) MatMulOn(w int, y, x []float32, m Matrix, n int) {
	if !matMulArgs(y, x, m, n) {
		return
	}
	active.matmulRows(y, x, m, n, 0, m.Rows, p.Scratch(w, matmulScratch(m.Cols)))
}

// matMulArgs panics on buffers or a matrix that MatMul cannot take, and
// reports whether there is anything to compute (clearing y when the
// matrix has no columns).
func matMulArgs(y, x []float32, w Matrix, n int) bool {
	if len(x) < n*w.Cols || len(y) < n*w.Rows {
		panic("kernels: MatMul buffer too small")
	}
	if len(w.Data) < w.Rows*w.DType.RowBytes(w.Cols) || int(w.DType) >= numDTypes || w.Cols%w.DType.BlockSize() != 0 ||
		w.Interleaved && !canInterleave(w) {
		panic("kernels: MatMul of a malformed " + w.DType.String() + " matrix")
	}
	if n <= 0 || w.Rows == 0 {
		return false
	}
	if w.Cols == 0 {
		clear(y[:n*w.Rows])
		return false
	}
	return true
}

// minParallelWork is the number of multiply-adds below which a MatMul
// chunk is not worth handing to another worker.
const minParallelWork = 1 << 16

// matmulTask holds the arguments of the MatMul in progress. It lives in
// the Pool, and its run method value is made once in NewPool, so that
// Parallel gets a function without a per-call closure allocation.
type matmulTask struct {
	pool  *Pool
	impl  *impl
	y, x  []float32
	w     Matrix
	n     int
	tiles int // tiles of 4 rows handed to Parallel: Rows/4, at least 1
}

// run computes the rows of tiles [lo, hi). The last chunk also takes the
// Rows%4 rows after the last whole tile, so every chunk but a lone one of
// a matrix with under 4 rows has at least 4 rows.
func (m *matmulTask) run(worker, lo, hi int) {
	rlo, rhi := 4*lo, 4*hi
	if hi == m.tiles {
		rhi = m.w.Rows
	}
	m.impl.matmulRows(m.y, m.x, m.w, m.n, rlo, rhi, m.pool.Scratch(worker, matmulScratch(m.w.Cols)))
}

// panelBytes bounds the float32 weight rows a MatMul worker converts at
// once in prefill, so that they stay in L2 while all tokens pass by.
const panelBytes = 128 << 10

// panelRows is the number of rows of cols values in one prefill panel: a
// multiple of 4, the tile height.
func panelRows(cols int) int { return max(4, panelBytes/(4*cols)/4*4) }

// matmulScratch is the scratch space a MatMul worker needs, in floats:
// one panel and the up to 3 rows that a short remainder adds to it.
func matmulScratch(cols int) int { return (panelRows(cols) + 3) * cols }

// MatMulRef is the plain reference for MatMul: one goroutine, every row
// decoded to float32, every dot product summed in order. Tests compare the
// fast paths against it.
func MatMulRef(y, x []float32, w Matrix, n int) {
	row := make([]float32, w.Cols)
	for r := range w.Rows {
		w.decodeRow(row, r, decodeUnitsGo)
		for t := range n {
			var s float32
			for c, v := range row {
				s += x[t*w.Cols+c] * v
			}
			y[t*w.Rows+r] = s
		}
	}
}
