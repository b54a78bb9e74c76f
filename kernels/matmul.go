package kernels

import "sync/atomic"

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
	// As many chunks as workers, or fewer where a chunk would have less
	// than minParallelWork, of equal size: each is one Parallel grain.
	chunks := min(p.threads, (tiles*4*n*w.Cols+minParallelWork-1)/minParallelWork)
	per := (tiles + chunks - 1) / chunks
	for i := range p.tiles {
		lo := min(i*per, tiles)
		p.tiles[i].set(lo, min(lo+per, tiles))
	}
	p.mm = matmulTask{pool: p, impl: active, y: y, x: x, w: w, n: n, tiles: tiles,
		claim: (minClaimWork + 4*n*w.Cols - 1) / (4 * n * w.Cols)}
	if w.DType == Q8_0 && active.q8Acts != nil {
		// Quantized once here for all workers; q8Acts declines the
		// token counts its tile does not take.
		if need := q8ActFloats(n, w.Cols); cap(p.acts) < need {
			p.acts = make([]float32, need)
		}
		if active.q8Acts(p.acts[:cap(p.acts)], x, n, w.Cols) {
			p.mm.xq = p.acts
		}
	}
	p.Parallel(tiles, per, p.mmRun)
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
	active.matmulRows(y, x, m, n, 0, m.Rows, p.Scratch(w, matmulScratch(m.Cols)), nil)
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

// minParallelWork is the fewest multiply-adds worth a MatMul chunk of
// their own: in decode, 16K of them stream 32 KB of F16 weights, a few
// microseconds, against about 0.2 µs to hand a chunk to a worker.
const minParallelWork = 1 << 14

// minClaimWork is the fewest multiply-adds a MatMul worker takes from a
// range at a time once the range is nearly done (see matmulTask.run).
const minClaimWork = 1 << 13

// matmulTask holds the arguments of the MatMul in progress. It lives in
// the Pool, and its run method value is made once in NewPool, so that
// Parallel gets a function without a per-call closure allocation.
type matmulTask struct {
	pool  *Pool
	impl  *impl
	y, x  []float32
	w     Matrix
	n     int
	tiles int       // tiles of 4 rows: Rows/4, at least 1
	claim int       // the fewest tiles a worker takes from a range at a time
	xq    []float32 // x quantized for a Q8_0 decode tile (see q8act.go), or nil
}

// run computes the tiles of the worker's range in Pool.tiles (Parallel's
// lo and hi are the same tiles), and then takes half of what is left of
// the fullest other range, until every range is empty.
//
// Both halves of a matrix are the same bytes, yet in decode one core
// would finish its half 10-15% before the other, call by call, and wait
// (the two cores' reads do not come back from memory at the same rate):
// 1.7 ms of idle core per 15 ms step of the 135M model. Taking work in
// claims that shrink as a range empties (a quarter of what is left, at
// least claim tiles) keeps each core's reads one forward run, and lets
// the core that finishes first take the other's last tiles.
func (m *matmulTask) run(worker, _, _ int) {
	for lo, hi, ok := m.next(worker); ok; lo, hi, ok = m.next(worker) {
		m.rows(worker, lo, hi)
	}
}

// next returns the worker's next tiles [lo, hi): from the front of its
// own range, or, that empty, from what it steals; ok is false when every
// range is empty.
func (m *matmulTask) next(worker int) (lo, hi int, ok bool) {
	for {
		if lo, hi, ok = m.pool.tiles[worker].takeFront(m.claim); ok || !m.steal(worker) {
			return lo, hi, ok
		}
	}
}

// steal moves the back half of the fullest other range into the worker's
// own, empty one, and reports whether there was anything to move.
func (m *matmulTask) steal(worker int) bool {
	for {
		victim, most := -1, 0
		for i := range m.pool.tiles {
			if lo, hi := m.pool.tiles[i].get(); i != worker && hi-lo > most {
				victim, most = i, hi-lo
			}
		}
		if victim < 0 {
			return false
		}
		if lo, hi, ok := m.pool.tiles[victim].takeBack(); ok {
			m.pool.tiles[worker].set(lo, hi)
			return true
		}
	}
}

// rows computes tiles [lo, hi). The last tile also takes the Rows%4 rows
// after it, so every range but that of a matrix with under 4 rows has at
// least 4 rows.
func (m *matmulTask) rows(worker, lo, hi int) {
	rlo, rhi := 4*lo, 4*hi
	if hi == m.tiles {
		rhi = m.w.Rows
	}
	m.impl.matmulRows(m.y, m.x, m.w, m.n, rlo, rhi, m.pool.Scratch(worker, matmulScratch(m.w.Cols)), m.xq)
}

// tileRange is a range of tiles [lo, hi) not yet taken, packed in one
// word so that its owner, taking from the front, and other workers,
// taking from the back, change it with one compare-and-swap. It fills a
// cache line: each worker's range is written mostly by that worker.
type tileRange struct {
	v atomic.Uint64 // lo<<32 | hi
	_ [56]byte
}

func (r *tileRange) get() (lo, hi int) {
	v := r.v.Load()
	return int(v >> 32), int(uint32(v))
}

func (r *tileRange) set(lo, hi int) { r.v.Store(uint64(lo)<<32 | uint64(uint32(hi))) }

// takeFront takes a quarter of the range, at least claim tiles (or all
// that is left), from its front.
func (r *tileRange) takeFront(claim int) (lo, hi int, ok bool) {
	for {
		v := r.v.Load()
		lo, hi = int(v>>32), int(uint32(v))
		if lo >= hi {
			return 0, 0, false
		}
		end := min(lo+max(claim, (hi-lo)/4), hi)
		if r.v.CompareAndSwap(v, uint64(end)<<32|uint64(uint32(hi))) {
			return lo, end, true
		}
	}
}

// takeBack takes the back half of the range, rounded up.
func (r *tileRange) takeBack() (lo, hi int, ok bool) {
	for {
		v := r.v.Load()
		lo, hi = int(v>>32), int(uint32(v))
		if lo >= hi {
			return 0, 0, false
		}
		mid := hi - (hi-lo+1)/2
		if r.v.CompareAndSwap(v, uint64(lo)<<32|uint64(uint32(mid))) {
			return mid, hi, true
		}
	}
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
