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
	p.MatMuls([][]float32{y}, x, []Matrix{w}, n)
}

// maxProducts is the most matrices one MatMuls call takes.
const maxProducts = 3

// MatMuls computes ys[i] = x·ws[i]ᵀ as MatMul does, for up to 3 matrices
// of the same width that share the input (a layer's query, key and value
// projections), in one pass over all their rows: the workers are handed
// the work once rather than once per matrix, and a core that finishes
// its share early takes tiles of whichever matrix is left.
func (p *Pool) MatMuls(ys [][]float32, x []float32, ws []Matrix, n int) {
	if len(ys) != len(ws) || len(ws) > maxProducts {
		panic("kernels: MatMuls takes up to 3 matrices and one output for each")
	}
	m := &p.mm
	*m = matmulTask{pool: p, impl: active, x: x, n: n}
	defer func() { *m = matmulTask{} }()
	cols, q8 := 0, false
	for i, w := range ws {
		if i > 0 && w.Cols != ws[0].Cols {
			panic("kernels: MatMuls of matrices of different widths")
		}
		if !matMulArgs(ys[i], x, w, n) {
			continue
		}
		t := max(1, w.Rows/4)
		m.parts[m.nparts] = matmulPart{y: ys[i], w: w, first: m.tiles, tiles: t}
		m.nparts++
		m.tiles += t
		cols, q8 = w.Cols, q8 || w.DType == Q8_0
	}
	if m.nparts == 0 {
		return
	}
	// As many chunks as workers, or fewer where a chunk would have less
	// than minParallelWork, of equal size: each is one Parallel grain.
	chunks := min(p.threads, (m.tiles*4*n*cols+minParallelWork-1)/minParallelWork)
	per := (m.tiles + chunks - 1) / chunks
	for i := range p.tiles {
		lo := min(i*per, m.tiles)
		p.tiles[i].set(lo, min(lo+per, m.tiles))
	}
	m.claim = (minClaimWork + 4*n*cols - 1) / (4 * n * cols)
	if q8 && active.q8Acts != nil && n <= active.q8ActTokens {
		// Quantized once here for all workers.
		if need := q8ActFloats(n, cols); cap(p.acts) < need {
			p.acts = make([]float32, need)
		}
		m.xq = p.acts[:q8ActFloats(n, cols)]
		active.q8Acts(m.xq, x, n, cols)
	}
	p.Parallel(m.tiles, per, p.mmRun)
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
		w.Interleaved && !CanInterleave(w) {
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

// matmulTask holds the arguments of the MatMuls in progress. It lives in
// the Pool, and its run method value is made once in NewPool, so that
// Parallel gets a function without a per-call closure allocation.
type matmulTask struct {
	pool   *Pool
	impl   *impl
	x      []float32
	n      int
	parts  [maxProducts]matmulPart
	nparts int
	tiles  int       // tiles of all parts
	claim  int       // the fewest tiles a worker takes from a range at a time
	xq     []float32 // x quantized for a Q8_0 decode tile (see q8act.go), or nil
}

// matmulPart is one matrix of a MatMuls call: tiles [first, first+tiles)
// of the task, 4 rows each (Rows/4, at least 1).
type matmulPart struct {
	y            []float32
	w            Matrix
	first, tiles int
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

// rows computes tiles [lo, hi), which may span parts. The last tile of a
// part also takes the Rows%4 rows after it, so every range but that of a
// matrix with under 4 rows has at least 4 rows.
func (m *matmulTask) rows(worker, lo, hi int) {
	for i := range m.nparts {
		pt := &m.parts[i]
		plo, phi := max(lo, pt.first), min(hi, pt.first+pt.tiles)
		if plo >= phi {
			continue
		}
		rlo, rhi := 4*(plo-pt.first), 4*(phi-pt.first)
		if phi == pt.first+pt.tiles {
			rhi = pt.w.Rows
		}
		m.impl.matmulRows(pt.y, m.x, pt.w, m.n, rlo, rhi, m.pool.Scratch(worker, matmulScratch(pt.w.Cols)), m.xq)
	}
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
		w.decodeRow(row, r, goRowDecoder)
		for t := range n {
			var s float32
			for c, v := range row {
				s += x[t*w.Cols+c] * v
			}
			y[t*w.Rows+r] = s
		}
	}
}
