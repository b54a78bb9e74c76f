package train

import (
	"math/rand/v2"

	"github.com/switchyard-ai/switchyard/kernels"
	"github.com/switchyard-ai/switchyard/model"
)

// trainer runs the forward and backward passes of one training job over a
// shared, frozen base model.
type trainer struct {
	m       *model.Model
	cfg     *model.Config
	pool    *kernels.Pool // the job's own workers: the model's pool may be serving
	ps      *params
	dropout float64
	invFreq []float64 // RoPE inverse frequencies [hd/2]
	lowest  int       // the lowest layer with LoRA weights: backward stops there
	acts    activations
	grads   gradients
}

// activations are what the forward pass of one packed micro-batch keeps
// for backward, grown to the largest micro-batch seen.
type activations struct {
	n        int
	ids      []int // tokens [n]
	seg      segments
	cos, sin []float32   // RoPE tables [n, hd/2]
	res      [][]float32 // residual stream entering layer l [L+1][n, H]; res[L] feeds the final norm
	layers   []layerActs

	rows    []int     // tokens whose next token is a target [R]
	targets []int     // those next tokens [R]
	rinvF   []float32 // final RMSNorm factors of the rows [R]
	xnF     []float32 // final-normed rows [R, H]
	logits  []float32 // a chunk of logits or their gradients [headChunk, V]
	dxnF    []float32 // gradient of a chunk of xnF [headChunk, H]
	tmp     []float32 // LoRA expand scratch [n, max out]
}

// layerActs are one decoder layer's saved activations.
type layerActs struct {
	rinv1 []float32 // attention RMSNorm factors [n]
	xn1   []float32 // normed input of q, k, v [n, H]
	q     []float32 // queries after RoPE [n, Q]
	k     []float32 // keys after RoPE [n, KV]
	v     []float32 // values [n, KV]
	att   []float32 // attention output, input of o_proj [n, Q]
	x2    []float32 // residual after attention [n, H]
	rinv2 []float32 // MLP RMSNorm factors [n]
	xn2   []float32 // normed input of gate, up [n, H]
	gate  []float32 // gate_proj output [n, I]
	up    []float32 // up_proj output [n, I]
	h     []float32 // silu(gate)·up, input of down_proj [n, I]
	lora  [model.NumModules]loraActs
}

// loraActs are one LoRA pair's saved activations.
type loraActs struct {
	xd   []float32 // input after lora_dropout [n, in]; aliases the input without dropout
	mask []float32 // dropout's 0 or 1/(1-p) [n, in]; nil without dropout
	buf  []float32 // storage of xd under dropout [n, in]
	u    []float32 // xd·Aᵀ [n, r]
}

// gradients are the backward pass's buffers for activation gradients.
type gradients struct {
	dres       []float32 // gradient of the residual stream [n, H]
	dxn        []float32 // of a normed block input [n, H]
	dq, datt   []float32 // [n, Q]
	dk, dv     []float32 // [n, KV]
	dh, dg, du []float32 // [n, I]
	tmp        []float32 // [n, max in]
	dlora      []float32 // [n, max r]
	bw         bwScratch
}

// headChunk is the number of logit rows computed at once, which bounds
// the logits buffer for large vocabularies.
const headChunk = 128

func newTrainer(m *model.Model, pool *kernels.Pool, ps *params, dropout float64) *trainer {
	tr := &trainer{m: m, cfg: &m.Config, pool: pool, ps: ps, dropout: dropout, invFreq: m.Config.InvFreq()}
	tr.lowest = m.Config.Layers
	for _, p := range ps.list {
		tr.lowest = min(tr.lowest, p.layer)
	}
	tr.acts.layers = make([]layerActs, m.Config.Layers)
	tr.acts.res = make([][]float32, m.Config.Layers+1)
	return tr
}

// fit returns b resized to n values, reusing its storage when it can.
func fit(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// pack lays out a micro-batch: tokens, segments, positions and the rows
// whose next token is a completion token.
func (tr *trainer) pack(exs []Example) {
	a := &tr.acts
	a.ids, a.seg.start, a.seg.first, a.seg.pos = a.ids[:0], a.seg.start[:0], a.seg.first[:0], a.seg.pos[:0]
	a.rows, a.targets = a.rows[:0], a.targets[:0]
	for _, ex := range exs {
		f := len(a.ids)
		a.seg.start = append(a.seg.start, f)
		for j, id := range ex.Tokens {
			a.ids = append(a.ids, id)
			a.seg.first = append(a.seg.first, f)
			a.seg.pos = append(a.seg.pos, j)
			if j+1 < len(ex.Tokens) && ex.Target[j+1] {
				a.rows = append(a.rows, f+j)
				a.targets = append(a.targets, ex.Tokens[j+1])
			}
		}
	}
	a.n = len(a.ids)
	a.seg.start = append(a.seg.start, a.n)
}

// grow sizes every buffer for the packed micro-batch.
func (tr *trainer) grow(train bool) {
	c, a, g := tr.cfg, &tr.acts, &tr.grads
	n, hd := a.n, c.HeadDim
	qDim, kvDim := c.Heads*hd, c.KVHeads*hd
	maxW, maxR := max(c.Hidden, c.Intermediate, qDim), 1 // the widest projection input or output
	for _, p := range tr.ps.list {
		maxR = max(maxR, p.r)
	}
	a.cos, a.sin = fit(a.cos, n*hd/2), fit(a.sin, n*hd/2)
	for l := range a.res {
		a.res[l] = fit(a.res[l], n*c.Hidden)
	}
	for l := range a.layers {
		la := &a.layers[l]
		la.rinv1, la.rinv2 = fit(la.rinv1, n), fit(la.rinv2, n)
		la.xn1, la.x2, la.xn2 = fit(la.xn1, n*c.Hidden), fit(la.x2, n*c.Hidden), fit(la.xn2, n*c.Hidden)
		la.q, la.att = fit(la.q, n*qDim), fit(la.att, n*qDim)
		la.k, la.v = fit(la.k, n*kvDim), fit(la.v, n*kvDim)
		la.gate, la.up, la.h = fit(la.gate, n*c.Intermediate), fit(la.up, n*c.Intermediate), fit(la.h, n*c.Intermediate)
	}
	r := len(a.rows)
	a.rinvF, a.xnF = fit(a.rinvF, r), fit(a.xnF, r*c.Hidden)
	a.logits, a.dxnF = fit(a.logits, headChunk*c.Vocab), fit(a.dxnF, headChunk*c.Hidden)
	a.tmp = fit(a.tmp, n*maxW)
	if train {
		g.dres, g.dxn = fit(g.dres, n*c.Hidden), fit(g.dxn, n*c.Hidden)
		g.dq, g.datt = fit(g.dq, n*qDim), fit(g.datt, n*qDim)
		g.dk, g.dv = fit(g.dk, n*kvDim), fit(g.dv, n*kvDim)
		g.dh, g.dg, g.du = fit(g.dh, n*c.Intermediate), fit(g.dg, n*c.Intermediate), fit(g.du, n*c.Intermediate)
		g.tmp, g.dlora = fit(g.tmp, n*maxW), fit(g.dlora, n*maxR)
	}
}

// forward runs a packed micro-batch through the model and keeps the
// activations. With train set, lora_dropout draws its masks from rng.
func (tr *trainer) forward(exs []Example, train bool, rng *rand.Rand) {
	tr.pack(exs)
	tr.grow(train)
	c, a := tr.cfg, &tr.acts
	n, H, hd := a.n, c.Hidden, c.HeadDim
	ropeTables(a.cos, a.sin, a.seg.pos, tr.invFreq)
	embeddingForward(a.res[0], a.ids, tr.m.Weights.Embed)
	for l := range c.Layers {
		w := &tr.m.Weights.Layers[l]
		la := &a.layers[l]
		x := a.res[l]
		// Attention block: x2 = x + o_proj(attention(rope(q), rope(k), v)).
		rmsnormForward(la.xn1, la.rinv1, x, w.AttnNorm, n, H, c.RMSNormEps)
		tr.projForward(la.q, la.xn1, l, model.ModQ, train, rng)
		tr.projForward(la.k, la.xn1, l, model.ModK, train, rng)
		tr.projForward(la.v, la.xn1, l, model.ModV, train, rng)
		ropeForward(la.q, n, c.Heads, hd, a.cos, a.sin)
		ropeForward(la.k, n, c.KVHeads, hd, a.cos, a.sin)
		attentionForward(tr.pool, la.att, la.q, la.k, la.v, &a.seg, c.Heads, c.KVHeads, hd)
		tr.projForward(la.x2, la.att, l, model.ModO, train, rng)
		kernels.Axpy(1, x[:n*H], la.x2[:n*H])
		// MLP block: res[l+1] = x2 + down_proj(silu(gate_proj(xn2))·up_proj(xn2)).
		rmsnormForward(la.xn2, la.rinv2, la.x2, w.MLPNorm, n, H, c.RMSNormEps)
		tr.projForward(la.gate, la.xn2, l, model.ModGate, train, rng)
		tr.projForward(la.up, la.xn2, l, model.ModUp, train, rng)
		swigluForward(la.h[:n*c.Intermediate], la.gate[:n*c.Intermediate], la.up)
		out := a.res[l+1]
		tr.projForward(out, la.h, l, model.ModDown, train, rng)
		kernels.Axpy(1, la.x2[:n*H], out[:n*H])
	}
	// Final norm, for the rows that have a target only.
	xf := a.res[c.Layers]
	for i, t := range a.rows {
		rmsnormForward(a.xnF[i*H:(i+1)*H], a.rinvF[i:i+1], xf[t*H:(t+1)*H], tr.m.Weights.Norm, 1, H, c.RMSNormEps)
	}
}

// projForward runs projection mod of layer l: y[n, out] = x[n, in]·Wᵀ + b,
// plus the LoRA delta where the layer has one. x must stay unchanged
// until backward.
func (tr *trainer) projForward(y, x []float32, l int, mod model.Module, train bool, rng *rand.Rand) {
	n := tr.acts.n
	lw := &tr.m.Weights.Layers[l]
	matmulForward(tr.pool, y, x, lw.Proj[mod], lw.Bias[mod], n)
	p := tr.ps.at[l][mod]
	if p == nil {
		return
	}
	la := &tr.acts.layers[l].lora[mod]
	la.xd = x[:n*p.in]
	mask := la.mask
	la.mask = nil
	if train && tr.dropout > 0 {
		la.mask, la.buf = fit(mask, n*p.in), fit(la.buf, n*p.in)
		keep := float32(1 / (1 - tr.dropout))
		for i, v := range x[:n*p.in] {
			if rng.Float64() < tr.dropout {
				la.mask[i], la.buf[i] = 0, 0
			} else {
				la.mask[i], la.buf[i] = keep, v*keep
			}
		}
		la.xd = la.buf
	}
	la.u = fit(la.u, n*p.r)
	loraForward(tr.pool, y, la.u, la.xd, tr.acts.tmp, p, n)
}

// lossBackward computes the logits of the target rows, chunk by chunk,
// and returns the sum of their cross-entropy losses. With backward set it
// also runs the whole backward pass, each loss term weighted by w (1/the
// number of targets of the optimizer step), accumulating into the LoRA
// gradients.
func (tr *trainer) lossBackward(w float32, backward bool) float64 {
	c, a, g := tr.cfg, &tr.acts, &tr.grads
	n, H, V := a.n, c.Hidden, c.Vocab
	head := tr.m.Weights.Head
	if backward {
		clear(g.dres[:n*H])
	}
	var loss float64
	for i0 := 0; i0 < len(a.rows); i0 += headChunk {
		i1 := min(i0+headChunk, len(a.rows))
		rows := i1 - i0
		// logits[R, V] = xnF·Headᵀ, then dlogits in place.
		tr.pool.MatMul(a.logits, a.xnF[i0*H:i1*H], head, rows)
		for i := range rows {
			loss += crossEntropy(a.logits[i*V:(i+1)*V], a.targets[i0+i], w)
		}
		if !backward {
			continue
		}
		// dxnF[R, H] = dlogits·Head, then through the final RMSNorm into
		// the residual stream.
		matmulBackwardX(tr.pool, &tr.grads.bw, a.dxnF, a.logits, head, rows)
		xf := a.res[c.Layers]
		for i := range rows {
			t := a.rows[i0+i]
			rmsnormBackward(g.dres[t*H:(t+1)*H], a.dxnF[i*H:(i+1)*H], xf[t*H:(t+1)*H], a.rinvF[i0+i:i0+i+1], tr.m.Weights.Norm, 1, H)
		}
	}
	if backward {
		for l := c.Layers - 1; l >= tr.lowest; l-- {
			tr.layerBackward(l)
		}
	}
	return loss
}

// layerBackward takes g.dres, the gradient of layer l's output, to the
// gradient of its input, accumulating the LoRA gradients on the way.
func (tr *trainer) layerBackward(l int) {
	c, a, g := tr.cfg, &tr.acts, &tr.grads
	n, H, hd, I := a.n, c.Hidden, c.HeadDim, c.Intermediate
	w := &tr.m.Weights.Layers[l]
	la := &a.layers[l]
	// MLP block. The residual passes dres to x2 unchanged; the block adds
	// its own share.
	tr.projBackward(g.dh, g.dres, l, model.ModDown, false)
	swigluBackward(g.dg[:n*I], g.du[:n*I], g.dh, la.gate, la.up)
	tr.projBackward(g.dxn, g.dg, l, model.ModGate, false)
	tr.projBackward(g.dxn, g.du, l, model.ModUp, true)
	rmsnormBackward(g.dres, g.dxn, la.x2, la.rinv2, w.MLPNorm, n, H)
	// Attention block.
	tr.projBackward(g.datt, g.dres, l, model.ModO, false)
	attentionBackward(tr.pool, g.dq, g.dk, g.dv, g.datt, la.q, la.k, la.v, &a.seg, c.Heads, c.KVHeads, hd)
	ropeBackward(g.dq, n, c.Heads, hd, a.cos, a.sin)
	ropeBackward(g.dk, n, c.KVHeads, hd, a.cos, a.sin)
	if l == tr.lowest {
		// Nothing below needs the residual gradient: only the LoRA
		// gradients of q, k and v are left.
		for _, mod := range []model.Module{model.ModQ, model.ModK, model.ModV} {
			tr.projBackward(nil, [...][]float32{g.dq, g.dk, g.dv}[mod], l, mod, false)
		}
		return
	}
	tr.projBackward(g.dxn, g.dq, l, model.ModQ, false)
	tr.projBackward(g.dxn, g.dk, l, model.ModK, true)
	tr.projBackward(g.dxn, g.dv, l, model.ModV, true)
	rmsnormBackward(g.dres, g.dxn, a.res[l], la.rinv1, w.AttnNorm, n, H)
}

// projBackward takes dy [n, out], the gradient of projection mod's output,
// writes (or with add, adds) the gradient of its input to dx [n, in], and
// accumulates the LoRA gradients. dx nil skips the input gradient.
func (tr *trainer) projBackward(dx, dy []float32, l int, mod model.Module, add bool) {
	n := tr.acts.n
	wm := tr.m.Weights.Layers[l].Proj[mod]
	p := tr.ps.at[l][mod]
	if dx != nil {
		if add {
			tmp := tr.grads.tmp[:n*wm.Cols]
			matmulBackwardX(tr.pool, &tr.grads.bw, tmp, dy, wm, n)
			kernels.Axpy(1, tmp, dx[:n*wm.Cols])
		} else {
			matmulBackwardX(tr.pool, &tr.grads.bw, dx, dy, wm, n)
		}
	}
	if p == nil {
		return
	}
	la := &tr.acts.layers[l].lora[mod]
	loraBackward(tr.pool, dx, dy, la.xd, la.u, la.mask, tr.grads.dlora, p, n)
}
