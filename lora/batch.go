package lora

import (
	"fmt"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// Batch groups the tokens of one forward step by adapter and adds their
// LoRA deltas to the projections' outputs. It implements model.Delta.
//
// Sequences are added in batch order with Add; consecutive sequences with
// the same adapter form one run, so that adapter's weights are read once
// per projection for all their tokens. A Batch is reused from step to step
// (Reset) and allocates nothing in AddDelta once its scratch space has
// grown to the largest batch. It must be used from one goroutine at a time.
type Batch struct {
	pool   *kernels.Pool
	runs   []run      // consecutive tokens sharing an adapter (nil: the base model), in batch order
	tokens int        // tokens added since Reset
	need   int        // Σ tokens·MaxRank over the runs with an adapter
	tmp    []float32  // scratch for x·Aᵀ of every run, kept across steps
	work   []runDelta // the runs of the AddDelta in progress that have its projection
	x, y   []float32  // the AddDelta in progress's operands, for runsFn

	// The expand step of the current run, read by the pool's workers
	// through expandFn (bound once in NewBatch so AddDelta allocates no
	// closure).
	cur      expandArgs
	expandFn func(worker, lo, hi int)
	runsFn   func(worker, lo, hi int) // addRuns, bound once like expandFn
}

// run is a stretch of consecutive tokens that share an adapter.
type run struct {
	adapter *Adapter // nil for the base model
	start   int      // first token of the run in the batch
	n       int      // tokens in the run
}

// expandArgs are the operands of one run's expand step.
type expandArgs struct {
	y    []float32 // [n, out]: the run's rows of the projection output
	tmp  []float32 // [n, rank]: scale·(x·Aᵀ)
	bt   kernels.Matrix
	n    int
	rank int
}

var _ model.Delta = (*Batch)(nil)

// NewBatch returns an empty Batch that runs its matrix products on pool.
func NewBatch(pool *kernels.Pool) *Batch {
	b := &Batch{pool: pool}
	b.expandFn = b.expand
	b.runsFn = b.addRuns
	return b
}

// Reset empties the batch for the next step, keeping its scratch space.
func (b *Batch) Reset() {
	clear(b.runs) // drop the adapter pointers
	b.runs = b.runs[:0]
	b.tokens, b.need = 0, 0
}

// Tokens returns the number of tokens added since Reset.
func (b *Batch) Tokens() int { return b.tokens }

// Add appends one sequence's tokens to the batch, in batch order; a nil
// adapter means the base model (no delta for those tokens).
func (b *Batch) Add(a *Adapter, tokens int) {
	if tokens < 0 {
		panic(fmt.Sprintf("lora: Batch.Add of %d tokens", tokens))
	}
	if tokens == 0 {
		return
	}
	if n := len(b.runs); n > 0 && b.runs[n-1].adapter == a {
		b.runs[n-1].n += tokens
	} else {
		b.runs = append(b.runs, run{adapter: a, start: b.tokens, n: tokens})
	}
	b.tokens += tokens
	if a != nil {
		// AddDelta keeps every run's x·Aᵀ at once; grow the scratch
		// now, with room to spare, rather than in the middle of a step.
		if b.need += tokens * a.MaxRank; cap(b.tmp) < b.need {
			b.tmp = make([]float32, 2*b.need)
		}
	}
}

// AddDelta adds the LoRA delta of projection m in the given layer to y:
// for every run whose adapter has a Pair there, and every token t of the
// run,
//
//	y[t] += Scale · (x[t]·Aᵀ)·BT
//
// x holds the projection's input for all the batch's tokens (Tokens rows
// of the input width) and y its output (Tokens rows of the output width).
// Rows of base-model tokens and of adapters without this projection are
// left as they are; x is not changed.
//
// A large run (one adapter for the whole batch, or a prompt) has its
// products split over the pool's workers. Small runs, as when each
// decoding sequence has its own adapter, are dealt out whole to the
// workers instead: their products are too small to split, and they write
// disjoint rows of y.
func (b *Batch) AddDelta(y, x []float32, layer int, m model.Module) {
	b.work = b.work[:0]
	need := 0
	for _, r := range b.runs {
		if r.adapter == nil {
			continue
		}
		p := r.adapter.Pair(layer, m)
		if p == nil {
			continue
		}
		in, out := p.A.Cols, p.BT.Cols
		if end := r.start + r.n; len(x) < end*in || len(y) < end*out {
			panic(fmt.Sprintf("lora: AddDelta(%d, %v): x has %d values and y %d, the batch's %d tokens need %d and %d",
				layer, m, len(x), len(y), b.tokens, b.tokens*in, b.tokens*out))
		}
		b.work = append(b.work, runDelta{run: r, pair: p, tmp: need})
		need += r.n * p.Rank
	}
	if len(b.work) == 0 {
		return
	}
	if cap(b.tmp) < need {
		b.tmp = make([]float32, need)
	}
	b.x, b.y = x, y
	small := b.work[:0] // the runs to deal out, in place of the work list
	for _, d := range b.work {
		if len(b.work) == 1 || d.n*d.pair.Rank*(d.pair.A.Cols+d.pair.BT.Cols) >= splitWork {
			b.splitRun(d)
		} else {
			small = append(small, d)
		}
	}
	b.work = small
	b.pool.Parallel(len(b.work), 1, b.runsFn)
	b.x, b.y = nil, nil
}

// splitWork is the number of multiply-adds from which a run's delta is
// split over the workers rather than given to one of them: a few tokens
// of a rank-8 adapter on a 2048-wide projection.
const splitWork = 1 << 17

// runDelta is one run's share of an AddDelta: its adapter's Pair for the
// projection and the offset of its x·Aᵀ rows in Batch.tmp.
type runDelta struct {
	run
	pair *Pair
	tmp  int
}

// operands returns the run's rows of x and y and its scratch rows.
func (b *Batch) operands(d runDelta) (xs, ys, tmp []float32) {
	in, out, rank := d.pair.A.Cols, d.pair.BT.Cols, d.pair.Rank
	end := d.start + d.n
	return b.x[d.start*in : end*in], b.y[d.start*out : end*out], b.tmp[d.tmp : d.tmp+d.n*rank]
}

// splitRun adds one run's delta with both products split over the
// workers.
func (b *Batch) splitRun(d runDelta) {
	p := d.pair
	xs, ys, tmp := b.operands(d)
	// Shrink: tmp[t, k] = x[t] · A[k], then fold in the scale.
	b.pool.MatMul(tmp, xs, p.A, d.n)
	kernels.Scale(tmp, p.Scale)
	// Expand: y[t, j] += Σ_k tmp[t, k] · BT[k, j], columns split over
	// the workers (each output element has one writer).
	out := p.BT.Cols
	b.cur = expandArgs{y: ys, tmp: tmp, bt: p.BT, n: d.n, rank: p.Rank}
	grain := 64
	if d.n*p.Rank*out < 1<<15 { // too little work to be worth the hand-off
		grain = out
	}
	b.pool.Parallel(out, grain, b.expandFn)
	b.cur = expandArgs{}
}

// addRuns adds the deltas of runs b.work[lo:hi] on worker w alone.
func (b *Batch) addRuns(w, lo, hi int) {
	for _, d := range b.work[lo:hi] {
		p := d.pair
		xs, ys, tmp := b.operands(d)
		b.pool.MatMulOn(w, tmp, xs, p.A, d.n)
		kernels.Scale(tmp, p.Scale)
		out := p.BT.Cols
		for t := range d.n {
			for k := range p.Rank {
				kernels.AxpyRow(ys[t*out:(t+1)*out], tmp[t*p.Rank+k], p.BT, k)
			}
		}
	}
}

// expand computes the expand step of b.cur for output columns [lo, hi).
func (b *Batch) expand(_, lo, hi int) {
	c := &b.cur
	out := c.bt.Cols
	for t := range c.n {
		yt := c.y[t*out+lo : t*out+hi]
		for k := range c.rank {
			kernels.AxpyRow(yt, c.tmp[t*c.rank+k], rowSpan(c.bt, k, lo, hi), 0)
		}
	}
}

// rowSpan returns columns [lo, hi) of row r of m as a one-row matrix, so
// that kernels.AxpyRow can work on a worker's share of the columns. m is
// F32, F16 or BF16 (Adapter.Validate refuses a Q8_0 BT).
func rowSpan(m kernels.Matrix, r, lo, hi int) kernels.Matrix {
	es := m.DType.RowBytes(1)
	row := m.RowData(r)
	return kernels.Matrix{DType: m.DType, Rows: 1, Cols: hi - lo, Data: row[lo*es : hi*es]}
}
