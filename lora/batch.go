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
// grown to the largest run. It must be used from one goroutine at a time.
type Batch struct {
	pool   *kernels.Pool
	runs   []run     // consecutive tokens sharing an adapter (nil: the base model), in batch order
	tokens int       // tokens added since Reset
	tmp    []float32 // [tokens of a run, rank] scratch for x·Aᵀ, kept across steps

	// The expand step of the current run, read by the pool's workers
	// through expandFn (bound once in NewBatch so AddDelta allocates no
	// closure).
	cur      expandArgs
	expandFn func(worker, lo, hi int)
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
	return b
}

// Reset empties the batch for the next step, keeping its scratch space.
func (b *Batch) Reset() {
	clear(b.runs) // drop the adapter pointers
	b.runs = b.runs[:0]
	b.tokens = 0
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
	if r := &b.runs[len(b.runs)-1]; r.adapter != nil {
		if need := r.n * r.adapter.MaxRank; cap(b.tmp) < need {
			b.tmp = make([]float32, need)
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
func (b *Batch) AddDelta(y, x []float32, layer int, m model.Module) {
	for _, r := range b.runs {
		if r.adapter == nil {
			continue
		}
		p := r.adapter.Pair(layer, m)
		if p == nil {
			continue
		}
		in, out, rank := p.A.Cols, p.BT.Cols, p.Rank
		end := r.start + r.n
		if len(x) < end*in || len(y) < end*out {
			panic(fmt.Sprintf("lora: AddDelta(%d, %v): x has %d values and y %d, the batch's %d tokens need %d and %d",
				layer, m, len(x), len(y), b.tokens, b.tokens*in, b.tokens*out))
		}
		xs := x[r.start*in : end*in]
		ys := y[r.start*out : end*out]

		// Shrink: tmp[t, k] = x[t] · A[k], then fold in the scale. Add
		// sized tmp for the run already unless the adapter's MaxRank
		// understates its ranks.
		if cap(b.tmp) < r.n*rank {
			b.tmp = make([]float32, r.n*rank)
		}
		tmp := b.tmp[:r.n*rank]
		b.pool.MatMul(tmp, xs, p.A, r.n)
		for i := range tmp {
			tmp[i] *= p.Scale
		}

		// Expand: y[t, j] += Σ_k tmp[t, k] · BT[k, j], columns split over
		// the workers (each output element has one writer).
		b.cur = expandArgs{y: ys, tmp: tmp, bt: p.BT, n: r.n, rank: rank}
		grain := 64
		if r.n*rank*out < 1<<15 { // too little work to be worth the hand-off
			grain = out
		}
		b.pool.Parallel(out, grain, b.expandFn)
		b.cur = expandArgs{}
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
