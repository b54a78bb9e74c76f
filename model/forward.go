package model

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync/atomic"

	"github.com/switchyard-ai/switchyard/formats/gguf"
	"github.com/switchyard-ai/switchyard/kernels"
)

// Model is a loaded decoder-only transformer. Forward may be called from
// one goroutine at a time; the weights are read-only and may be shared
// with other users (a trainer) that do not call Forward concurrently.
type Model struct {
	Config  Config
	Weights Weights
	GGUF    *gguf.File // the file the model came from, when it was GGUF (for its tokenizer)

	// KVDType is how the KV caches made from now on store keys and
	// values: F32 or F16. Load picks F32 for a model whose projections
	// are all F32 and F16 for the rest (16-bit or quantised weights),
	// as vLLM's "auto" follows the model's dtype.
	KVDType kernels.DType

	pool    *kernels.Pool
	ownPool bool
	closers []io.Closer
	invFreq []float64 // RoPE inverse frequencies [HeadDim/2]
	scratch forwardScratch
	attn    attnTask                 // the attention in progress
	attnRun func(worker, lo, hi int) // attn.run, bound once in init
}

// forwardScratch holds the activations of one Forward call, grown to the
// largest batch seen and reused.
type forwardScratch struct {
	x      []float32 // residual stream [n, hidden]
	xn     []float32 // normalized input of the current block [n, hidden]
	q      []float32 // queries [n, heads*headDim]
	k, v   []float32 // keys, values [n, kvHeads*headDim]
	att    []float32 // attention output [n, heads*headDim]
	proj   []float32 // o_proj / down_proj output [n, hidden]
	gate   []float32 // [n, intermediate]
	up     []float32 // [n, intermediate]
	tokSeq []int32   // per token: its sequence's index in the batch
	tokPos []int32   // per token: its position in its sequence
	cos    []float32 // RoPE tables per token [n, headDim/2]
	sin    []float32
	part   []float32   // attention split in parts: per part, g output rows, g maxima, g sums
	last   []float32   // normalized rows that need logits [rows, hidden]
	logits []float32   // [rows, vocab]
	out    [][]float32 // Forward's result, one slice of logits per sequence
}

func (m *Model) init(pool *kernels.Pool) {
	m.pool = pool
	m.attnRun = m.attn.run
	m.invFreq = m.Config.InvFreq()
}

// Pool returns the worker pool the model runs its kernels on.
func (m *Model) Pool() *kernels.Pool { return m.pool }

// Close releases the model's memory-mapped files and the memory of its
// interleaved weights (and its pool, if Load made it). The model, and
// every matrix of its Weights, must not be used afterwards.
func (m *Model) Close() error {
	var errs []error
	for _, c := range m.closers {
		errs = append(errs, c.Close())
	}
	m.closers = nil
	if m.ownPool && m.pool != nil {
		m.pool.Close()
		m.pool = nil
	}
	return errors.Join(errs...)
}

// Seq is one sequence's share of a batch: the tokens it adds at the next
// positions of its cache.
type Seq struct {
	Cache     *Cache
	Tokens    []int
	AllLogits bool // return logits for every token, not only the last
}

// Forward runs the tokens of every sequence through the model in one
// batch, appends their keys and values to the sequences' caches and
// returns each sequence's logits: Vocab values for its last token, or
// len(Tokens)*Vocab with AllLogits. delta (nil for none) adds per-token
// corrections to every projection; it sees the batch's tokens in the
// order of seqs. Each cache must have room for its new positions (see
// Cache.Grow); caches may share a KVPool. The returned slices are valid
// until the next call.
func (m *Model) Forward(seqs []Seq, delta Delta) ([][]float32, error) {
	c := &m.Config
	n, rows, maxLen := 0, 0, 0
	for i, s := range seqs {
		if len(s.Tokens) == 0 {
			return nil, fmt.Errorf("model: sequence %d has no tokens", i)
		}
		if s.Cache.Len+len(s.Tokens) > s.Cache.Cap {
			return nil, fmt.Errorf("model: sequence %d needs %d positions, its cache holds %d (context length %d)",
				i, s.Cache.Len+len(s.Tokens), s.Cache.Cap, c.MaxPositions)
		}
		for _, t := range s.Tokens {
			if t < 0 || t >= c.Vocab {
				return nil, fmt.Errorf("model: token id %d is outside the vocabulary [0, %d)", t, c.Vocab)
			}
		}
		n += len(s.Tokens)
		maxLen = max(maxLen, s.Cache.Len+len(s.Tokens))
		if s.AllLogits {
			rows += len(s.Tokens)
		} else {
			rows++
		}
	}
	sc := m.grow(n, rows)

	// Embed tokens and build the RoPE tables of their positions.
	half := c.HeadDim / 2
	t := 0
	for i, s := range seqs {
		for j, id := range s.Tokens {
			m.Weights.Embed.Row(id, sc.x[t*c.Hidden:(t+1)*c.Hidden])
			sc.tokSeq[t], sc.tokPos[t] = int32(i), int32(s.Cache.Len+j)
			pos := float64(s.Cache.Len + j)
			for i, f := range m.invFreq {
				sin, cos := math.Sincos(pos * f)
				sc.cos[t*half+i], sc.sin[t*half+i] = float32(cos), float32(sin)
			}
			t++
		}
	}

	for l := range m.Weights.Layers {
		m.attention(l, seqs, n, maxLen, delta)
		m.mlp(l, n, delta)
	}
	for _, s := range seqs {
		s.Cache.Len += len(s.Tokens)
	}

	// Final norm and LM head, only for the rows that need logits.
	r, t := 0, 0
	for _, s := range seqs {
		from := t + len(s.Tokens) - 1
		if s.AllLogits {
			from = t
		}
		for ; from < t+len(s.Tokens); from++ {
			kernels.RMSNorm(sc.last[r*c.Hidden:(r+1)*c.Hidden], sc.x[from*c.Hidden:(from+1)*c.Hidden], m.Weights.Norm, c.RMSNormEps)
			r++
		}
		t += len(s.Tokens)
	}
	m.pool.MatMul(sc.logits, sc.last, m.Weights.Head, rows)
	if cap(sc.out) < len(seqs) {
		sc.out = make([][]float32, len(seqs))
	}
	out := sc.out[:len(seqs)]
	r = 0
	for i, s := range seqs {
		k := 1
		if s.AllLogits {
			k = len(s.Tokens)
		}
		out[i] = sc.logits[r*c.Vocab : (r+k)*c.Vocab]
		r += k
	}
	return out, nil
}

// project runs projections mods of layer l, which share the input x,
// over n tokens: ys[i] = x·Wᵀ + b + delta for projection mods[i]. The
// matrices go to the workers together (kernels.Pool.MatMuls).
func (m *Model) project(ys [][]float32, x []float32, l int, mods []Module, n int, delta Delta) {
	layer := &m.Weights.Layers[l]
	var ws [3]kernels.Matrix
	for i, mod := range mods {
		ws[i] = layer.Proj[mod]
	}
	m.pool.MatMuls(ys, x, ws[:len(mods)], n)
	for i, mod := range mods {
		y, w := ys[i], ws[i]
		if b := layer.Bias[mod]; b != nil {
			for t := range n {
				kernels.Axpy(1, b, y[t*w.Rows:(t+1)*w.Rows])
			}
		}
		if delta != nil {
			delta.AddDelta(y[:n*w.Rows], x[:n*w.Cols], l, mod)
		}
	}
}

// attention runs the attention block of layer l and adds its output to
// the residual stream. maxLen is the longest sequence after this step.
func (m *Model) attention(l int, seqs []Seq, n, maxLen int, delta Delta) {
	c := &m.Config
	sc := &m.scratch
	layer := &m.Weights.Layers[l]
	for t := range n {
		kernels.RMSNorm(sc.xn[t*c.Hidden:(t+1)*c.Hidden], sc.x[t*c.Hidden:(t+1)*c.Hidden], layer.AttnNorm, c.RMSNormEps)
	}
	m.project([][]float32{sc.q, sc.k, sc.v}, sc.xn, l, []Module{ModQ, ModK, ModV}, n, delta)

	qDim, kvDim, hd := c.Heads*c.HeadDim, c.KVHeads*c.HeadDim, c.HeadDim
	for t := range n {
		cos, sin := sc.cos[t*hd/2:(t+1)*hd/2], sc.sin[t*hd/2:(t+1)*hd/2]
		for h := range c.Heads {
			rope(sc.q[t*qDim+h*hd:t*qDim+(h+1)*hd], cos, sin)
		}
		for h := range c.KVHeads {
			rope(sc.k[t*kvDim+h*hd:t*kvDim+(h+1)*hd], cos, sin)
		}
	}

	// Append this step's keys and values to each sequence's cache, head
	// by head: values as rows, keys into their block's columns (see
	// KVPool).
	t := 0
	for _, s := range seqs {
		p := s.Cache.pool
		bt := p.blockTokens
		for j := range s.Tokens {
			r := s.Cache.row(s.Cache.Len + j)
			for h := range c.KVHeads {
				at := p.span(h, r/bt) + r%bt*hd // the value row of position r
				kc := p.span(h, r/bt) + r%bt    // its key column
				key, value := sc.k[t*kvDim+h*hd:t*kvDim+(h+1)*hd], sc.v[t*kvDim+h*hd:t*kvDim+(h+1)*hd]
				if p.dtype == kernels.F16 {
					kernels.EncodeF16(p.v16[l][at:at+hd], 1, value)
					kernels.EncodeF16(p.k16[l][kc:], bt, key)
				} else {
					copy(p.v[l][at:at+hd], value)
					for i, x := range key {
						p.k[l][kc+i*bt] = x
					}
				}
			}
			t++
		}
	}

	// Causal attention. A work item is one token and one KV head: the
	// query heads that share that KV head go through its keys and values
	// together, so each cached row is read once for all of them. Workers
	// take items from a shared counter, latest tokens (the longest
	// histories) first, so that both finish together however the causal
	// work is spread.
	//
	// With fewer items than two per worker (decoding one sequence), each
	// item's positions are cut into parts of whole blocks, computed as
	// separate items and merged after: ⌈2·threads/pairs⌉ parts, at least
	// two items per worker. At 512 positions, one sequence of
	// SmolLM2-135M on 2 workers took 1.16-1.23 ms of attention a step in
	// 6 items (2 parts), 1.24-1.25 in 3 (one worker waits), 1.24-1.34 in
	// 9 and 1.32-1.42 in 12, each part costing a set-up, a shorter run for
	// the prefetcher and a merge. One worker gains nothing from parts.
	group := c.Heads / c.KVHeads
	pairs := n * c.KVHeads
	threads := m.pool.Threads()
	parts := 1
	if threads > 1 && pairs < 2*threads {
		parts = max(min((2*threads+pairs-1)/pairs, maxLen/minPartPositions), 1)
	}
	if parts > 1 {
		fit := sc.part[:0]
		if need := pairs * parts * group * (hd + 2); cap(fit) < need {
			fit = make([]float32, need)
		}
		sc.part = fit[:pairs*parts*group*(hd+2)]
	}
	m.attn = attnTask{m: m, seqs: seqs, layer: l, parts: parts, items: int64(pairs * parts)}
	m.pool.Parallel(threads, 1, m.attnRun)
	m.attn = attnTask{}
	if parts > 1 {
		m.mergeParts(pairs, parts)
	}

	m.project([][]float32{sc.proj}, sc.att, l, []Module{ModO}, n, delta)
	kernels.Axpy(1, sc.proj[:n*c.Hidden], sc.x[:n*c.Hidden])
}

// attnTask is the attention of the layer in progress. It lives in the
// Model, and its run method value is bound once, so that a step hands the
// pool no new closure.
type attnTask struct {
	m     *Model
	seqs  []Seq
	layer int
	parts int          // parts of each (token, KV head) pair's positions
	items int64        // (token, KV head) pairs times parts
	next  atomic.Int64 // items taken so far
}

// minPartPositions is the fewest positions worth a part of their own.
const minPartPositions = 128

// run takes items until none is left.
func (a *attnTask) run(worker, _, _ int) {
	c, sc := &a.m.Config, &a.m.scratch
	group, hd := c.Heads/c.KVHeads, c.HeadDim
	qDim := c.Heads * hd
	for {
		item := a.items - a.next.Add(1) // counts down from items-1
		if item < 0 {
			return
		}
		pair, part := int(item)/a.parts, int(item)%a.parts
		t, kvh := pair/c.KVHeads, pair%c.KVHeads
		s := a.seqs[sc.tokSeq[t]]
		rows := sc.q[t*qDim+kvh*group*hd : t*qDim+(kvh+1)*group*hd]
		npos := int(sc.tokPos[t]) + 1
		// Scores for every position, in rows padded to whole blocks
		// (see attendRange), then the maxima and sums.
		bt := s.Cache.pool.blockTokens
		ns := (npos + bt - 1) / bt * bt
		buf := a.m.pool.Scratch(worker, group*ns+2*group)
		scores, mx, sum := buf[:group*ns], buf[group*ns:group*ns+group], buf[group*ns+group:]
		if a.parts == 1 {
			out := sc.att[t*qDim+kvh*group*hd : t*qDim+(kvh+1)*group*hd]
			attendRange(out, rows, group, s.Cache, a.layer, 0, npos, kvh, scores, mx, sum)
			for h := range group {
				kernels.Scale(out[h*hd:(h+1)*hd], 1/sum[h])
			}
			continue
		}
		// Part p of the positions, in whole blocks, into the pair's
		// slot of sc.part: the unnormalised output rows, then the maxima
		// and sums.
		chunk := ((npos+a.parts-1)/a.parts + bt - 1) / bt * bt
		p0, p1 := part*chunk, min((part+1)*chunk, npos)
		slot := sc.part[int(item)*group*(hd+2) : (int(item)+1)*group*(hd+2)]
		out, pmx, psum := slot[:group*hd], slot[group*hd:group*hd+group], slot[group*hd+group:]
		if p0 >= p1 { // a short history has fewer parts
			clear(out)
			clear(psum)
			for h := range pmx {
				pmx[h] = float32(math.Inf(-1))
			}
			continue
		}
		attendRange(out, rows, group, s.Cache, a.layer, p0, p1, kvh, scores, pmx, psum)
	}
}

// mergeParts combines the parts of each (token, KV head) pair's
// attention that run left in sc.part into sc.att: each part's output
// rows weighted by e^(its max - the overall max), over the weighted sum
// of the parts' sums.
func (m *Model) mergeParts(pairs, parts int) {
	c, sc := &m.Config, &m.scratch
	group, hd := c.Heads/c.KVHeads, c.HeadDim
	qDim := c.Heads * hd
	size := group * (hd + 2)
	for pair := range pairs {
		t, kvh := pair/c.KVHeads, pair%c.KVHeads
		out := sc.att[t*qDim+kvh*group*hd : t*qDim+(kvh+1)*group*hd]
		clear(out)
		slots := sc.part[pair*parts*size : (pair+1)*parts*size]
		for h := range group {
			top := float32(math.Inf(-1))
			for p := range parts {
				top = max(top, slots[p*size+group*hd+h])
			}
			var den float32
			row := out[h*hd : (h+1)*hd]
			for p := range parts {
				slot := slots[p*size : (p+1)*size]
				if slot[group*hd+group+h] == 0 {
					continue // an empty part
				}
				w := float32(math.Exp(float64(slot[group*hd+h] - top)))
				den += w * slot[group*hd+group+h]
				kernels.Axpy(w, slot[h*hd:(h+1)*hd], row)
			}
			kernels.Scale(row, 1/den)
		}
	}
}

// attendRange computes the attention of g query heads of one token that
// share a KV head over positions [p0, p1) of layer l in cache c, before
// the softmax's division: with s = q·Kᵀ/√d, mx[h] the largest s of head h
// in the range and sum[h] = Σ e^(s-mx[h]), out row h = Σ e^(s-mx[h])·V.
// (kernels.SoftmaxParts: mx is in the units of s, scale included.)
// q and out hold g rows of HeadDim values; kvh is the KV head; p0 is a
// multiple of the block size. The positions are visited block by block
// through the cache's block table. Both products are AxpyRows
// (AxpyRowsF16 for an F16 cache), which needs no horizontal sums: q·Kᵀ
// runs over a block's key columns (the keys of a block are stored
// transposed), p·V over its value rows.
//
// Each head's scores take a row of p1-p0 rounded up to whole blocks, so
// that q·Kᵀ covers every block whole, its last block included: the
// kernels then take all BlockTokens columns at once, and the columns past
// p1 (keys not written yet, or left by an earlier sequence) land in the
// padding, which nothing reads. scores holds g times that row.
func attendRange(out, q []float32, g int, c *Cache, l, p0, p1, kvh int, scores, mx, sum []float32) {
	pool := c.pool
	hd, bt := len(q)/g, pool.blockTokens
	n := p1 - p0
	ns := (n + bt - 1) / bt * bt
	scores = scores[:g*ns]
	clear(scores)
	for b, p := p0/bt, p0; p < p1; b, p = b+1, p+bt {
		k := pool.span(kvh, int(c.blocks[b]))
		if pool.dtype == kernels.F16 {
			kernels.AxpyRowsF16(scores[p-p0:], ns, q, hd, g, pool.k16[l][k:], bt, hd, bt)
		} else {
			kernels.AxpyRows(scores[p-p0:], ns, q, hd, g, pool.k[l][k:], bt, hd, bt)
		}
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	for h := range g {
		mx[h], sum[h] = kernels.SoftmaxParts(scores[h*ns:h*ns+n], scale)
	}
	// A KV head's value rows run on from one block to the next of
	// consecutive id, so a run of such blocks is one call.
	clear(out)
	for b, p := p0/bt, p0; p < p1; {
		run := 1
		for p+run*bt < p1 && c.blocks[b+run] == c.blocks[b]+int32(run) {
			run++
		}
		v := pool.span(kvh, int(c.blocks[b]))
		rows := min(run*bt, p1-p)
		if pool.dtype == kernels.F16 {
			kernels.AxpyRowsF16(out, hd, scores[p-p0:], ns, g, pool.v16[l][v:], hd, rows, hd)
		} else {
			kernels.AxpyRows(out, hd, scores[p-p0:], ns, g, pool.v[l][v:], hd, rows, hd)
		}
		b, p = b+run, p+run*bt
	}
}

// rope rotates one head in rotate_half order: dimension i pairs with
// i + half.
func rope(x, cos, sin []float32) {
	half := len(x) / 2
	for i := range half {
		a, b := x[i], x[i+half]
		x[i] = a*cos[i] - b*sin[i]
		x[i+half] = b*cos[i] + a*sin[i]
	}
}

// mlp runs the SwiGLU MLP block of layer l and adds its output to the
// residual stream.
func (m *Model) mlp(l, n int, delta Delta) {
	c := &m.Config
	sc := &m.scratch
	layer := &m.Weights.Layers[l]
	for t := range n {
		kernels.RMSNorm(sc.xn[t*c.Hidden:(t+1)*c.Hidden], sc.x[t*c.Hidden:(t+1)*c.Hidden], layer.MLPNorm, c.RMSNormEps)
	}
	m.project([][]float32{sc.gate, sc.up}, sc.xn, l, []Module{ModGate, ModUp}, n, delta)
	kernels.SiLUMul(sc.gate[:n*c.Intermediate], sc.up[:n*c.Intermediate])
	m.project([][]float32{sc.proj}, sc.gate, l, []Module{ModDown}, n, delta)
	kernels.Axpy(1, sc.proj[:n*c.Hidden], sc.x[:n*c.Hidden])
}

// grow sizes the scratch buffers for n tokens and rows logit rows.
func (m *Model) grow(n, rows int) *forwardScratch {
	c := &m.Config
	sc := &m.scratch
	fit := func(b *[]float32, size int) {
		if cap(*b) < size {
			*b = make([]float32, size)
		}
		*b = (*b)[:size]
	}
	fit(&sc.x, n*c.Hidden)
	fit(&sc.xn, n*c.Hidden)
	fit(&sc.q, n*c.Heads*c.HeadDim)
	fit(&sc.k, n*c.KVHeads*c.HeadDim)
	fit(&sc.v, n*c.KVHeads*c.HeadDim)
	fit(&sc.att, n*c.Heads*c.HeadDim)
	fit(&sc.proj, n*c.Hidden)
	fit(&sc.gate, n*c.Intermediate)
	fit(&sc.up, n*c.Intermediate)
	if cap(sc.tokSeq) < n {
		sc.tokSeq, sc.tokPos = make([]int32, n), make([]int32, n)
	}
	sc.tokSeq, sc.tokPos = sc.tokSeq[:n], sc.tokPos[:n]
	fit(&sc.cos, n*c.HeadDim/2)
	fit(&sc.sin, n*c.HeadDim/2)
	fit(&sc.last, rows*c.Hidden)
	fit(&sc.logits, rows*c.Vocab)
	return sc
}
