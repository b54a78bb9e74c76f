package train

import (
	"math"

	"github.com/switchyard-ai/switchyard/kernels"
)

// This file holds the ops of the trainer, each a forward/backward pair.
// Shapes: n tokens of a packed micro-batch, H hidden, I intermediate,
// Q = heads·hd, KV = kvHeads·hd, r a LoRA rank. Backward functions
// accumulate (+=) into input gradients unless their comment says they
// overwrite.

// ----------------------------------------------------------------------------
// embedding

// embeddingForward writes the embedding rows of ids into x [n, H].
// The embedding is frozen, so its backward is nothing: the gradient of the
// residual stream stops at the first layer that carries LoRA weights.
func embeddingForward(x []float32, ids []int, embed kernels.Matrix) {
	h := embed.Cols
	for t, id := range ids {
		embed.Row(id, x[t*h:(t+1)*h])
	}
}

// ----------------------------------------------------------------------------
// RMSNorm

// rmsnormForward computes out[n, H] = x·rinv·w with rinv[t] =
// 1/sqrt(mean(x[t]²) + eps), accumulated in float64 as the engine does,
// and keeps rinv [n] for backward.
func rmsnormForward(out, rinv, x, w []float32, n, h int, eps float32) {
	for t := range n {
		row := x[t*h : (t+1)*h]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		r := float32(1 / math.Sqrt(ss/float64(h)+float64(eps)))
		rinv[t] = r
		o := out[t*h : (t+1)*h]
		for i, v := range row {
			o[i] = v * r * w[i]
		}
	}
}

// rmsnormBackward adds to dx [n, H] the gradient through RMSNorm given
// dout [n, H]: dx = r·(dout⊙w) - r³/H·(Σ dout⊙w⊙x)·x.
func rmsnormBackward(dx, dout, x, rinv, w []float32, n, h int) {
	for t := range n {
		xr, dr, dxr := x[t*h:(t+1)*h], dout[t*h:(t+1)*h], dx[t*h:(t+1)*h]
		r := rinv[t]
		var dot float64
		for i, v := range xr {
			dot += float64(dr[i]) * float64(w[i]) * float64(v)
		}
		c := float32(dot) * r * r * r / float32(h)
		for i, v := range xr {
			dxr[i] += dr[i]*w[i]*r - c*v
		}
	}
}

// ----------------------------------------------------------------------------
// RoPE (rotate_half order: dimension i pairs with i + hd/2)

// ropeForward rotates x [n, heads, hd] in place by the per-token angles
// whose cosines and sines are cos, sin [n, hd/2].
func ropeForward(x []float32, n, heads, hd int, cos, sin []float32) {
	rotate(x, n, heads, hd, cos, sin, 1)
}

// ropeBackward turns dx' [n, heads, hd], the gradient of rotated values,
// into the gradient of the unrotated ones in place: the transpose of a
// rotation is the rotation by the opposite angle.
func ropeBackward(dx []float32, n, heads, hd int, cos, sin []float32) {
	rotate(dx, n, heads, hd, cos, sin, -1)
}

func rotate(x []float32, n, heads, hd int, cos, sin []float32, dir float32) {
	half := hd / 2
	for t := range n {
		c, s := cos[t*half:(t+1)*half], sin[t*half:(t+1)*half]
		for h := range heads {
			v := x[(t*heads+h)*hd : (t*heads+h+1)*hd]
			for i := range half {
				a, b := v[i], v[i+half]
				si := dir * s[i]
				v[i] = a*c[i] - b*si
				v[i+half] = b*c[i] + a*si
			}
		}
	}
}

// ropeTables fills cos, sin [n, hd/2] for the positions pos [n].
func ropeTables(cos, sin []float32, pos []int, invFreq []float64) {
	half := len(invFreq)
	for t, p := range pos {
		for i, f := range invFreq {
			s, c := math.Sincos(float64(p) * f)
			cos[t*half+i], sin[t*half+i] = float32(c), float32(s)
		}
	}
}

// ----------------------------------------------------------------------------
// linear layers of the frozen base

// matmulForward computes y[n, out] = x[n, in]·Wᵀ + bias on the inference
// kernel.
func matmulForward(pool *kernels.Pool, y, x []float32, w kernels.Matrix, bias []float32, n int) {
	pool.MatMul(y, x, w, n)
	if bias != nil {
		for t := range n {
			kernels.Axpy(1, bias, y[t*w.Rows:(t+1)*w.Rows])
		}
	}
}

// matmulBackwardX overwrites dx[n, in] with dy[n, out]·W, the gradient of
// the input of a frozen projection (W gets none). W is taken a block of
// ob rows at a time: the block is transposed to float32 Wᵀ[in, ob] and
// the columns of dy it meets are gathered into dyb[n, ob], so that the
// product dyb·(Wᵀ)ᵀ runs on the inference MatMul kernel, on all workers.
// The transposed block lives in sc and is never kept: the base weights
// are not copied per job. Under blockedMinTokens tokens, the row loops
// of matmulBackwardXRows do it.
func matmulBackwardX(pool *kernels.Pool, sc *bwScratch, dx, dy []float32, w kernels.Matrix, n int) {
	in, out := w.Cols, w.Rows
	if n < blockedMinTokens {
		matmulBackwardXRows(pool, dx, dy, w, n)
		return
	}
	ob := min(out, max(16, (1<<20)/in/16*16))
	sc.wt, sc.dyb, sc.part = fit(sc.wt, in*ob), fit(sc.dyb, n*ob), fit(sc.part, n*in)
	for o0 := 0; o0 < out; o0 += ob {
		o1 := min(o0+ob, out)
		bw := o1 - o0
		// wt[c, o-o0] = W[o, c], rows of W decoded in parallel.
		pool.Parallel(bw, 4, func(worker, lo, hi int) {
			row := pool.Scratch(worker, in)
			for o := lo; o < hi; o++ {
				w.Row(o0+o, row)
				for c, v := range row {
					sc.wt[c*bw+o] = v
				}
			}
		})
		for t := range n {
			copy(sc.dyb[t*bw:(t+1)*bw], dy[t*out+o0:t*out+o1])
		}
		wt := kernels.NewF32Matrix(in, bw, sc.wt[:in*bw])
		if o0 == 0 {
			pool.MatMul(dx, sc.dyb, wt, n)
			continue
		}
		pool.MatMul(sc.part, sc.dyb, wt, n)
		kernels.Axpy(1, sc.part[:n*in], dx[:n*in])
	}
}

// blockedMinTokens is the fewest tokens for which matmulBackwardX
// transposes W blocks: below it the row loops are as fast.
var blockedMinTokens = 64

// bwScratch holds matmulBackwardX's buffers.
type bwScratch struct {
	wt   []float32 // a transposed block of W [in, ob]
	dyb  []float32 // the columns of dy it meets [n, ob]
	part []float32 // the block's share of dx [n, in]
}

// matmulBackwardXRows is matmulBackwardX as plain row loops, and its
// reference: workers take tokens; each streams W's rows over blocks of a
// few tokens, converting each row to float32 once per block (W may be
// stored in any type and layout) and adding dy[t, o]·W[o] to dx[t].
func matmulBackwardXRows(pool *kernels.Pool, dx, dy []float32, w kernels.Matrix, n int) {
	in, out := w.Cols, w.Rows
	const block = 8
	pool.Parallel(n, 1, func(worker, lo, hi int) {
		clear(dx[lo*in : hi*in])
		row := pool.Scratch(worker, in)
		for t0 := lo; t0 < hi; t0 += block {
			t1 := min(t0+block, hi)
			for o := range out {
				decoded := false
				for t := t0; t < t1; t++ {
					if g := dy[t*out+o]; g != 0 {
						if !decoded {
							w.Row(o, row)
							decoded = true
						}
						kernels.Axpy(g, row, dx[t*in:(t+1)*in])
					}
				}
			}
		}
	})
}

// ----------------------------------------------------------------------------
// LoRA

// loraForward adds the LoRA delta to y[n, out]: u[n, r] = xd·Aᵀ (kept for
// backward), y += s·u·Bᵀ. xd [n, in] is the projection's input after
// lora_dropout. tmp holds n·out floats.
func loraForward(pool *kernels.Pool, y, u, xd, tmp []float32, p *loraParam, n int) {
	pool.MatMul(u, xd, kernels.NewF32Matrix(p.r, p.in, p.a), n)
	pool.MatMul(tmp, u, kernels.NewF32Matrix(p.out, p.r, p.b), n)
	kernels.Axpy(p.scale, tmp[:n*p.out], y[:n*p.out])
}

// loraBackward takes dy [n, out] and the saved xd [n, in] and u [n, r]:
//
//	dB[out, r] += s·dyᵀ·u
//	du[n, r]    = s·dy·B
//	dA[r, in]  += duᵀ·xd
//	dx[n, in]  += (du·A)⊙mask
//
// mask [n, in] is lora_dropout's 0 or 1/(1-p) per value, nil without
// dropout. du is scratch. dx may be nil when the input needs no gradient.
func loraBackward(pool *kernels.Pool, dx, dy, xd, u, mask, du []float32, p *loraParam, n int) {
	r, in, out, s := p.r, p.in, p.out, p.scale
	// dB, split by rows of B.
	pool.Parallel(out, 16, func(_, lo, hi int) {
		for t := range n {
			dyr, ur := dy[t*out:(t+1)*out], u[t*r:(t+1)*r]
			for o := lo; o < hi; o++ {
				g := s * dyr[o]
				db := p.db[o*r : (o+1)*r]
				for k, v := range ur {
					db[k] += g * v
				}
			}
		}
	})
	// du and dx (skipped when dx is nil), split by tokens.
	pool.Parallel(n, 1, func(worker, lo, hi int) {
		var row []float32
		if mask != nil {
			row = pool.Scratch(worker, in)
		}
		for t := lo; t < hi; t++ {
			dut := du[t*r : (t+1)*r]
			clear(dut)
			for o, g := range dy[t*out : (t+1)*out] {
				b := p.b[o*r : (o+1)*r]
				for k, v := range b {
					dut[k] += g * v
				}
			}
			kernels.Scale(dut, s)
			if dx == nil {
				continue
			}
			dxt := dx[t*in : (t+1)*in]
			if mask != nil {
				clear(row)
			}
			for k := range dut {
				if mask != nil {
					kernels.Axpy(dut[k], p.a[k*in:(k+1)*in], row)
				} else {
					kernels.Axpy(dut[k], p.a[k*in:(k+1)*in], dxt)
				}
			}
			if mask != nil {
				mt := mask[t*in : (t+1)*in]
				for i, v := range row {
					dxt[i] += v * mt[i]
				}
			}
		}
	})
	// dA, split by rows of A.
	pool.Parallel(r, 1, func(_, lo, hi int) {
		for k := lo; k < hi; k++ {
			da := p.da[k*in : (k+1)*in]
			for t := range n {
				if g := du[t*r+k]; g != 0 {
					kernels.Axpy(g, xd[t*in:(t+1)*in], da)
				}
			}
		}
	})
}

// ----------------------------------------------------------------------------
// attention

// segments describes a packed micro-batch: the examples' token ranges.
// Each example has positions from 0 and attends only to its own tokens.
type segments struct {
	start []int // start[i] is the first token of example i; start[len-1] = n
	first []int // first[t] is the first token of t's example [n]
	pos   []int // position of token t inside its example [n]
}

// attentionForward writes out[n, Q]: for every token t and query head h,
// softmax(q_t·Kᵀ/√hd) over the keys of t's example up to t (the causal
// mask), times V. Query head h reads kv head h/(heads/kvHeads) (GQA).
// q [n, Q] and k [n, KV] are after RoPE. The probabilities are not kept:
// backward recomputes them, so memory stays linear in n.
func attentionForward(pool *kernels.Pool, out, q, k, v []float32, seg *segments, heads, kvHeads, hd int) {
	n := len(seg.first)
	qDim, kvDim, group := heads*hd, kvHeads*hd, heads/kvHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	maxLen := 0
	for i := 1; i < len(seg.start); i++ {
		maxLen = max(maxLen, seg.start[i]-seg.start[i-1])
	}
	pool.Parallel(n*heads, 1, func(worker, lo, hi int) {
		scores := pool.Scratch(worker, maxLen)
		for item := lo; item < hi; item++ {
			t, h := item/heads, item%heads
			off := (h / group) * hd
			qt := q[t*qDim+h*hd : t*qDim+(h+1)*hd]
			f := seg.first[t]
			sc := scores[:t-f+1]
			for p := range sc {
				sc[p] = kernels.Dot(qt, k[(f+p)*kvDim+off:(f+p)*kvDim+off+hd]) * scale
			}
			kernels.Softmax(sc)
			o := out[t*qDim+h*hd : t*qDim+(h+1)*hd]
			clear(o)
			for p, w := range sc {
				kernels.Axpy(w, v[(f+p)*kvDim+off:(f+p)*kvDim+off+hd], o)
			}
		}
	})
}

// attentionBackward overwrites dq [n, Q], dk [n, KV] and dv [n, KV] with
// the gradients of attentionForward's inputs given dout [n, Q]. With P the
// recomputed probabilities of one query and dP = dout_t·Vᵀ:
//
//	dV[p] += P[p]·dout_t
//	dS[p]  = P[p]·(dP[p] - Σ P·dP)
//	dq_t   = Σ dS[p]·K[p]/√hd,  dK[p] += dS[p]·q_t/√hd
//
// Work is split by (example, kv head), so every worker owns the rows of
// dk and dv it writes.
func attentionBackward(pool *kernels.Pool, dq, dk, dv, dout, q, k, v []float32, seg *segments, heads, kvHeads, hd int) {
	n := len(seg.first)
	qDim, kvDim, group := heads*hd, kvHeads*hd, heads/kvHeads
	scale := float32(1 / math.Sqrt(float64(hd)))
	clear(dq[:n*qDim])
	clear(dk[:n*kvDim])
	clear(dv[:n*kvDim])
	nseg := len(seg.start) - 1
	maxLen := 0
	for i := range nseg {
		maxLen = max(maxLen, seg.start[i+1]-seg.start[i])
	}
	pool.Parallel(nseg*kvHeads, 1, func(worker, lo, hi int) {
		buf := pool.Scratch(worker, 2*maxLen)
		for item := lo; item < hi; item++ {
			s, kh := item/kvHeads, item%kvHeads
			f, end := seg.start[s], seg.start[s+1]
			off := kh * hd
			for h := kh * group; h < (kh+1)*group; h++ {
				for t := f; t < end; t++ {
					qt := q[t*qDim+h*hd : t*qDim+(h+1)*hd]
					dot := dout[t*qDim+h*hd : t*qDim+(h+1)*hd]
					P, dP := buf[:t-f+1], buf[maxLen:maxLen+t-f+1]
					for p := range P {
						P[p] = kernels.Dot(qt, k[(f+p)*kvDim+off:(f+p)*kvDim+off+hd]) * scale
					}
					kernels.Softmax(P)
					var sum float32
					for p, w := range P {
						vp := (f + p) * kvDim
						dP[p] = kernels.Dot(dot, v[vp+off:vp+off+hd])
						sum += w * dP[p]
						kernels.Axpy(w, dot, dv[vp+off:vp+off+hd])
					}
					dqt := dq[t*qDim+h*hd : t*qDim+(h+1)*hd]
					for p, w := range P {
						ds := w * (dP[p] - sum) * scale
						kp := (f + p) * kvDim
						kernels.Axpy(ds, k[kp+off:kp+off+hd], dqt)
						kernels.Axpy(ds, qt, dk[kp+off:kp+off+hd])
					}
				}
			}
		}
	})
}

// ----------------------------------------------------------------------------
// SwiGLU

// swigluForward writes h[n·I] = silu(g)·u, silu(g) = g·σ(g).
func swigluForward(h, g, u []float32) {
	for i, gv := range g {
		h[i] = gv / (1 + float32(math.Exp(float64(-gv)))) * u[i]
	}
}

// swigluBackward overwrites dg and du [n·I] given dh:
// du = dh·silu(g), dg = dh·u·σ(g)·(1 + g·(1-σ(g))).
func swigluBackward(dg, du, dh, g, u []float32) {
	for i, gv := range g {
		sig := 1 / (1 + float32(math.Exp(float64(-gv))))
		du[i] = dh[i] * gv * sig
		dg[i] = dh[i] * u[i] * sig * (1 + gv*(1-sig))
	}
}

// ----------------------------------------------------------------------------
// cross-entropy

// crossEntropy turns one row of logits [V] into the gradient of
// w·(-log softmax(logits)[target]) in place and returns that loss term
// (without w): dlogits = w·(softmax - onehot).
func crossEntropy(logits []float32, target int, w float32) float64 {
	m := float32(math.Inf(-1))
	for _, v := range logits {
		m = max(m, v)
	}
	target32 := logits[target]
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - m))
		logits[i] = float32(e)
		sum += e
	}
	loss := float64(m) + math.Log(sum) - float64(target32)
	kernels.Scale(logits, w/float32(sum))
	logits[target] -= w
	return loss
}
